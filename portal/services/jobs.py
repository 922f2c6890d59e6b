"""The one job machinery: every long piece of work is a row first, then a message.

1. `job_create` (in the request's transaction) writes the row of a registered kind
   and, once the transaction commits, sends the Celery message (`job_enqueue`).
2. `job_run` (in a worker) claims the row with one conditional UPDATE, so a duplicate
   message never runs a job twice; the kind's `run(job, progress)` does the work,
   and every `progress(...)` call commits the job's progress and beats its heart.
   Errors that are not the user's (storage, database) are retried with backoff up to
   the kind's `max_attempts`; domain errors fail the job at once. Either way the
   error is stored on the row and shown; nothing is swallowed.
3. `jobs_recover` (Celery beat) re-sends every unfinished job whose heartbeat went
   stale: its message was lost, or its worker died.

Kinds are registered by the apps (portal.registry.JobKind): portal runs them without
knowing what they do.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal import registry
from portal.errors import InvalidParameter, StudioError
from portal.models import Job

log = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)
Status = Job.Status
WAITING = "Waiting for a worker"
WORKER_LOST = "Worker lost: no heartbeat from the worker running it"


def job_create(
    model: type[J],
    *,
    kind: str,
    actor: AbstractBaseUser | None,
    label: str,
    enqueue: bool = True,
    **fields: Any,
) -> J:
    """Write a queued job of a registered kind; its message goes when the caller's
    transaction commits (or at once outside one). `enqueue=False` for a caller that
    runs the job itself (`job_run`)."""
    registry.job_kind(kind)  # refuse kinds nobody can run
    job = model.objects.create(
        kind=kind, label=label[:400], created_by=actor, phase=WAITING, **fields
    )
    if enqueue:
        transaction.on_commit(partial(job_enqueue, job))
    return job


def job_enqueue(job: Job, countdown: int | None = None) -> None:
    """Send the message that makes a worker run `job`: the kind's task (by name, so the
    worker may be another program) on the kind's queue. A broker that is down is
    logged, not raised: the row stays queued and `jobs_recover` sends it later."""
    from portal.celery import app

    kind = registry.job_kind(job.kind)
    options: dict[str, Any] = {"countdown": countdown}
    if kind.queue:
        options["queue"] = kind.queue(job) if callable(kind.queue) else kind.queue
    try:
        app.send_task(kind.task, args=(job._meta.label_lower, str(job.pk)), **options)
    except Exception:
        log.exception("Could not queue job %s; it will be recovered", job.pk)


# --- In the worker ------------------------------------------------------------------------


def job_run(*, model_label: str, job_id: UUID | str) -> Job | None:
    """Do the job: returns it as it ended. A finished job, or one running elsewhere with
    a fresh heartbeat, is left alone (a duplicate message)."""
    model = apps.get_model(model_label)
    job = job_claim(model, job_id)
    if job is None:
        return model.objects.filter(pk=job_id).first()
    kind = registry.job_kind(job.kind)
    try:
        kind.run(job, job_progress(job))
    except Exception as exc:
        # Stored on the row and shown on the job's page; logged with its traceback.
        log.exception("Job %s (%s) failed", job.pk, job.kind)
        return job_fail(job, exc)
    return job_succeed(job)


def job_claim(model: type[J], job_id: UUID | str) -> J | None:
    """Take a queued job, or a running one whose worker went silent, for this worker."""
    first = model.objects.filter(pk=job_id).values_list("kind", flat=True).first()
    if first is None:
        return None
    kind = registry.job_kind(first)
    now = timezone.now()
    claimable = Q(status=Status.QUEUED) | Q(
        status=Status.RUNNING, updated_at__lt=now - kind.stale_after
    )
    claimed = model.objects.filter(claimable, pk=job_id).update(
        status=Status.RUNNING, attempts=F("attempts") + 1, updated_at=now, phase="Starting"
    )
    if not claimed:
        return None
    job = model.objects.select_related("created_by").get(pk=job_id)
    fields = []
    if job.started_at is None:
        job.started_at = now
        fields.append("started_at")
    if job.progress_total == 0:
        job.progress_total = max(kind.units(job), 1)
        fields.append("progress_total")
    if fields:
        job.save(update_fields=fields)
    job_log(job, f"Attempt {job.attempts} started")
    return job


def job_progress(job: Job) -> registry.Progress:
    """A callback for the job's steps: adds done units, sets the phase, beats the heart.
    Called inside a step's transaction, it commits with the rows it counts."""
    state = {"phase": job.phase}

    def report(done: int, phase: str) -> None:
        type(job).objects.filter(pk=job.pk).update(
            progress_done=F("progress_done") + done,
            phase=phase[:200],
            updated_at=timezone.now(),
        )
        if phase != state["phase"]:
            state["phase"] = phase
            job_log(job, phase)

    return report


def job_heartbeat(job: Job) -> None:
    """Tell recovery the job is alive during a long step that reports no progress."""
    type(job).objects.filter(pk=job.pk, status=Status.RUNNING).update(updated_at=timezone.now())


def job_log(job: Job, line: str) -> None:
    """Append a timestamped line to the job's log, keeping the newest LOG_LIMIT chars."""
    model = type(job)
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    with transaction.atomic():
        current = model.objects.select_for_update().filter(pk=job.pk)
        text = current.values_list("log", flat=True).first()
        if text is None:
            return
        text = f"{text}{stamp}  {describe_text(line)}\n"[-model.LOG_LIMIT :]
        current.update(log=text)
    job.log = text


def job_succeed(job: J) -> J:
    now = timezone.now()
    type(job).objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=Status.SUCCEEDED,
        progress_done=F("progress_total"),
        phase=registry.job_kind(job.kind).done_phase,
        error="",
        updated_at=now,
        finished_at=now,
    )
    job_log(job, "Finished")
    job.refresh_from_db()
    return job


def job_fail(job: J, exc: BaseException) -> J:
    """Record a failed attempt: queue a retry after a delay, or fail the job for good."""
    kind = registry.job_kind(job.kind)
    job.refresh_from_db()
    message = describe_error(exc)
    now = timezone.now()
    # Domain errors (e.g. the target was restored meanwhile) will not go away.
    retry = not isinstance(exc, StudioError) and job.attempts < kind.max_attempts
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
    type(job).objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=job.status,
        error=job.error,
        phase=job.phase,
        updated_at=now,
        finished_at=job.finished_at,
    )
    job_log(job, job.error)
    if retry:
        job_enqueue(job, countdown=retry_delay(job))
    else:
        _failed_for_good(job, kind)
    return job


def _failed_for_good(job: Job, kind: registry.JobKind) -> None:
    _audit_failure(job, kind)
    if kind.on_fail is not None:
        kind.on_fail(job)


def retry_delay(job: Job) -> int:
    """Seconds to wait before the next automatic attempt (grows with the attempts)."""
    delays = registry.job_kind(job.kind).retry_delays or (0,)
    return delays[min(max(job.attempts - 1, 0), len(delays) - 1)]


def _audit_failure(job: Job, kind: registry.JobKind) -> None:
    from portal.services.tenancy import audit_record

    target = kind.target(job) if kind.target is not None else None
    if target is not None:
        audit_record(
            actor=None, action="delete_fail", target=target, changes={"error": job.error[:300]}
        )


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
    return describe_text(text)[:1000]


def describe_text(text: str) -> str:
    """`text` with the server's own folders blanked out."""
    for secret_place in (str(settings.DATA_DIR), str(settings.BASE_DIR), settings.ARTIFACT_ROOT):
        if secret_place:
            text = text.replace(secret_place, "…")
    return text


# --- People -------------------------------------------------------------------------------


@transaction.atomic
def job_retry(*, actor: AbstractBaseUser, job: J) -> J:
    """Queue a failed job again; it carries on where it stopped."""
    job = type(job).objects.select_for_update().get(pk=job.pk)
    if not registry.job_kind(job.kind).retryable:
        raise InvalidParameter(f"A {job.kind_label.lower()} job cannot be retried as it is.")
    if job.status != Status.FAILED:
        raise InvalidParameter("Only a failed job can be retried.")
    job.status = Status.QUEUED
    job.attempts = 0
    job.finished_at = None
    job.phase = WAITING
    job.updated_at = timezone.now()
    job.save()
    log.info("Job %s retried by %s", job.pk, actor)
    job_log(job, f"Retried by {actor.get_username() if actor else 'the system'}")
    transaction.on_commit(partial(job_enqueue, job))
    return job


# --- Recovery (Celery beat) ---------------------------------------------------------------


def jobs_recover(*, stale_after: timedelta | None = None) -> list[UUID]:
    """Re-send every unfinished job nobody has touched for its kind's `stale_after` (or
    the one given): its message was lost, or its worker died. Returns their ids.

    A running job whose worker died on its last allowed attempt is not sent again: it
    fails with "Worker lost" (a kind with `max_attempts=1`, such as a remote run, is
    never re-run behind its owner's back)."""
    now = timezone.now()
    recovered: list[UUID] = []
    for kind in registry.job_kinds():
        limit = stale_after if stale_after is not None else kind.stale_after
        stale = kind.model.objects.filter(
            kind=kind.name, status__in=Job.UNFINISHED, updated_at__lt=now - limit
        )
        exhausted = stale.filter(status=Status.RUNNING, attempts__gte=kind.max_attempts)
        for job in kind.model.objects.filter(pk__in=list(exhausted.values_list("pk", flat=True))):
            log.warning("Job %s (%s) lost its worker on its last attempt", job.pk, job.kind)
            job_fail(job, StudioError(WORKER_LOST))
            recovered.append(job.pk)
        stale = stale.exclude(status=Status.RUNNING, attempts__gte=kind.max_attempts)
        ids = list(stale.values_list("pk", flat=True))
        if not ids:
            continue
        # Touching them spaces out re-sends; a dead worker's job becomes claimable.
        kind.model.objects.filter(pk__in=ids, status__in=Job.UNFINISHED).update(
            status=Status.QUEUED, updated_at=now, phase="Recovered; waiting for a worker"
        )
        for job in kind.model.objects.filter(pk__in=ids):
            log.warning("Re-sending stale job %s (%s)", job.pk, job.kind)
            job_log(job, "Recovered: no worker had touched it; sent again")
            job_enqueue(job)
        recovered.extend(ids)
    return recovered
