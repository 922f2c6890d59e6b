"""Reads of the deployments app shared by pages and APIs."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from deployments.models import ComputeTarget, ComputeWorker, Environment
from portal.models import Job, Workspace

# A worker seen within this long is listed as one of its target's workers.
WORKER_RECENT = timedelta(minutes=2)


def compute_target_list(*, workspace: Workspace) -> QuerySet[ComputeTarget]:
    """The workspace's targets (`local` made on first use), each with `queued_count`,
    `running_count` and `recent_workers` (seen within WORKER_RECENT)."""
    from deployments.services.compute import compute_target_local

    compute_target_local(workspace=workspace)
    recent = ComputeWorker.objects.filter(last_seen__gte=timezone.now() - WORKER_RECENT)
    return (
        ComputeTarget.objects.filter(workspace=workspace)
        .annotate(
            queued_count=Count("jobs", filter=Q(jobs__status=Job.Status.QUEUED)),
            running_count=Count("jobs", filter=Q(jobs__status=Job.Status.RUNNING)),
        )
        .prefetch_related(Prefetch("workers", queryset=recent, to_attr="recent_workers"))
        .order_by("name")
    )


def environment_list(*, workspace: Workspace) -> QuerySet[Environment]:
    """Every registered version, newest first within a name."""
    return Environment.objects.filter(workspace=workspace).order_by("name", "-version")
