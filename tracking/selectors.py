"""Reads of the tracking app shared by pages and APIs."""
