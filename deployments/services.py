"""Writes of the deployments app (services named <entity>_<action>)."""
