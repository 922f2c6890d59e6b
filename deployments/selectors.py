"""Reads of the deployments app shared by pages and APIs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from deployments.models import ComputeTarget, ComputeWorker, Environment, RemoteJob
from portal.errors import NotFound
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


# A worker seen within this long is reported alive (it beats more often than that).
WORKER_ALIVE = timedelta(seconds=60)


def compute_target_detail(*, workspace: Workspace, name: str) -> ComputeTarget:
    """One target by name (case-insensitive; `local` made on first use) with the counts
    and workers compute_target_list gives each (RESOURCE_DOES_NOT_EXIST otherwise)."""
    from deployments.services.compute import compute_target_get

    target = compute_target_get(workspace=workspace, name=name)
    return compute_targets_with_workers(ComputeTarget.objects.filter(pk=target.pk))[0]


def compute_target_data(target: ComputeTarget) -> dict[str, Any]:
    """A target of compute_target_list as plain data (API and pages)."""
    now = timezone.now()
    return {
        "name": target.name,
        "kind": target.kind,
        "description": target.description,
        "max_nodes": target.max_nodes,
        "is_local": target.is_local,
        "queue": target.queue,
        "queued": target.queued_count,
        "running": target.running_count,
        "workers": [
            {
                "hostname": worker.hostname,
                "slots": worker.slots,
                "version": worker.version,
                "last_seen": worker.last_seen,
                "alive": now - worker.last_seen <= WORKER_ALIVE,
            }
            for worker in target.recent_workers
        ],
        "created_at": target.created_at,
        "created_by": _username(target.created_by),
        # A Kubernetes target's settings; its kubeconfig is never given back, only whether
        # one is held.
        "config": dict(target.config or {}),
        "has_kubeconfig": bool(target.secret),
    }


def _username(user: AbstractBaseUser | None) -> str | None:
    return user.get_username() if user is not None else None


# --- Environments -----------------------------------------------------------------------


def environment_latest_list(*, workspace: Workspace) -> QuerySet[Environment]:
    """The latest version of each environment name, by name, curated ones included
    (their rows made, or moved to the server's mlflow, on first use)."""
    from deployments.services.environments import curated_environments, environment_get

    for name in curated_environments():
        environment_get(workspace=workspace, name=name)
    newest = Environment.objects.filter(workspace=workspace, name=OuterRef("name")).order_by(
        "-version"
    )
    return (
        Environment.objects.filter(workspace=workspace)
        .filter(version=Subquery(newest.values("version")[:1]))
        .select_related("created_by")
        .order_by("name")
    )


def environment_versions(*, workspace: Workspace, name: str) -> QuerySet[Environment]:
    """Every version of one environment, newest first (RESOURCE_DOES_NOT_EXIST when the
    name has none)."""
    from deployments.services.environments import environment_get

    latest = environment_get(workspace=workspace, name=name)  # made, if curated; or 404
    return (
        Environment.objects.filter(workspace=workspace, name=latest.name)
        .select_related("created_by")
        .order_by("-version")
    )


def environment_data(environment: Environment) -> dict[str, Any]:
    from deployments.services.environments import curated_environments

    return {
        "name": environment.name,
        "version": environment.version,
        "python_version": environment.python_version or None,
        "pip_packages": list(environment.pip_packages),
        "env_vars": dict(environment.env_vars),
        "description": environment.description,
        "spec_hash": environment.spec_hash,
        "curated": environment.name in curated_environments(),
        "created_at": environment.created_at,
        "created_by": _username(environment.created_by),
    }


# --- Remote jobs ------------------------------------------------------------------------


def remote_job_list(
    *, workspace: Workspace, compute: str = "", stage: str = ""
) -> QuerySet[RemoteJob]:
    """The workspace's remote runs, optionally of one target (by name: ended jobs of a
    deleted target still match) or at one stage; with what remote_job_data reads."""
    jobs = RemoteJob.objects.filter(workspace=workspace).select_related(
        "run__experiment", "environment", "created_by"
    )
    if compute:
        jobs = jobs.filter(compute_name__iexact=compute)
    if stage:
        jobs = jobs.filter(stage=stage)
    return jobs


def remote_job_get(*, workspace: Workspace, run_id: str) -> RemoteJob:
    """The workspace's remote run of the MLflow run `run_id`, or RESOURCE_DOES_NOT_EXIST."""
    # PostgreSQL refuses NUL in a text parameter with an error, not a miss.
    job = None
    if isinstance(run_id, str) and run_id and "\x00" not in run_id:
        job = remote_job_list(workspace=workspace).filter(run__run_uuid=run_id).first()
    if job is None:
        raise NotFound(f"No remote run with run id '{str(run_id)[:40]}' in this workspace.")
    return job


def remote_job_data(job: RemoteJob) -> dict[str, Any]:
    """A remote run as plain data (its run, experiment and environment loaded, as
    remote_job_list does); the API adds the run page's URL."""
    run = job.run
    return {
        "run_id": run.run_uuid,
        "experiment_id": str(run.experiment_id),
        "experiment_name": run.experiment.name,
        "run_name": run.name,
        "compute": job.compute_name,
        "environment": {"name": job.environment.name, "version": job.environment.version},
        "script": job.script,
        "arguments": list(job.arguments),
        "snapshot_hash": job.snapshot_hash,
        "stage": job.stage,
        "status": job.stage,
        "run_status": run.status,
        "exit_code": job.exit_code,
        "error": job.error,
        "sandboxed": job.sandboxed,
        "cancel_requested": job.cancel_requested_at is not None,
        "max_run_duration_seconds": job.max_run_duration_seconds,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "created_by": _username(job.created_by),
        "log_bytes": job.log_bytes,
    }
