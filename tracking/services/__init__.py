"""Writes of the tracking app. Services are named `<entity>_<action>`, take keyword
arguments and the workspace, and raise portal.errors on bad input."""
