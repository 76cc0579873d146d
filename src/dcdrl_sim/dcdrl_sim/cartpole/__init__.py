"""cartpole environment package."""
