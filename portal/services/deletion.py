"""Deletion at every level that is too big for one request: a job per cascade.

An experiment purge, a workspace or a resource group is deleted by a DeletionJob:

1. `deletion_job_request` (in the request): checks the caller and the typed name,
   marks a workspace or resource group as being deleted (from then on every access
   check answers 404, the MLflow API included), writes the job row and, once the
   transaction commits, sends the Celery message.
2. `deletion_job_run` (in a worker): claims the row, purges everything below the
   target in steps that each commit with the job's progress, and records the end.
   Every step is idempotent, so a job interrupted anywhere (a killed worker, an
   error) is finished by running it again.
3. `deletion_jobs_recover` (Celery beat): re-sends jobs whose heartbeat (updated_at)
   went stale, so a lost message or a dead worker is recovered from the row.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.errors import InvalidParameter, NotFound, PermissionDenied, StudioError
from portal.models import (
    ApiToken,
    DeletionJob,
    Membership,
    ResourceGroup,
    Role,
    Workspace,
    role_at_least,
)
from portal.selectors import experiment_purge_job, role_for
from portal.services.tenancy import audit_record

if TYPE_CHECKING:
    from tracking.models import Experiment

log = logging.getLogger(__name__)

# A running job touches its row at every step; one untouched for this long has no
# worker any more. Steps are batches (a few seconds), so this is generous.
STALE_AFTER = timedelta(minutes=10)
# Unexpected errors (storage or database hiccups) are retried this many times in all,
# after these delays; then the job is failed and the error shown.
MAX_ATTEMPTS = 3
RETRY_DELAYS = (30, 120)

Kind = DeletionJob.Kind
Status = DeletionJob.Status
UNFINISHED = (Status.QUEUED, Status.RUNNING)


def _label(*parts: str) -> str:
    return " › ".join(parts)[:400]


# --- Request ---------------------------------------------------------------------------


@transaction.atomic
def deletion_job_request(
    *,
    actor: AbstractBaseUser,
    target: Experiment | Workspace | ResourceGroup,
    confirm_name: str | None = None,
) -> DeletionJob:
    """Ask for `target` to be deleted for good by a background job; returns the job.

    Workspaces and resource groups need `confirm_name`, their exact name as typed by
    the user, and the contributor role on them; they vanish at once. Experiments must
    be soft-deleted first (INVALID_PARAMETER_VALUE otherwise) and need the contributor
    role on their workspace; asking again while a purge is under way returns that job.
    """
    from tracking.models import Experiment

    if isinstance(target, Experiment):
        job = _request_experiment(actor, target, confirm_name)
    elif isinstance(target, Workspace | ResourceGroup):
        job = _request_scope(actor, target, confirm_name)
    else:
        raise TypeError(f"cannot delete a {type(target).__name__} with a job")
    transaction.on_commit(partial(_enqueue, job.pk))
    return job


def _require_contributor(actor: AbstractBaseUser, scope: Workspace | ResourceGroup, what: str):
    role = role_for(actor, scope)
    if role is None:
        raise NotFound(f"{what} not found")
    if not role_at_least(role, Role.CONTRIBUTOR):
        raise PermissionDenied(f"Deleting needs the contributor role on the {what.lower()}.")


def _check_typed_name(typed: str | None, name: str, what: str) -> None:
    typed = (typed or "").strip()
    if not typed:
        raise InvalidParameter(f"Type the {what} name to confirm.")
    if typed != name:
        raise InvalidParameter(
            f"The name you typed does not match. Type {name} exactly to confirm; "
            "nothing was deleted."
        )


def _request_scope(
    actor: AbstractBaseUser, target: Workspace | ResourceGroup, confirm_name: str | None
) -> DeletionJob:
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
    _require_contributor(actor, locked, what)
    _check_typed_name(confirm_name, locked.name, what.lower())
    job = _scope_job_create(actor, locked)
    target.deletion_requested_at = locked.deletion_requested_at
    return job


def _scope_job_create(actor: AbstractBaseUser, locked: Workspace | ResourceGroup) -> DeletionJob:
    """Mark the scope as being deleted and write its job (checks are the caller's)."""
    locked.deletion_requested_at = timezone.now()
    locked.save(update_fields=["deletion_requested_at"])
    if isinstance(locked, Workspace):
        rg = locked.resource_group
        job = DeletionJob.objects.create(
            kind=Kind.WORKSPACE,
            subscription_id=rg.subscription_id,
            resource_group_id=rg.id,
            workspace_id=locked.id,
            label=_label(rg.subscription.name, rg.name, locked.name),
            created_by=actor,
            phase="Waiting for a worker",
        )
    else:
        job = DeletionJob.objects.create(
            kind=Kind.RESOURCE_GROUP,
            subscription_id=locked.subscription_id,
            resource_group_id=locked.id,
            label=_label(locked.subscription.name, locked.name),
            created_by=actor,
            phase="Waiting for a worker",
        )
    audit_record(actor=actor, action="delete_request", target=locked, changes={"job": str(job.pk)})
    transaction.on_commit(_forget_cached_access)
    return job


def _request_experiment(
    actor: AbstractBaseUser, target: Experiment, confirm_name: str | None
) -> DeletionJob:
    from tracking.models import Experiment, LifecycleStage

    workspace = Workspace.objects.select_related("resource_group__subscription").get(
        pk=target.workspace_id
    )
    _require_contributor(actor, workspace, "Workspace")
    experiment = Experiment.objects.select_for_update().filter(pk=target.pk).first()
    if experiment is None:
        raise NotFound(f"No Experiment with id={target.pk} exists")
    if experiment.lifecycle_stage != LifecycleStage.DELETED:
        raise InvalidParameter(
            f"Only deleted experiments can be purged; delete '{experiment.name}' first."
        )
    if confirm_name is not None:
        _check_typed_name(confirm_name, experiment.name, "experiment")
    running = experiment_purge_job(experiment_id=experiment.pk)
    if running is not None:
        return running
    rg = workspace.resource_group
    job = DeletionJob.objects.create(
        kind=Kind.EXPERIMENT,
        subscription_id=rg.subscription_id,
        resource_group_id=rg.id,
        workspace_id=workspace.id,
        experiment_id=experiment.pk,
        label=_label(rg.subscription.name, rg.name, workspace.name, experiment.name),
        created_by=actor,
        phase="Waiting for a worker",
    )
    audit_record(
        actor=actor, action="purge_request", target=experiment, changes={"job": str(job.pk)}
    )
    return job


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
            job = _scope_job_create(actor, locked)
        else:
            # Whoever holds it now, this request does the work.
            DeletionJob.objects.filter(pk=job.pk).update(status=Status.QUEUED)
        transaction.on_commit(_forget_cached_access)
    return deletion_job_run(job_id=job.pk) or job


def _forget_cached_access() -> None:
    """This process's MLflow access cache must not serve the workspace any longer (other
    processes forget within ACCESS_CACHE_SECONDS)."""
    from tracking.mlflow.protocol import access_cache_clear

    access_cache_clear()


def _enqueue(job_id: UUID, countdown: int | None = None) -> None:
    from portal import tasks

    try:
        tasks.deletion_job_run.apply_async((str(job_id),), countdown=countdown)
    except Exception:
        # The broker is down: the row stays queued and the beat task re-sends it.
        log.exception("Could not queue deletion job %s; it will be recovered", job_id)


@transaction.atomic
def deletion_job_retry(*, actor: AbstractBaseUser, job: DeletionJob) -> DeletionJob:
    """Queue a failed job again; it carries on where it stopped."""
    job = DeletionJob.objects.select_for_update().get(pk=job.pk)
    if job.status != Status.FAILED:
        raise InvalidParameter("Only a failed deletion job can be retried.")
    job.status = Status.QUEUED
    job.attempts = 0
    job.finished_at = None
    job.phase = "Waiting for a worker"
    job.updated_at = timezone.now()
    job.save()
    log.info("Deletion job %s retried by %s", job.pk, actor)
    transaction.on_commit(partial(_enqueue, job.pk))
    return job


# --- Run ---------------------------------------------------------------------------------


def deletion_job_run(*, job_id: UUID | str) -> DeletionJob | None:
    """Do the job (in a worker): returns it as it ended. A job that is finished, or
    running elsewhere with a fresh heartbeat, is left alone (duplicate messages)."""
    job = _claim(job_id)
    if job is None:
        return DeletionJob.objects.filter(pk=job_id).first()
    try:
        _RUNNERS[job.kind](job)
    except Exception as exc:
        # Stored on the row and shown on the job page; logged with its traceback.
        log.exception("Deletion job %s failed", job.pk)
        return _record_failure(job, exc)
    return _record_success(job)


def _retry_delay(job: DeletionJob) -> int:
    """Seconds to wait before the next automatic attempt."""
    return RETRY_DELAYS[min(max(job.attempts - 1, 0), len(RETRY_DELAYS) - 1)]


def _claim(job_id: UUID | str) -> DeletionJob | None:
    now = timezone.now()
    # One conditional UPDATE, so two workers given the same job never both start it.
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, updated_at__lt=now - STALE_AFTER)
    claimed = DeletionJob.objects.filter(claimable, pk=job_id).update(
        status=Status.RUNNING, attempts=F("attempts") + 1, updated_at=now, phase="Starting"
    )
    if not claimed:
        return None
    job = DeletionJob.objects.select_related("created_by").get(pk=job_id)
    fields = []
    if job.started_at is None:
        job.started_at = now
        fields.append("started_at")
    if job.progress_total == 0:
        job.progress_total = _units(job)
        fields.append("progress_total")
    if fields:
        job.save(update_fields=fields)
    return job


def _units(job: DeletionJob) -> int:
    """The job's size in progress units: runs, experiments and a few fixed steps."""
    from tracking.models import Experiment
    from tracking.services import purge

    if job.kind == Kind.EXPERIMENT:
        experiment = Experiment.objects.filter(pk=job.experiment_id).first()
        return purge.experiment_purge_units(experiment) if experiment else 1
    if job.kind == Kind.WORKSPACE:
        workspace = Workspace.objects.filter(pk=job.workspace_id).first()
        return purge.workspace_purge_units(workspace) if workspace else 1
    workspaces = Workspace.objects.filter(resource_group_id=job.resource_group_id)
    return sum(purge.workspace_purge_units(ws) for ws in workspaces) + 1


def _progress(job: DeletionJob):
    """A callback for the purge steps: adds done units, sets the phase, beats the heart."""

    def report(done: int, phase: str) -> None:
        DeletionJob.objects.filter(pk=job.pk).update(
            progress_done=F("progress_done") + done, phase=phase[:200], updated_at=timezone.now()
        )

    return report


def _run_experiment(job: DeletionJob) -> None:
    from tracking.models import Experiment
    from tracking.services import purge

    experiment = Experiment.objects.select_related("workspace").filter(pk=job.experiment_id).first()
    if experiment is not None:  # else a previous attempt finished the work
        purge.experiment_purge(actor=job.created_by, experiment=experiment, progress=_progress(job))


def _run_workspace(job: DeletionJob) -> None:
    workspace = (
        Workspace.objects.select_related("resource_group__subscription")
        .filter(pk=job.workspace_id)
        .first()
    )
    if workspace is not None:
        _workspace_purge(job, workspace)


def _run_resource_group(job: DeletionJob) -> None:
    rg = ResourceGroup.objects.select_related("subscription").filter(pk=job.resource_group_id)
    rg = rg.first()
    if rg is None:
        return
    workspaces = Workspace.objects.select_related("resource_group__subscription").filter(
        resource_group=rg
    )
    for workspace in workspaces.order_by("created_at"):
        _workspace_purge(job, workspace)
    report = _progress(job)
    with transaction.atomic():
        report(0, f"Removing resource group {rg.name}")
        Membership.objects.filter(resource_group=rg).delete()
        audit_record(actor=job.created_by, action="delete", target=rg, changes={"job": str(job.pk)})
        rg.delete()
        report(1, f"Removed resource group {rg.name}")


def _workspace_purge(job: DeletionJob, workspace: Workspace) -> None:
    from tracking.services import purge

    report = _progress(job)
    purge.workspace_tracking_purge(workspace=workspace, progress=report)
    with transaction.atomic():
        report(0, f"Removing workspace {workspace.name}")
        Membership.objects.filter(workspace=workspace).delete()
        ApiToken.objects.filter(workspace=workspace).delete()
        audit_record(
            actor=job.created_by, action="delete", target=workspace, changes={"job": str(job.pk)}
        )
        # Whatever else belongs to the workspace (rows of other apps) cascades here.
        workspace.delete()
        report(1, f"Removed workspace {workspace.name}")


_RUNNERS = {
    Kind.EXPERIMENT: _run_experiment,
    Kind.WORKSPACE: _run_workspace,
    Kind.RESOURCE_GROUP: _run_resource_group,
}


def _record_success(job: DeletionJob) -> DeletionJob:
    now = timezone.now()
    DeletionJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=Status.SUCCEEDED,
        progress_done=F("progress_total"),
        phase="Deleted",
        error="",
        updated_at=now,
        finished_at=now,
    )
    job.refresh_from_db()
    return job


def describe_error(exc: BaseException) -> str:
    """What went wrong, for people: no traceback, no server paths."""
    if isinstance(exc, StudioError):
        text = exc.message
    elif isinstance(exc, OSError):
        text = f"Storage error: {exc.strerror or type(exc).__name__}"
    elif isinstance(exc, DatabaseError):
        text = f"Database error: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    for secret_place in (str(settings.DATA_DIR), str(settings.BASE_DIR), settings.ARTIFACT_ROOT):
        text = text.replace(secret_place, "…")
    return text[:1000]


def _record_failure(job: DeletionJob, exc: BaseException) -> DeletionJob:
    job.refresh_from_db()
    message = describe_error(exc)
    now = timezone.now()
    # Domain errors (e.g. the experiment was restored meanwhile) will not go away.
    retry = not isinstance(exc, StudioError) and job.attempts < MAX_ATTEMPTS
    if retry:
        job.status = Status.QUEUED
        job.error = f"Attempt {job.attempts} failed: {message}. Retrying."
        job.phase = "Waiting to retry"
    else:
        job.status = Status.FAILED
        job.error = message
        job.phase = f"Stopped at “{job.phase}”"[:200] if job.phase else "Stopped"
        job.finished_at = now
    job.updated_at = now
    DeletionJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=job.status,
        error=job.error,
        phase=job.phase,
        updated_at=now,
        finished_at=job.finished_at,
    )
    if retry:
        _enqueue(job.pk, countdown=_retry_delay(job))
    else:
        _audit_failure(job)
    return job


def _audit_failure(job: DeletionJob) -> None:
    from tracking.models import Experiment

    model: Any = {
        Kind.EXPERIMENT: (Experiment, job.experiment_id),
        Kind.WORKSPACE: (Workspace, job.workspace_id),
        Kind.RESOURCE_GROUP: (ResourceGroup, job.resource_group_id),
    }[job.kind]
    target = model[0].objects.filter(pk=model[1]).first()
    if target is not None:
        audit_record(
            actor=None, action="delete_fail", target=target, changes={"error": job.error[:300]}
        )


# --- Recovery (Celery beat) ------------------------------------------------------------


def deletion_jobs_recover(*, stale_after: timedelta = STALE_AFTER) -> list[UUID]:
    """Re-send every unfinished job nobody has touched for `stale_after`: its message
    was lost, or its worker died. Returns their ids."""
    now = timezone.now()
    stale = DeletionJob.objects.filter(status__in=UNFINISHED, updated_at__lt=now - stale_after)
    ids = list(stale.values_list("pk", flat=True))
    if ids:
        # Touching them spaces out re-sends; a dead worker's job becomes claimable.
        DeletionJob.objects.filter(pk__in=ids, status__in=UNFINISHED).update(
            status=Status.QUEUED, updated_at=now, phase="Recovered; waiting for a worker"
        )
        for job_id in ids:
            log.warning("Re-sending stale deletion job %s", job_id)
            _enqueue(job_id)
    return ids
