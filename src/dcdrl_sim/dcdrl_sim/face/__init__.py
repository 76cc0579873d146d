"""face environment package."""
