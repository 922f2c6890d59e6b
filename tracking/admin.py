"""Admin console registrations of the tracking app."""
