"""Reads about deletions: who may follow a deletion job, the recent ones of a scope, the
running purge of an experiment, and what deleting a workspace or resource group takes away."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from portal.errors import NotFound
from portal.models import (
    ApiToken,
    DeletionJob,
    ResourceGroup,
    Role,
    Subscription,
    TokenScope,
    Workspace,
    role_at_least,
)
from portal.selectors.access import Scope, User, capped_role, role_for

log = logging.getLogger(__name__)


def deletion_job_parent(job: DeletionJob) -> Scope | None:
    """The scope a job's target sits in (whose readers may follow the job), if it is
    still there: the workspace of an experiment, the resource group of a workspace,
    the subscription of a resource group."""
    if job.kind == DeletionJob.Kind.EXPERIMENT:
        return (
            Workspace.objects.select_related("resource_group__subscription")
            .filter(pk=job.workspace_id)
            .first()
        )
    if job.kind == DeletionJob.Kind.WORKSPACE:
        return (
            ResourceGroup.objects.select_related("subscription")
            .filter(pk=job.resource_group_id)
            .first()
        )
    return Subscription.objects.filter(pk=job.subscription_id).first()


@dataclass
class JobAccess:
    """A deletion job as a given user meets it, and the scope it belongs to."""

    job: DeletionJob
    parent: Scope | None
    role: str | None  # the user's role on the parent
    is_creator: bool
    read_only: bool = False  # the request came with a read-only token

    @property
    def can_retry(self) -> bool:
        """A failed job may be queued again by whoever asked for it, or a contributor."""
        return (
            self.job.status == DeletionJob.Status.FAILED
            and not self.read_only
            and (self.is_creator or role_at_least(self.role, Role.CONTRIBUTOR))
        )


def deletion_job_access(
    *, user: User, job_id: UUID | str, token: ApiToken | None = None
) -> JobAccess:
    """The job, if the user created it or can read its parent scope; else 404. A token
    narrows the role on the parent as everywhere (role_for)."""
    job = DeletionJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or not user.is_authenticated or not user.is_active:
        raise NotFound("Deletion job not found")
    parent = deletion_job_parent(job)
    role = role_for(user, parent, token) if parent is not None else None
    if user.is_superuser and (token is None or token.workspace_id is None):
        role = capped_role(Role.OWNER, token)
    is_creator = job.created_by_id is not None and job.created_by_id == user.pk
    if role is None and not is_creator:
        raise NotFound("Deletion job not found")
    return JobAccess(
        job=job,
        parent=parent,
        role=role,
        is_creator=is_creator,
        read_only=token is not None and token.scope == TokenScope.READ,
    )


def deletion_jobs_for(obj: Subscription | ResourceGroup, limit: int = 10) -> list[DeletionJob]:
    """Recent deletions of what lives directly in obj (for its page)."""
    if isinstance(obj, ResourceGroup):
        jobs = DeletionJob.objects.filter(resource_group_id=obj.id, kind=DeletionJob.Kind.WORKSPACE)
    else:
        jobs = DeletionJob.objects.filter(
            subscription_id=obj.id,
            kind__in=[DeletionJob.Kind.RESOURCE_GROUP, DeletionJob.Kind.WORKSPACE],
        )
    return list(jobs.select_related("created_by")[:limit])


def experiment_purge_job(*, experiment_id: int) -> DeletionJob | None:
    """The queued or running purge of this experiment, if any: while there is one, the
    experiment must not be restored (its files may be gone already)."""
    return DeletionJob.objects.filter(
        kind=DeletionJob.Kind.EXPERIMENT,
        experiment_id=experiment_id,
        status__in=[DeletionJob.Status.QUEUED, DeletionJob.Status.RUNNING],
    ).first()


@dataclass
class DeletionSummary:
    """What deleting a workspace or a resource group takes away, for its confirm page."""

    workspaces: list[Workspace]
    experiments: int
    runs: int
    artifact_files: int
    artifact_bytes: int
    artifacts_counted_all: bool  # False when counting stopped at the limit


ARTIFACT_COUNT_LIMIT = 10_000


def deletion_summary(obj: Workspace | ResourceGroup) -> DeletionSummary:
    """Counts of workspaces, experiments, runs and stored artifact files below obj.
    Artifact files are counted up to ARTIFACT_COUNT_LIMIT, so the page stays fast."""
    from tracking.artifacts import store_for
    from tracking.models import Experiment, Run

    if isinstance(obj, Workspace):
        workspaces = [obj]
    else:
        workspaces = list(Workspace.objects.filter(resource_group=obj).order_by("name"))
    ids = [ws.pk for ws in workspaces]
    files = size = 0
    complete = True
    for ws in workspaces:
        try:
            for entry in store_for(ws).walk(""):
                files += 1
                size += entry.file_size or 0
                if files >= ARTIFACT_COUNT_LIMIT:
                    complete = False
                    break
        except Exception:
            # Unreachable storage (of any backend) must not break the confirm page:
            # the count is shown as partial instead.
            log.warning("Could not count the artifacts of workspace %s", ws.pk, exc_info=True)
            complete = False
        if not complete:
            break
    return DeletionSummary(
        workspaces=workspaces,
        experiments=Experiment.objects.filter(workspace_id__in=ids).count(),
        runs=Run.objects.filter(workspace_id__in=ids).count(),
        artifact_files=files,
        artifact_bytes=size,
        artifacts_counted_all=complete,
    )
