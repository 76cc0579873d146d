"""DC-DRL cloud nodes."""
