"""Reads of the deployments app shared by pages and APIs."""
