"""Celery tasks of the tenancy app: thin wrappers around services."""

import socket

from celery import shared_task
from django.db import connection

from portal import services


@shared_task(name="portal.tasks.ping")
def ping() -> dict:
    """Health check: proves a worker took the message and can reach the database."""
    connection.ensure_connection()
    return {"pong": True, "worker": socket.gethostname(), "database": connection.vendor}


@shared_task(name="portal.tasks.purge_expired_tokens")
def purge_expired_tokens() -> int:
    return services.tokens_purge_expired()
