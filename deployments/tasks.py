"""Celery tasks of the deployments app: thin wrappers that call one service."""

from celery import shared_task

from deployments.services import monitoring
from deployments.services.drift import drift_schedule_tick


@shared_task(name="deployments.drift_schedule")
def drift_schedule() -> int:
    """Beat (every DRIFT_SCHEDULE_SECONDS): queue each enabled drift monitor's ended
    windows as a job; answers how many jobs were queued."""
    return len(drift_schedule_tick())


@shared_task(name="deployments.tasks.monitoring_retention")
def monitoring_retention() -> dict:
    """Beat (hourly): delete telemetry rollups and sampled requests past their retention
    (MONITORING_RETENTION_DAYS, MONITORING_SAMPLE_RETENTION_DAYS)."""
    return monitoring.monitoring_retention()
