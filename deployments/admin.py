"""Admin console registrations of the deployments app."""
