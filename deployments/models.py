"""Deployment models: compute, environments, remote runs, images, web services, drift."""
