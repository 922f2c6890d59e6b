"""Pages: a run (overview, metric charts, artifacts, child runs, models) and its artifacts.

The artifact endpoints take `?path=` (relative to the run's artifact root) and an
optional `?model=<logged model id>` to browse one of the run's logged models
instead: MLflow 3 stores a model's files under the model, not the run.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path
from django.views.decorators.http import require_GET

from portal import registry
from portal.errors import NotFound, StudioError
from portal.models import Workspace
from portal.selectors import Access
from tracking.artifacts import join, store_for
from tracking.artifacts.paths import named_as_given, require_clean_path
from tracking.artifacts.responses import file_response
from tracking.artifacts.roots import artifact_root
from tracking.models import LifecycleStage, Run
from tracking.selectors import artifact_preview as previews
from tracking.selectors import run_page
from tracking.selectors.core import run_duration_ms
from tracking.views.charts import MAX_RUNS, chart_embed
from tracking.views.common import (
    experiment_url,
    render_ws,
    run_url,
    tracking_crumbs,
    workspace_for,
    ws_reverse,
)

TABS = ("overview", "metrics", "artifacts", "children", "models")


def _urls(ws: Workspace, run: Run) -> dict[str, str]:
    kw = {"run_id": run.run_uuid}
    return {
        "page_url": run_url(run),
        "tree_url": ws_reverse(ws, "run-artifacts", **kw),
        "preview_url": ws_reverse(ws, "run-artifact-preview", **kw),
        "download_url": ws_reverse(ws, "run-artifact", **kw),
        "action_url": ws_reverse(ws, "run-action"),
    }


def _query(**params: str) -> str:
    """`?a=1&b=2` of the non-empty params ("" when none)."""
    kept = {k: v for k, v in params.items() if v}
    return f"?{urlencode(kept)}" if kept else ""


# --- The page --------------------------------------------------------------------------------


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: str, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    run = run_page.run_for_page(workspace=ws, run_id=run_id)
    extra_tabs = [entry for entry in registry.run_tabs() if entry.shown(run)]
    tab = request.GET.get("tab", "overview")
    if tab not in TABS and tab not in {entry.slug for entry in extra_tabs}:
        tab = "overview"
    overview = run_page.run_overview(run)
    logged_models = run_page.run_logged_models(run)
    versions = run_page.run_model_versions(run)
    urls = _urls(ws, run)
    context: dict[str, Any] = {
        "run": run,
        "tab": tab,
        "overview": overview,
        "logged_models": logged_models,
        "versions": versions,
        "models_total": len(logged_models) + len(versions),
        "children_total": run_page.child_run_count(run),
        "deleted": run.lifecycle_stage == LifecycleStage.DELETED,
        "experiment_deleted": run.experiment.lifecycle_stage == LifecycleStage.DELETED,
        "experiment_url": experiment_url(run.experiment),
        "duration_ms": run_duration_ms(run),
        "parent_url": run_url(overview.parent) if overview.parent else "",
        **urls,
    }
    if tab == "metrics":
        context["charts"] = chart_embed(ws, [run], overview.metric_keys)
    elif tab == "children":
        children = run_page.child_runs(run, total=context["children_total"])
        context["children"] = children
        children.rows = [_child_row(ws, child, children) for child in children.runs]
        if len(children.runs) > 1:
            ids = ",".join(child.run_uuid for child in children.runs[:MAX_RUNS])
            context["compare_children_url"] = f"{ws_reverse(ws, 'compare')}?runs={ids}"
    elif tab == "models":
        context["version_rows"] = [
            {"version": v, "url": _model_url(ws, v.registered_model.name)} for v in versions
        ]
    elif tab == "artifacts":
        context.update(_artifacts_tab(request, ws, run, logged_models))
    context["extra_tabs"] = extra_tabs
    for entry in extra_tabs:  # tabs other apps registered (portal.registry)
        if entry.slug == tab:
            context["extra_tab"] = {
                "template": entry.template,
                "context": entry.context(request, run),
            }
    return render_ws(
        request,
        "tracking/run.html",
        access,
        nav="experiments",
        crumbs=tracking_crumbs(ws, run.experiment, run),
        **context,
    )


def _child_row(ws: Workspace, child: Run, children: run_page.ChildRuns) -> dict[str, Any]:
    return {
        "run": child,
        "url": ws_reverse(ws, "run", run_id=child.run_uuid),
        "deleted": child.lifecycle_stage == LifecycleStage.DELETED,
        "duration": run_duration_ms(child),
        "metrics": [children.metrics.get((child.pk, key)) for key in children.metric_keys],
    }


def _model_url(ws: Workspace, name: str) -> str:
    try:
        return ws_reverse(ws, "model", name=name)
    except NoReverseMatch:  # a name the URL cannot carry (a slash): no link
        return ""


def _run_link(ws: Workspace, run_id: str) -> str:
    try:
        return ws_reverse(ws, "run", run_id=run_id) if run_id else ""
    except NoReverseMatch:
        return ""


def _artifacts_tab(
    request: HttpRequest, ws: Workspace, run: Run, logged_models: list
) -> dict[str, Any]:
    """The run's tree (open down to ?path=), one lazily listed tree per logged model, and
    the preview of ?path= when the page is opened on a file."""
    model_id = request.GET.get("model", "")
    wanted = request.GET.get("path", "")
    store = store_for(ws)
    roots = []
    error = ""
    preview = None
    try:
        selected = artifact_root(run, model_id)
        path = require_clean_path(wanted)
    except StudioError as exc:
        selected, path, error = None, "", exc.message
    candidates = [("", "Run artifacts")] + [(m.model_id, m.name) for m in logged_models]
    for root_model, label in candidates:
        entry: dict[str, Any] = {"model_id": root_model, "label": label, "error": ""}
        is_selected = selected is not None and selected.model_id == root_model
        if root_model == "" or is_selected:
            try:
                root = selected if is_selected else artifact_root(run)
                entry["nodes"], entry["more"] = run_page.artifact_tree(
                    store, root, path if is_selected else ""
                )
            except StudioError as exc:
                entry["error"] = exc.message
        roots.append(entry)
    if selected is not None and path:
        try:
            with _named_as_given(path):
                preview = previews.artifact_preview(store, join(selected.prefix, path))
            _for_page(preview, ws, path)
        except StudioError as exc:
            error = exc.message
    return {
        "roots": roots,
        "preview": preview,
        "preview_error": error,
        "selected_model": selected.model_id if selected else "",
        "selected_path": path,
    }


def _for_page(preview: previews.Preview, ws: Workspace, path: str) -> None:
    """Paths relative to the browsed root, and a link to the run an MLmodel names."""
    preview.path = path
    if preview.kind == "mlmodel":
        preview.model["run_url"] = _run_link(ws, preview.model["run_id"])


# --- Artifact partials and downloads ------------------------------------------------------


def _artifact_request(
    request: HttpRequest, kwargs: dict[str, Any], run_id: str
) -> tuple[Access, Run]:
    """The workspace (read access) and the run; 404 for either missing."""
    access = workspace_for(request, kwargs)
    run = run_page.run_for_page(workspace=access.obj, run_id=run_id)
    return access, run


def _message(request: HttpRequest, text: str, status: int) -> HttpResponse:
    return render(request, "tracking/run/message.html", {"message": text}, status=status)


def _status(exc: StudioError) -> int:
    return 404 if isinstance(exc, NotFound) else 400


def _named_as_given(path: str) -> AbstractContextManager[None]:
    folder = f"'{path}' is a folder: open it in the tree."
    return named_as_given(path, folder_message=folder)


@login_required
@require_GET
def run_artifacts(request: HttpRequest, run_id: str, **kwargs: Any) -> HttpResponse:
    """One folder's entries, for the tree to expand (htmx)."""
    access, run = _artifact_request(request, kwargs, run_id)
    model_id = request.GET.get("model", "")
    try:
        root = artifact_root(run, model_id)
        nodes, more = run_page.artifact_folder(
            store_for(access.obj), root, request.GET.get("path", "")
        )
    except StudioError as exc:
        return _message(request, exc.message, _status(exc))
    context = {"nodes": nodes, "more": more, "model_id": root.model_id, **_urls(access.obj, run)}
    return render(request, "tracking/run/artifact_tree.html", context)


@login_required
@require_GET
def run_artifact_preview(request: HttpRequest, run_id: str, **kwargs: Any) -> HttpResponse:
    """The preview pane for one file (htmx); a plain visit opens the page on that file."""
    access, run = _artifact_request(request, kwargs, run_id)
    model_id = request.GET.get("model", "")
    raw_path = request.GET.get("path", "")
    if not request.htmx:
        query = _query(tab="artifacts", model=model_id, path=raw_path)
        return redirect(run_url(run) + query)
    try:
        root = artifact_root(run, model_id)
        path = require_clean_path(raw_path, file=True)
        with _named_as_given(path):
            preview = previews.artifact_preview(store_for(access.obj), join(root.prefix, path))
    except StudioError as exc:
        return _message(request, exc.message, _status(exc))
    _for_page(preview, access.obj, path)
    context = {
        "ws": access.obj,
        "run": run,
        "preview": preview,
        "selected_model": root.model_id,
        **_urls(access.obj, run),
    }
    return render(request, "tracking/run/artifact_preview.html", context)


@login_required
@require_GET
def run_artifact(request: HttpRequest, run_id: str, **kwargs: Any) -> HttpResponse:
    """Stream one file. Only types a browser shows without running anything of the file
    (images, plain text) are served inline; everything else is an attachment."""
    access, run = _artifact_request(request, kwargs, run_id)
    try:
        root = artifact_root(run, request.GET.get("model", ""))
        path = require_clean_path(request.GET.get("path", ""), file=True)
        with _named_as_given(path):
            reader = store_for(access.obj).open(join(root.prefix, path))
    except StudioError as exc:
        return render_ws(
            request,
            "tracking/run/artifact_error.html",
            access,
            nav="experiments",
            status=_status(exc),
            crumbs=tracking_crumbs(access.obj, run.experiment, run),
            run=run,
            message=exc.message,
            back_url=run_url(run) + "?tab=artifacts",
        )
    kind = previews.content_type(path)
    inline = previews.inline_safe(path) and not request.GET.get("download")
    if kind == "text/plain":
        kind = "text/plain; charset=utf-8"
    return file_response(reader, path, content_type=kind, as_attachment=not inline)


urlpatterns = [
    path("runs/<str:run_id>/", run_detail, name="run"),
    path("runs/<str:run_id>/artifacts/", run_artifacts, name="run-artifacts"),
    path("runs/<str:run_id>/artifacts/preview/", run_artifact_preview, name="run-artifact-preview"),
    path("runs/<str:run_id>/artifacts/file/", run_artifact, name="run-artifact"),
]
