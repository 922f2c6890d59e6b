"""Pages of the deployments app."""
