"""mec environment package."""
