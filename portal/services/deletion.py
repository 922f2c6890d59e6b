"""Deleting a workspace or a resource group for good: a deletion job per cascade.

1. `deletion_job_request` (in the request): checks the caller and the typed name,
   marks the workspace or resource group as being deleted (from then on every access
   check answers 404, the MLflow API included) and writes the job, whose message the
   job machinery sends once the transaction commits (portal.services.jobs).
2. In a worker, the job runs the purge steps the apps registered (portal.registry:
   deployments stops what is live, tracking removes runs and artifacts), each
   committing with the job's progress, then removes the rows portal owns. Every step
   is idempotent, so a job interrupted anywhere is finished by running it again.

Other apps delete their own things through the same job: `workspace_deletion_job_create`
writes a job of a kind they registered for something inside a workspace (the
tracking app's experiment purge).
"""

from __future__ import annotations

import logging
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from portal import registry
from portal.access_cache import access_cache_clear
from portal.errors import InvalidParameter, NotFound, PermissionDenied
from portal.models import (
    ApiToken,
    DeletionJob,
    Job,
    Membership,
    ResourceGroup,
    Role,
    Workspace,
    role_at_least,
)
from portal.selectors import role_for
from portal.services.jobs import job_create, job_retry, job_run
from portal.services.tenancy import audit_record

log = logging.getLogger(__name__)

Kind = DeletionJob.Kind
Status = DeletionJob.Status
UNFINISHED = Job.UNFINISHED


def _label(*parts: str) -> str:
    return " › ".join(parts)[:400]


# --- Request ---------------------------------------------------------------------------


@transaction.atomic
def deletion_job_request(
    *,
    actor: AbstractBaseUser,
    target: Workspace | ResourceGroup,
    confirm_name: str | None = None,
) -> DeletionJob:
    """Ask for a workspace or resource group to be deleted for good by a background
    job; returns the job. It needs `confirm_name`, the exact name as typed by the user,
    and the contributor role on the target; the target vanishes at once."""
    if not isinstance(target, Workspace | ResourceGroup):
        raise TypeError(f"cannot delete a {type(target).__name__} with a deletion job")
    is_workspace = isinstance(target, Workspace)
    what = "Workspace" if is_workspace else "Resource group"
    related = "resource_group__subscription" if is_workspace else "subscription"
    # The lock makes two simultaneous requests produce one job.
    locked = (
        type(target)
        .objects.select_for_update()
        .select_related(related)
        .filter(pk=target.pk)
        .first()
    )
    if locked is None or locked.deletion_requested_at is not None:
        raise NotFound(f"{what} not found")
    require_contributor(actor, locked, what)
    check_typed_name(confirm_name, locked.name, what.lower())
    job = _scope_job_create(actor, locked)
    target.deletion_requested_at = locked.deletion_requested_at
    return job


def require_contributor(
    actor: AbstractBaseUser, scope: Workspace | ResourceGroup, what: str
) -> None:
    """NotFound without a role on scope, PermissionDenied below contributor."""
    role = role_for(actor, scope)
    if role is None:
        raise NotFound(f"{what} not found")
    if not role_at_least(role, Role.CONTRIBUTOR):
        raise PermissionDenied(f"Deleting needs the contributor role on the {what.lower()}.")


def check_typed_name(typed: str | None, name: str, what: str) -> None:
    """The typed-name confirmation: `typed` must be `name` exactly."""
    typed = (typed or "").strip()
    if not typed:
        raise InvalidParameter(f"Type the {what} name to confirm.")
    if typed != name:
        raise InvalidParameter(
            f"The name you typed does not match. Type {name} exactly to confirm; "
            "nothing was deleted."
        )


def _scope_job_create(
    actor: AbstractBaseUser, locked: Workspace | ResourceGroup, *, enqueue: bool = True
) -> DeletionJob:
    """Mark the scope as being deleted and write its job (checks are the caller's)."""
    locked.deletion_requested_at = timezone.now()
    locked.save(update_fields=["deletion_requested_at"])
    if isinstance(locked, Workspace):
        rg = locked.resource_group
        job = job_create(
            DeletionJob,
            kind=Kind.WORKSPACE,
            actor=actor,
            label=_label(rg.subscription.name, rg.name, locked.name),
            subscription_id=rg.subscription_id,
            resource_group_id=rg.id,
            workspace_id=locked.id,
            enqueue=enqueue,
        )
    else:
        job = job_create(
            DeletionJob,
            kind=Kind.RESOURCE_GROUP,
            actor=actor,
            label=_label(locked.subscription.name, locked.name),
            subscription_id=locked.subscription_id,
            resource_group_id=locked.id,
            enqueue=enqueue,
        )
    audit_record(actor=actor, action="delete_request", target=locked, changes={"job": str(job.pk)})
    transaction.on_commit(_forget_cached_access)
    return job


def workspace_deletion_job_create(
    *, actor: AbstractBaseUser, workspace: Workspace, kind: str, target_id: str, name: str
) -> DeletionJob:
    """A deletion job of another app's registered kind, for something named `name`
    inside `workspace` (checks are the caller's; it runs in the caller's transaction)."""
    rg = workspace.resource_group
    return job_create(
        DeletionJob,
        kind=kind,
        actor=actor,
        label=_label(rg.subscription.name, rg.name, workspace.name, name),
        subscription_id=rg.subscription_id,
        resource_group_id=rg.id,
        workspace_id=workspace.id,
        target_id=target_id,
    )


def deletion_job_execute(
    *, actor: AbstractBaseUser, target: Workspace | ResourceGroup
) -> DeletionJob:
    """Delete target now, in this process, through the same job as the pages: for the
    admin console, whose staff permission and confirmation page stand in for the role
    and the typed name. An unfinished job for target is finished instead."""
    kind = Kind.WORKSPACE if isinstance(target, Workspace) else Kind.RESOURCE_GROUP
    id_field = "workspace_id" if kind == Kind.WORKSPACE else "resource_group_id"
    with transaction.atomic():
        locked = (
            type(target)
            .objects.select_for_update()
            .select_related(
                "resource_group__subscription" if kind == Kind.WORKSPACE else "subscription"
            )
            .filter(pk=target.pk)
            .first()
        )
        if locked is None:
            raise NotFound("Nothing to delete: it is gone already.")
        job = DeletionJob.objects.filter(
            kind=kind, status__in=UNFINISHED, **{id_field: locked.pk}
        ).first()
        if job is None:
            job = _scope_job_create(actor, locked, enqueue=False)
        else:
            # Whoever holds it now, this request does the work.
            DeletionJob.objects.filter(pk=job.pk).update(status=Status.QUEUED)
        transaction.on_commit(_forget_cached_access)
    return deletion_job_run(job_id=job.pk) or job


def _forget_cached_access() -> None:
    """This process's MLflow access cache must not serve the workspace any longer (other
    processes forget within ACCESS_CACHE_SECONDS)."""
    access_cache_clear()


def deletion_job_retry(*, actor: AbstractBaseUser, job: DeletionJob) -> DeletionJob:
    """Queue a failed deletion job again; it carries on where it stopped."""
    return job_retry(actor=actor, job=job)


def deletion_job_run(*, job_id: UUID | str) -> DeletionJob | None:
    """Do a deletion job here and now (the worker's task does the same)."""
    return job_run(model_label=DeletionJob._meta.label_lower, job_id=job_id)


# --- The scope kinds, run by the job machinery ------------------------------------------


def _workspace_units(workspace: Workspace) -> int:
    return sum(step.units(workspace) for step in registry.purge_steps()) + 1


def scope_job_units(job: DeletionJob) -> int:
    """The job's size in progress units: what the purge steps count, and a unit per row."""
    if job.kind == Kind.WORKSPACE:
        workspace = Workspace.objects.filter(pk=job.workspace_id).first()
        return _workspace_units(workspace) if workspace else 1
    workspaces = Workspace.objects.filter(resource_group_id=job.resource_group_id)
    return sum(_workspace_units(ws) for ws in workspaces) + 1


def workspace_job_run(job: DeletionJob, progress: registry.Progress) -> None:
    workspace = (
        Workspace.objects.select_related("resource_group__subscription")
        .filter(pk=job.workspace_id)
        .first()
    )
    if workspace is not None:  # else a previous attempt finished the work
        _workspace_purge(job, workspace, progress)


def resource_group_job_run(job: DeletionJob, progress: registry.Progress) -> None:
    rg = ResourceGroup.objects.select_related("subscription").filter(pk=job.resource_group_id)
    rg = rg.first()
    if rg is None:
        return
    workspaces = Workspace.objects.select_related("resource_group__subscription").filter(
        resource_group=rg
    )
    for workspace in workspaces.order_by("created_at"):
        _workspace_purge(job, workspace, progress)
    with transaction.atomic():
        progress(0, f"Removing resource group {rg.name}")
        Membership.objects.filter(resource_group=rg).delete()
        audit_record(actor=job.created_by, action="delete", target=rg, changes={"job": str(job.pk)})
        rg.delete()
        progress(1, f"Removed resource group {rg.name}")


def _workspace_purge(job: DeletionJob, workspace: Workspace, progress: registry.Progress) -> None:
    # What the apps hold (live services and jobs first, then tracking data and files).
    for step in registry.purge_steps():
        step.run(workspace=workspace, progress=progress)
    with transaction.atomic():
        progress(0, f"Removing workspace {workspace.name}")
        Membership.objects.filter(workspace=workspace).delete()
        ApiToken.objects.filter(workspace=workspace).delete()
        audit_record(
            actor=job.created_by, action="delete", target=workspace, changes={"job": str(job.pk)}
        )
        # Whatever else belongs to the workspace (rows of other apps) cascades here.
        workspace.delete()
        progress(1, f"Removed workspace {workspace.name}")


def scope_job_target(job: DeletionJob) -> Workspace | ResourceGroup | None:
    if job.kind == Kind.WORKSPACE:
        return Workspace.objects.filter(pk=job.workspace_id).first()
    return ResourceGroup.objects.filter(pk=job.resource_group_id).first()


def register_scope_kinds() -> None:
    """portal's own deletion kinds (called from PortalConfig.ready)."""
    common = {"model": DeletionJob, "units": scope_job_units, "target": scope_job_target}
    registry.register_job_kind(
        registry.JobKind(
            name=Kind.WORKSPACE,
            label=Kind.WORKSPACE.label,
            run=workspace_job_run,
            done_phase="Deleted",
            **common,
        )
    )
    registry.register_job_kind(
        registry.JobKind(
            name=Kind.RESOURCE_GROUP,
            label=Kind.RESOURCE_GROUP.label,
            run=resource_group_job_run,
            done_phase="Deleted",
            **common,
        )
    )
