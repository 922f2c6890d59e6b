"""Pages: the workspace's experiments and an experiment's runs table, and the
actions on them (create, rename, delete, restore, purge)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from portal.errors import InvalidParameter, StudioError
from tracking.models import LifecycleStage, Run
from tracking.selectors import tables
from tracking.selectors.core import experiment_get
from tracking.services import experiments as experiment_services
from tracking.services import purge, purge_jobs
from tracking.services.runs import run_delete, run_restore
from tracking.views.common import (
    experiment_url,
    render_ws,
    tracking_crumbs,
    workspace_for,
    ws_reverse,
)

EXPERIMENTS_PER_PAGE = 50
RUNS_PER_PAGE_CHOICES = (25, 50, 100, 250)
MAX_RUNS_PER_ACTION = 1000


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


# --- Experiment list ------------------------------------------------------------------------


@login_required
@require_GET
def experiment_list(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    return _render_list(request, access)


def _render_list(
    request: HttpRequest, access, *, create_error: str = "", new_name: str = ""
) -> HttpResponse:
    ws = access.obj
    query = request.GET.get("q", "").strip()
    sort = request.GET.get("sort", "-activity")
    if sort not in tables.EXPERIMENT_SORTS:
        sort = "-activity"
    deleted = request.GET.get("view") == "deleted"
    experiments = tables.experiments_for_list(workspace=ws, query=query, sort=sort, deleted=deleted)
    page = Paginator(experiments, EXPERIMENTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "query": query,
        "sort": sort,
        "deleted": deleted,
        "create_error": create_error,
        "new_name": new_name,
        "list_url": ws_reverse(ws, "experiments"),
    }
    if request.htmx and not create_error:
        return render(
            request, "tracking/experiments/_table.html", {"ws": ws, "access": access, **context}
        )
    return render_ws(
        request,
        "tracking/experiments.html",
        access,
        nav="experiments",
        status=400 if create_error else 200,
        **context,
    )


@login_required
@require_POST
def experiment_create(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs, write=True)
    name = request.POST.get("name", "").strip()
    try:
        if not name:
            raise InvalidParameter("Give the experiment a name.")
        experiment = experiment_services.experiment_create(
            workspace=access.obj, name=name, actor=request.user
        )
    except StudioError as exc:
        return _render_list(request, access, create_error=exc.message, new_name=name)
    messages.success(request, f"Experiment “{experiment.name}” created.")
    return redirect(experiment_url(experiment))


@login_required
@require_POST
def experiment_action(request: HttpRequest, experiment_id: int, **kwargs: Any) -> HttpResponse:
    """rename | delete | restore | purge, from the list or the experiment page."""
    access = workspace_for(request, kwargs, write=True)
    experiment = experiment_get(workspace=access.obj, experiment_id=experiment_id)
    action = request.POST.get("action", "")
    back = _next_url(request, ws_reverse(access.obj, "experiments"))
    try:
        if action == "rename":
            old = experiment.name
            new_name = request.POST.get("name", "").strip()
            if not new_name:
                raise InvalidParameter("Give the experiment a name.")
            experiment_services.experiment_rename(
                experiment=experiment, new_name=new_name, actor=request.user
            )
            messages.success(request, f"Renamed “{old}” to “{new_name}”.")
        elif action == "delete":
            experiment_services.experiment_delete(experiment=experiment, actor=request.user)
            messages.success(
                request,
                f"Experiment “{experiment.name}” and its runs moved to Deleted. "
                "Restore it from there, or purge it for good.",
            )
            back = ws_reverse(access.obj, "experiments")
        elif action == "restore":
            experiment_services.experiment_restore(experiment=experiment, actor=request.user)
            messages.success(request, f"Experiment “{experiment.name}” restored.")
        elif action == "purge":
            job = purge_jobs.experiment_purge_request(actor=request.user, experiment=experiment)
            return redirect(reverse("deletion-job", kwargs={"job_id": job.pk}))
        else:
            raise InvalidParameter("Unknown action.")
    except StudioError as exc:
        messages.error(request, exc.message)
    return redirect(back)


# --- Experiment page: the runs table -----------------------------------------------------


@login_required
@require_GET
def experiment_detail(request: HttpRequest, experiment_id: int, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    experiment = experiment_get(workspace=ws, experiment_id=experiment_id)
    available = tables.available_columns(experiment)
    columns = tables.parse_columns(request.GET.get("cols"), available)
    filter_string = request.GET.get("filter", "").strip()
    order = request.GET.get("order", "").strip() or tables.DEFAULT_ORDER
    view = request.GET.get("view", "active")
    if view not in tables.VIEWS:
        view = "active"
    per_page = _per_page(request.GET.get("per_page"))
    error = ""
    try:
        table = tables.run_table(
            workspace=ws,
            experiment=experiment,
            columns=columns,
            filter_string=filter_string,
            order=order,
            view=view,
            page=_page_number(request.GET.get("page")),
            per_page=per_page,
        )
    except InvalidParameter as exc:
        error = exc.message
        table = tables.RunTable([], 0, 1, per_page)
    context = {
        "experiment": experiment,
        "table": table,
        "columns": columns,
        "available": available,
        "chosen": {column.ident for column in columns},
        "filter": filter_string,
        "order": order,
        "view": view,
        "per_page": per_page,
        "per_page_choices": RUNS_PER_PAGE_CHOICES,
        "error": error,
        "page_url": experiment_url(experiment),
        "compare_url": ws_reverse(ws, "compare"),
        "action_url": ws_reverse(ws, "run-action"),
        "experiment_action_url": ws_reverse(ws, "experiment-action", experiment_id=experiment.pk),
        "sortable": _sort_links(columns, order),
    }
    # htmx swaps only 2xx answers by default; the error is part of the swapped panel.
    status = 400 if error and not request.htmx else 200
    if request.htmx:
        return render(
            request,
            "tracking/experiment/_runs.html",
            {"ws": ws, "access": access, **context},
            status=status,
        )
    return render_ws(
        request,
        "tracking/experiment.html",
        access,
        nav="experiments",
        status=status,
        crumbs=tracking_crumbs(ws, experiment),
        **context,
    )


def _per_page(raw: str | None) -> int:
    try:
        value = int(raw or 100)
    except ValueError:
        return 100
    return value if value in RUNS_PER_PAGE_CHOICES else 100


ATTRIBUTE_SORTS = {
    "name": "attributes.run_name",
    "status": "attributes.status",
    "user": "attributes.user_id",
    "start": "attributes.start_time",
}
# Text columns sort A→Z on the first click; numbers and times newest/highest first.
_ASCENDING_FIRST = ("name", "status", "user", "params.", "tags.")


def _sort_links(columns: list[tables.Column], order: str) -> dict[str, dict[str, str]]:
    """For each sortable header: the order clause a click applies, and its arrow."""
    current_field, _, direction = order.rpartition(" ")
    if direction.upper() not in ("ASC", "DESC"):
        current_field, direction = order, "ASC"
    descending = direction.upper() == "DESC"
    fields = dict(ATTRIBUTE_SORTS)
    for column in columns:
        fields[column.ident] = column.order_clause(True).rpartition(" ")[0]
    links = {}
    for name, field in fields.items():
        if field == current_field.strip():
            links[name] = {
                "order": f"{field} {'ASC' if descending else 'DESC'}",
                "arrow": "▼" if descending else "▲",
            }
        else:
            first = "ASC" if name.startswith(_ASCENDING_FIRST) else "DESC"
            links[name] = {"order": f"{field} {first}", "arrow": ""}
    return links


# --- Run actions (from the runs table and the run page) -------------------------------------


@login_required
@require_POST
def run_action(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """delete | restore | purge the selected runs (`run_ids`, repeatable)."""
    access = workspace_for(request, kwargs, write=True)
    ws = access.obj
    action = request.POST.get("action", "")
    ids = list(dict.fromkeys(request.POST.getlist("run_ids")))
    back = _next_url(request, ws_reverse(ws, "experiments"))
    if not ids:
        messages.error(request, "Select at least one run.")
        return redirect(back)
    if len(ids) > MAX_RUNS_PER_ACTION:
        messages.error(request, f"Select at most {MAX_RUNS_PER_ACTION} runs at a time.")
        return redirect(back)
    runs = Run.objects.filter(workspace=ws, run_uuid__in=ids)
    try:
        done = _apply_run_action(request, ws, action, runs)
    except StudioError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    noun = "run" if done == 1 else "runs"
    verb = {"delete": "Deleted", "restore": "Restored", "purge": "Purged"}[action]
    note = ""
    if action == "delete" and done:
        note = " It is hidden until restored." if done == 1 else " They are hidden until restored."
    messages.success(request, f"{verb} {done} {noun}.{note}")
    return redirect(back)


def _apply_run_action(request: HttpRequest, ws, action: str, runs) -> int:
    if action == "purge":
        return purge.run_purge(actor=request.user, workspace=ws, runs=runs)
    if action not in ("delete", "restore"):
        raise InvalidParameter("Unknown action.")
    wanted = LifecycleStage.ACTIVE if action == "delete" else LifecycleStage.DELETED
    changed = 0
    with transaction.atomic():
        for run in runs.select_for_update(of=("self",)):
            if run.lifecycle_stage != wanted:
                continue
            (run_delete if action == "delete" else run_restore)(run=run, actor=request.user)
            changed += 1
    return changed


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


urlpatterns = [
    path("experiments/", experiment_list, name="experiments"),
    path("experiments/new/", experiment_create, name="experiment-create"),
    path("experiments/<int:experiment_id>/", experiment_detail, name="experiment"),
    path(
        "experiments/<int:experiment_id>/action/",
        experiment_action,
        name="experiment-action",
    ),
    path("runs/action/", run_action, name="run-action"),
]
