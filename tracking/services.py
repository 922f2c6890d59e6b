"""Writes of the tracking app (services named <entity>_<action>)."""
