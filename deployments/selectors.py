"""Reads of the deployments app shared by pages and APIs."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from deployments.models import ComputeTarget, ComputeWorker, Environment
from portal.models import Job, Workspace

# A worker seen within this long is listed as one of its target's workers.
WORKER_RECENT = timedelta(minutes=2)


def compute_target_list(*, workspace: Workspace) -> list[ComputeTarget]:
    """The workspace's targets (`local` made on first use), each with `queued_count`,
    `running_count` and `recent_workers` (seen within WORKER_RECENT)."""
    from deployments.services.compute import compute_target_local

    compute_target_local(workspace=workspace)
    return compute_targets_with_workers(ComputeTarget.objects.filter(workspace=workspace))


def compute_targets_with_workers(targets: QuerySet[ComputeTarget]) -> list[ComputeTarget]:
    """`targets` by name with `queued_count`, `running_count` and `recent_workers`: the
    studio's own worker (no target) is listed with every `local` target."""
    recent = ComputeWorker.objects.filter(last_seen__gte=timezone.now() - WORKER_RECENT)
    rows = list(
        targets.annotate(
            queued_count=Count("jobs", filter=Q(jobs__status=Job.Status.QUEUED), distinct=True),
            running_count=Count("jobs", filter=Q(jobs__status=Job.Status.RUNNING), distinct=True),
        )
        .prefetch_related(Prefetch("workers", queryset=recent, to_attr="recent_workers"))
        .order_by("name")
    )
    if any(target.is_local for target in rows):
        studio_workers = list(recent.filter(target__isnull=True))
        for target in rows:
            if target.is_local:
                target.recent_workers = studio_workers + target.recent_workers
    return rows


def environment_list(*, workspace: Workspace) -> QuerySet[Environment]:
    """Every registered version, newest first within a name."""
    return Environment.objects.filter(workspace=workspace).order_by("name", "-version")
