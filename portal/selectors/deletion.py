"""Reads about deletions: who may follow a deletion job, the recent ones of a scope, and
what deleting a workspace or resource group takes away."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from portal import registry
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


def deletion_job_parent(job: DeletionJob) -> Scope | None:
    """The scope a job's target sits in (whose readers may follow the job), if it is
    still there: the resource group of a workspace, the subscription of a resource
    group, the workspace of anything inside one (another app's kind: an experiment)."""
    if job.kind == DeletionJob.Kind.WORKSPACE:
        return (
            ResourceGroup.objects.select_related("subscription")
            .filter(pk=job.resource_group_id)
            .first()
        )
    if job.kind == DeletionJob.Kind.RESOURCE_GROUP:
        return Subscription.objects.filter(pk=job.subscription_id).first()
    return (
        Workspace.objects.select_related("resource_group__subscription")
        .filter(pk=job.workspace_id)
        .first()
    )


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


@dataclass
class DeletionSummary:
    """What deleting a workspace or a resource group takes away, for its confirm page:
    the workspaces, and a row for each thing an app holds in them (experiments, runs,
    stored artifacts…), in the order the apps registered them."""

    workspaces: list[Workspace]
    rows: list[registry.DeletionRow]


def deletion_summary(obj: Workspace | ResourceGroup) -> DeletionSummary:
    """The workspaces below obj and the rows the apps registered for them."""
    if isinstance(obj, Workspace):
        workspaces = [obj]
    else:
        workspaces = list(Workspace.objects.filter(resource_group=obj).order_by("name"))
    rows = [row for entry in registry.deletion_counts() for row in entry.rows(workspaces)]
    return DeletionSummary(workspaces=workspaces, rows=rows)
