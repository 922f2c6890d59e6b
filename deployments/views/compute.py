"""Pages: the workspace's compute targets (list and create), a target (its workers, its
jobs, how to join a worker) and its deletion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deployments.models import ComputeTarget, ComputeWorker, RemoteJob
from deployments.selectors import WORKER_ALIVE, compute_target_detail, compute_target_list
from deployments.services.compute import (
    MAX_NODES,
    NAME_RULE,
    compute_target_create,
    compute_target_delete,
    compute_target_get,
)
from portal.errors import InvalidParameter, StudioError
from portal.models import Job, Workspace
from portal.selectors import Access
from portal.views.common import crumbs_for
from tracking.views.common import render_ws, workspace_for, ws_reverse

RECENT_JOBS = 20
WORKER_COMMAND = (
    "MLSTUDIO_WORKER_TOKEN=<worker token> mlstudio-worker --studio {studio} --broker <broker URL>"
)


def _worker_rows(workers: list[ComputeWorker]) -> list[dict[str, Any]]:
    now = timezone.now()
    rows = []
    for worker in workers:
        age = now - worker.last_seen
        rows.append(
            {"worker": worker, "age_ms": _ms(age), "alive": age <= WORKER_ALIVE},
        )
    return rows


def _ms(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))


def _target_url(ws: Workspace, target: ComputeTarget) -> str:
    return ws_reverse(ws, "compute-target", name=target.name)


def _crumbs(ws: Workspace, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [*crumbs_for(ws), ("Compute", ws_reverse(ws, "compute")), *more]


# --- The list, and creating a target ----------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def compute_list(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """GET: the targets; POST: create one (contributors), from the form on the list."""
    if request.method == "POST":
        return _create(request, workspace_for(request, kwargs, write=True))
    return _render_list(request, workspace_for(request, kwargs))


def _render_list(
    request: HttpRequest, access: Access, *, error: str = "", form: dict | None = None
) -> HttpResponse:
    ws = access.obj
    targets = list(compute_target_list(workspace=ws))
    creators = get_user_model().objects.in_bulk({t.created_by_id for t in targets} - {None})
    rows = [
        {
            "target": t,
            "url": _target_url(ws, t),
            "workers": _worker_rows(t.recent_workers),
            "created_by": creators.get(t.created_by_id),
        }
        for t in targets
    ]
    return render_ws(
        request,
        "deployments/compute_list.html",
        access,
        nav="compute",
        status=400 if error else 200,
        crumbs=_crumbs(ws),
        rows=rows,
        error=error,
        form=form or {"max_nodes": 1},
        name_rule=NAME_RULE,
        max_nodes_limit=MAX_NODES,
        create_url=ws_reverse(ws, "compute"),
    )


def _create(request: HttpRequest, access: Access) -> HttpResponse:
    form = {
        "name": request.POST.get("name", "").strip(),
        "max_nodes": request.POST.get("max_nodes", "1").strip(),
        "description": request.POST.get("description", "").strip(),
    }
    try:
        try:
            max_nodes = int(form["max_nodes"] or "1")
        except ValueError:
            raise InvalidParameter(
                f"Max nodes must be a whole number from 1 to {MAX_NODES}."
            ) from None
        target = compute_target_create(
            actor=request.user,
            workspace=access.obj,
            name=form["name"],
            max_nodes=max_nodes,
            description=form["description"],
        )
    except StudioError as exc:
        return _render_list(request, access, error=exc.message, form=form)
    messages.success(request, f"Compute target “{target.name}” created.")
    return redirect(_target_url(access.obj, target))


# --- A target -------------------------------------------------------------------------------


def _target_jobs(target: ComputeTarget) -> tuple[list[RemoteJob], list[RemoteJob]]:
    """(its unfinished jobs, oldest first; its newest ended ones)."""
    jobs = RemoteJob.objects.filter(compute_target=target).select_related(
        "run__experiment", "created_by"
    )
    active = list(jobs.filter(status__in=Job.UNFINISHED).order_by("created_at"))
    ended = list(jobs.filter(status__in=Job.FINISHED).order_by("-created_at")[:RECENT_JOBS])
    return active, ended


def _job_rows(ws: Workspace, jobs: list[RemoteJob]) -> list[dict[str, Any]]:
    rows = []
    for job in jobs:
        job.run.workspace = ws  # building its URL costs no query
        rows.append(
            {"job": job, "url": ws_reverse(ws, "run", run_id=job.run.run_uuid) + "?tab=job"}
        )
    return rows


@login_required
@require_GET
def compute_target(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    target = compute_target_detail(workspace=ws, name=name)
    active, ended = _target_jobs(target)
    # Its stale workers too; the recent ones may include workers serving every target of
    # its kind (the studio's own, for `local`).
    workers = {w.pk: w for w in [*target.workers.all(), *target.recent_workers]}.values()
    workers = sorted(workers, key=lambda w: (-w.last_seen.timestamp(), w.hostname))
    url = _target_url(ws, target)
    return render_ws(
        request,
        "deployments/compute_target.html",
        access,
        nav="compute",
        crumbs=_crumbs(ws, (target.name, url)),
        target=target,
        workers=_worker_rows(workers),
        active_jobs=_job_rows(ws, active),
        ended_jobs=_job_rows(ws, ended),
        recent_jobs_limit=RECENT_JOBS,
        worker_command=WORKER_COMMAND.format(studio=request.build_absolute_uri("/").rstrip("/")),
        delete_url=ws_reverse(ws, "compute-delete", name=target.name),
    )


@login_required
@require_POST
def compute_delete(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    """Delete a target (contributors); refused for `local` and while jobs are unfinished."""
    access = workspace_for(request, kwargs, write=True)
    ws = access.obj
    target = compute_target_get(workspace=ws, name=name)
    try:
        compute_target_delete(actor=request.user, target=target)
    except InvalidParameter as exc:
        messages.error(request, exc.message)
        return redirect(_target_url(ws, target))
    messages.success(request, f"Compute target “{target.name}” deleted.")
    return redirect(ws_reverse(ws, "compute"))


urlpatterns = [
    path("compute/", compute_list, name="compute"),
    path("compute/<str:name>/", compute_target, name="compute-target"),
    path("compute/<str:name>/delete/", compute_delete, name="compute-delete"),
]
