"""Celery tasks of the tracking app: thin wrappers that call one service."""
