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


# acks_late + reject_on_worker_lost: a worker killed midway leaves the message to be
# delivered again; the claim on the row makes a duplicate harmless, and job steps are
# idempotent, so the next worker finishes the job.
@shared_task(name="portal.tasks.job_run", acks_late=True, reject_on_worker_lost=True)
def job_run(model_label: str, job_id: str) -> str:
    """Run one job of any registered kind; its outcome is recorded on its row."""
    job = services.job_run(model_label=model_label, job_id=job_id)
    return job.status if job is not None else "missing"


@shared_task(name="portal.tasks.deletion_job_run", acks_late=True, reject_on_worker_lost=True)
def deletion_job_run(job_id: str) -> str:
    """Messages sent before job_run existed (a queue that outlived an upgrade)."""
    return job_run("portal.deletionjob", job_id)


@shared_task(name="portal.tasks.jobs_recover")
def jobs_recover() -> int:
    """Beat: re-send jobs whose message was lost or whose worker died."""
    return len(services.jobs_recover())
