"""Celery tasks of the deployments app: thin wrappers that call one service."""
