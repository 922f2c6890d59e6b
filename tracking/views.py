"""Pages of the tracking app."""
