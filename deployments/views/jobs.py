"""The run page's Job tab for remote runs, and what it asks for while open: the stage
card (polled by htmx until the job ends), the log's new text (polled by studio.js's
log pane), the snapshot's files (when unfolded) and the Cancel button."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from deployments.models import RemoteJob, Stage
from deployments.models.jobs import STAGE_ORDER
from deployments.services.jobs import LOG_PATH, remote_job_cancel, remote_job_log_read
from deployments.services.snapshots import snapshot_files
from portal.errors import InvalidParameter, NotFound, StudioError
from portal.selectors import Access
from tracking.models import Run
from tracking.views.common import run_url, workspace_for, ws_reverse

TAB = "job"
# The log the tab opens with: its end. Earlier output is in the run's artifacts.
TAIL_BYTES = 64 * 1024
# The most one poll of the log answers; a pane behind asks again at once.
POLL_BYTES = 256 * 1024
SNAPSHOT_FILES_SHOWN = 500

# A line of the job's own log (portal.services.jobs.job_log): "2026-01-01 12:00:00  Running".
_JOB_LOG_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})  (.*)$", re.MULTILINE)
_LOGGED_STAGES = {Stage.RUNNING.label: Stage.RUNNING, Stage.FINALIZING.label: Stage.FINALIZING}


_FOR_PAGE = ("environment", "compute_target", "created_by")


def job_for_run(run: Run) -> RemoteJob | None:
    """The run's remote job with what the tab shows, or None for a run logged otherwise.
    Kept on the run, so the tab's `shown` and `context` read it once per page."""
    if not hasattr(run, "_page_remote_job"):
        run._page_remote_job = (
            RemoteJob.objects.select_related(*_FOR_PAGE).filter(run_id=run.pk).first()
        )
    return run._page_remote_job


@dataclass(frozen=True)
class Step:
    """A stage on the timeline: `state` is done, current, ended, pending or skipped."""

    stage: str
    label: str
    state: str
    at: datetime | None


def _logged_times(log: str) -> dict[str, datetime]:
    """When the job reached the stages only its log dates (the first line of each)."""
    times: dict[str, datetime] = {}
    for stamp, text in _JOB_LOG_LINE.findall(log):
        stage = _LOGGED_STAGES.get(text.split(":", 1)[0])
        if stage is not None and stage not in times:
            times[stage] = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return times


def stage_steps(job: RemoteJob) -> list[Step]:
    """Queued → Preparing → Running → Finalizing → the end, each with its time where known.
    Of an ended job, the stages it never reached are skipped (a run canceled in the queue
    was never prepared)."""
    times = {Stage.QUEUED: job.created_at, Stage.PREPARING: job.started_at}
    times.update(_logged_times(job.log))
    current = STAGE_ORDER[Stage(job.stage)]
    steps = []
    for stage in (Stage.QUEUED, Stage.PREPARING, Stage.RUNNING, Stage.FINALIZING):
        at = times.get(stage)
        index = STAGE_ORDER[stage]
        if job.is_ended:
            state = "done" if at is not None or index == 0 else "skipped"
        else:
            state = "done" if index < current else "current" if index == current else "pending"
        steps.append(Step(stage.value, stage.label, state, at))
    if job.is_ended:
        end = Stage(job.stage)
        steps.append(Step(end.value, end.label, "ended", job.finished_at))
    else:
        steps.append(Step(Stage.COMPLETED.value, "Completed", "pending", None))
    return steps


def _urls(run: Run) -> dict[str, str]:
    ws, kw = run.workspace, {"run_id": run.run_uuid}
    return {
        "status_url": ws_reverse(ws, "remote-job-status", **kw),
        "log_url": ws_reverse(ws, "remote-job-log", **kw),
        "files_url": ws_reverse(ws, "remote-job-files", **kw),
        "cancel_url": ws_reverse(ws, "remote-job-cancel", **kw),
        "log_file_url": f"{ws_reverse(ws, 'run-artifact', **kw)}?path={LOG_PATH}&download=1",
    }


def _run_time_ms(job: RemoteJob) -> int | None:
    """From the claim to the end (or now, while it lasts)."""
    if job.started_at is None:
        return None
    end = job.finished_at or timezone.now()
    return max(0, int((end - job.started_at).total_seconds() * 1000))


def _status_context(job: RemoteJob, run: Run) -> dict[str, Any]:
    return {"job": job, "steps": stage_steps(job), "run_time_ms": _run_time_ms(job), **_urls(run)}


def _log_tail(job: RemoteJob) -> dict[str, Any]:
    """The end of the log, from the start of a line: what the pane opens with."""
    start = max(0, job.log_bytes - TAIL_BYTES)
    read = remote_job_log_read(job_id=job.pk, offset=start, limit=TAIL_BYTES)
    text = read["text"]
    if start > 0 and "\n" in text:  # the first line is cut: start after it
        text = text.split("\n", 1)[1]
    return {
        "text": text,
        "offset": read["next_offset"],
        "size": read["size"],
        "cut": start > 0,
        "ended": read["ended"],
    }


def job_tab_context(request: HttpRequest, run: Run) -> dict[str, Any]:
    """The Job tab's context (portal.registry.RunTab)."""
    job = job_for_run(run)
    if job is None:  # shown() said so; a job deleted between the two reads
        raise NotFound("This run has no remote job.")
    environment = job.environment
    return {
        **_status_context(job, run),
        "environment": environment,
        "environment_url": ws_reverse(
            run.workspace, "environment-version", name=environment.name, version=environment.version
        ),
        "env_var_names": sorted(environment.env_vars),
        "arguments_text": shlex.join(job.arguments),
        "time_limit_ms": job.max_run_duration_seconds * 1000,
        "compute_url": (
            ws_reverse(run.workspace, "compute-target", name=job.compute_target.name)
            if job.compute_target is not None
            else ""
        ),
        "log": _log_tail(job),
    }


def job_tab_shown(run: Run) -> bool:
    return job_for_run(run) is not None


# --- What the open tab asks for -------------------------------------------------------------


def _job_request(
    request: HttpRequest, kwargs: dict[str, Any], run_id: str, *, write: bool = False
) -> tuple[Access, Run, RemoteJob]:
    """(access, run, job) for the run named by the URL; 404 when it is no remote run."""
    access = workspace_for(request, kwargs, write=write)
    job = (
        RemoteJob.objects.select_related("run", *_FOR_PAGE)
        .filter(workspace=access.obj, run__run_uuid=run_id)
        .first()
    )
    if job is None:
        raise NotFound(f"Run {run_id} is not a remote run of this workspace.")
    run = job.run
    run.workspace = access.obj  # building its URLs costs no query
    return access, run, job


@login_required
@require_GET
@never_cache
def job_status(request: HttpRequest, run_id: str, **kwargs: Any) -> HttpResponse:
    """The stage card, polled by htmx every few seconds until the job ends."""
    access, run, job = _job_request(request, kwargs, run_id)
    context = {"access": access, **_status_context(job, run)}
    return render(request, "deployments/job/_status.html", context)


def _int_arg(request: HttpRequest, name: str) -> int:
    try:
        return max(0, int(request.GET.get(name, "0")))
    except ValueError:
        raise InvalidParameter(f"{name} must be a whole number of bytes.") from None


@login_required
@require_GET
@never_cache
def job_log(request: HttpRequest, run_id: str, **kwargs: Any) -> HttpResponse:
    """The log's text from `?offset=` (bytes): {text, next_offset, size, ended}. The pane
    asks again from next_offset until the job has ended and nothing is left."""
    _, _, job = _job_request(request, kwargs, run_id)
    try:
        read = remote_job_log_read(
            job_id=job.pk, offset=_int_arg(request, "offset"), limit=POLL_BYTES
        )
    except StudioError as exc:
        return JsonResponse({"error": exc.message}, status=400)
    return JsonResponse(
        {k: read[k] for k in ("text", "next_offset", "size", "ended")},
        json_dumps_params={"ensure_ascii": False},
    )


@login_required
@require_GET
def job_files(request: HttpRequest, run_id: str, **kwargs: Any) -> HttpResponse:
    """The snapshot's files, loaded when its list is unfolded (reading the zip costs a
    download of it from the artifact store)."""
    access, _, job = _job_request(request, kwargs, run_id)
    try:
        files = snapshot_files(workspace=access.obj, snapshot_hash=job.snapshot_hash)
    except StudioError as exc:
        return render(request, "deployments/job/_files.html", {"error": exc.message})
    context = {
        "files": files[:SNAPSHOT_FILES_SHOWN],
        "more": max(0, len(files) - SNAPSHOT_FILES_SHOWN),
        "total": len(files),
        "total_size": sum(f["size"] for f in files),
    }
    return render(request, "deployments/job/_files.html", context)


@login_required
@require_POST
def job_cancel(request: HttpRequest, run_id: str, **kwargs: Any) -> HttpResponse:
    """Cancel the remote run (contributors): a queued one ends at once, a running one is
    stopped by its worker at its next heartbeat."""
    _, run, job = _job_request(request, kwargs, run_id, write=True)
    back = redirect(f"{run_url(run)}?tab={TAB}")
    if job.is_ended:
        messages.error(request, f"The remote run has ended already ({job.get_stage_display()}).")
        return back
    try:
        job = remote_job_cancel(actor=request.user, job=job)
    except InvalidParameter as exc:
        messages.error(request, exc.message)
    else:
        if job.is_ended:
            messages.success(request, "Canceled: the run had not started.")
        else:
            messages.success(
                request, "Cancel requested: the worker stops the script at its next heartbeat."
            )
    return back


urlpatterns = [
    path("runs/<str:run_id>/job/status/", job_status, name="remote-job-status"),
    path("runs/<str:run_id>/job/log/", job_log, name="remote-job-log"),
    path("runs/<str:run_id>/job/files/", job_files, name="remote-job-files"),
    path("runs/<str:run_id>/job/cancel/", job_cancel, name="remote-job-cancel"),
]
