"""Pages: registered models, their versions, aliases and tags; the logged models.

The list searches as you type: the search box asks for the results partial with htmx
and pushes the URL, so every state of the list is a plain, shareable GET. Changes are
plain POST forms that redirect back with a message (post/redirect/get).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from mlflow.exceptions import MlflowException

from portal.errors import StudioError
from portal.models import Workspace
from portal.views.common import crumbs_for
from tracking.models import RegisteredModel
from tracking.selectors import model_pages
from tracking.selectors.registry import registered_model_get
from tracking.services import registry
from tracking.views.common import (
    experiment_url,
    render_ws,
    workspace_for,
    ws_reverse,
)

PER_PAGE = 25
VERSIONS_PER_PAGE = 50
MAX_QUERY = 256  # a model name's maximum length: a longer search cannot match
TABS = ("registered", "logged")


def _run_href(ws: Workspace, run_id: str) -> str:
    return ws_reverse(ws, "run", run_id=run_id) if run_id else ""


def _model_reverse(ws: Workspace, view: str, model_name: str, **extra: Any) -> str:
    return ws_reverse(ws, view, name=model_name, **extra)


def _model_href(ws: Workspace, name: str) -> str:
    return _model_reverse(ws, "model", name)


# --- The list ----------------------------------------------------------------------------------


def _list_state(request: HttpRequest) -> dict[str, str]:
    """The list's query: search text, tab and sort, with unknown values replaced by the
    defaults so a hand-edited URL still shows a page."""
    # PostgreSQL refuses NUL in a string literal; no name can contain one anyway.
    q = request.GET.get("q", "").replace("\x00", "").strip()[:MAX_QUERY]
    tab = request.GET.get("tab", "registered")
    tab = tab if tab in TABS else "registered"
    sorts = model_pages.REGISTERED_SORTS if tab == "registered" else model_pages.LOGGED_SORTS
    default = _default_sort(tab)
    sort = request.GET.get("sort", default)
    return {"q": q, "tab": tab, "sort": sort if sort in sorts else default}


def _default_sort(tab: str) -> str:
    if tab == "logged":
        return model_pages.LOGGED_DEFAULT_SORT
    return model_pages.REGISTERED_DEFAULT_SORT


def _list_url(base: str, state: dict[str, str], **changes: Any) -> str:
    """The list's URL for this state, leaving out defaults so links stay short."""
    params = {**state, **changes}
    defaults = {"q": "", "tab": "registered", "page": 1, "sort": _default_sort(params["tab"])}
    query = {k: v for k, v in params.items() if v not in ("", None) and defaults.get(k) != v}
    return f"{base}?{urlencode(query)}" if query else base


def _sort_links(base: str, state: dict[str, str], keys: list[str]) -> dict[str, dict[str, str]]:
    """For each sortable column: the URL that sorts by it (toggling the direction when it
    is the current sort) and the arrow to show."""
    links = {}
    for key in keys:
        current = state["sort"].lstrip("-") == key
        descending = state["sort"].startswith("-")
        if current:
            target = key if descending else f"-{key}"
            arrow = "↓" if descending else "↑"
        else:
            # Times read best newest first; names from A.
            target = f"-{key}" if key in ("modified", "created") else key
            arrow = ""
        links[key] = {"url": _list_url(base, state, sort=target), "arrow": arrow}
    return links


def _pager(base: str, state: dict[str, str], page: Page) -> dict[str, Any]:
    return {
        "page": page,
        "first": page.start_index(),
        "last": page.end_index(),
        "count": page.paginator.count,
        "prev": _list_url(base, state, page=page.previous_page_number())
        if page.has_previous()
        else "",
        "next": _list_url(base, state, page=page.next_page_number()) if page.has_next() else "",
    }


@login_required
@require_GET
def model_list(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    state = _list_state(request)
    base = ws_reverse(ws, "models")
    registered = model_pages.registered_models_for_page(
        workspace=ws, q=state["q"], sort=state["sort"] if state["tab"] == "registered" else "name"
    )
    logged = model_pages.logged_models_for_page(
        workspace=ws, q=state["q"], sort=state["sort"] if state["tab"] == "logged" else "-created"
    )
    shown = registered if state["tab"] == "registered" else logged
    page = Paginator(shown, PER_PAGE).get_page(request.GET.get("page"))
    if state["tab"] == "registered":
        rows = model_pages.registered_model_rows(page.object_list)
        for row in rows:
            row["url"] = _model_href(ws, row["name"])
        counts = {"registered": page.paginator.count, "logged": logged.count()}
        sort_links = _sort_links(base, state, ["name", "modified"])
    else:
        rows = model_pages.logged_model_rows(page.object_list)
        for row in rows:
            row["run_url"] = _run_href(ws, row["run_id"])
            row["experiment_url"] = experiment_url(row["experiment"])
            row["registered"] = [
                (name, number, _model_href(ws, name)) for name, number in row["registered"]
            ]
        counts = {"registered": registered.count(), "logged": page.paginator.count}
        sort_links = _sort_links(base, state, ["name", "created"])
    state_without_search = {**state, "q": ""}
    context = {
        "state": state,
        "sort_is_default": state["sort"] == _default_sort(state["tab"]),
        "rows": rows,
        "counts": counts,
        "sort_links": sort_links,
        "pager": _pager(base, state, page),
        "tab_urls": {
            tab: _list_url(base, {"q": state["q"], "tab": tab, "sort": ""}) for tab in TABS
        },
        "clear_url": _list_url(base, state_without_search),
        "list_url": base,
        "crumbs": [*crumbs_for(ws), ("Models", base)],
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = "tracking/model/results.html" if partial else "tracking/models.html"
    response = render_ws(request, template, access, nav="models", **context)
    # The same URL answers a partial to htmx and a page to a browser: caches must not mix.
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- One registered model ----------------------------------------------------------------------


def _model_or_404(ws: Workspace, name: str) -> RegisteredModel:
    """The workspace's registered model of this name; a name MLflow would refuse (blank,
    `..`) is as unknown as a missing one."""
    try:
        return registered_model_get(workspace=ws, name=name)
    except MlflowException:
        raise Http404("No such model") from None


@login_required
@require_GET
def model_detail(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    model = _model_or_404(ws, name)
    page = Paginator(model_pages.model_versions_for_page(model), VERSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    versions = model_pages.model_version_rows(model, page.object_list)
    for row in versions:
        # A run purged since the version was registered has no page to link to.
        row["run_url"] = _run_href(ws, row["run_id"]) if row["run_exists"] else ""
        row["delete_url"] = _model_reverse(
            ws, "model-version-delete", model.name, version=row["version"]
        )
    url = _model_href(ws, model.name)
    extras = model_pages.registered_model_extras(model)
    return render_ws(
        request,
        "tracking/model.html",
        access,
        nav="models",
        model=model,
        created=model_pages.from_ms(model.creation_timestamp),
        last_modified=model_pages.from_ms(model.last_updated_timestamp),
        versions=versions,
        page=page,
        prev_url=f"{url}?page={page.previous_page_number()}" if page.has_previous() else "",
        next_url=f"{url}?page={page.next_page_number()}" if page.has_next() else "",
        # The alias picker offers every live version, not just this page's.
        version_numbers=list(
            model_pages.model_versions_for_page(model).values_list("version", flat=True)
        ),
        urls={
            "self": url,
            "alias": _model_reverse(ws, "model-alias", model.name),
            "tag": _model_reverse(ws, "model-tag", model.name),
            "delete": _model_reverse(ws, "model-delete", model.name),
        },
        crumbs=[*crumbs_for(ws), ("Models", ws_reverse(ws, "models")), (model.name, url)],
        **extras,
    )


# --- Changes (contributors) --------------------------------------------------------------------


def _attempt(request: HttpRequest, change: Callable[[], str]) -> bool:
    """Run a registry change; tell the user what happened either way. The registry and
    MLflow's validators word their errors for people, so they are shown as they are."""
    try:
        done = change()
    except (StudioError, MlflowException) as exc:
        messages.error(request, exc.message)
        return False
    messages.success(request, done)
    return True


def _writable_model(
    request: HttpRequest, name: str, kwargs: dict[str, Any]
) -> tuple[Workspace, RegisteredModel]:
    access = workspace_for(request, kwargs, write=True)
    return access.obj, _model_or_404(access.obj, name)


@login_required
@require_POST
def model_alias(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    ws, model = _writable_model(request, name, kwargs)
    alias = request.POST.get("alias", "").strip()

    def change() -> str:
        if request.POST.get("action") == "delete":
            registry.registered_model_alias_delete(workspace=ws, name=model.name, alias=alias)
            return f"Alias “{alias}” removed."
        version = request.POST.get("version", "")
        registry.registered_model_alias_set(
            workspace=ws, name=model.name, alias=alias, version=version
        )
        return f"Alias “{alias}” now points to version {version}."

    _attempt(request, change)
    return redirect(_model_href(ws, model.name))


@login_required
@require_POST
def model_tag(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    ws, model = _writable_model(request, name, kwargs)
    key = request.POST.get("key", "").strip()

    def change() -> str:
        if request.POST.get("action") == "delete":
            registry.registered_model_tag_delete(workspace=ws, name=model.name, key=key)
            return f"Tag “{key}” removed."
        value = request.POST.get("value", "")
        registry.registered_model_tag_set(workspace=ws, name=model.name, key=key, value=value)
        return f"Tag “{key}” set."

    _attempt(request, change)
    return redirect(_model_href(ws, model.name))


@login_required
@require_POST
def model_version_delete(
    request: HttpRequest, name: str, version: int, **kwargs: Any
) -> HttpResponse:
    ws, model = _writable_model(request, name, kwargs)

    def change() -> str:
        registry.model_version_delete(
            workspace=ws, name=model.name, version=version, actor=request.user
        )
        return f"Version {version} of {model.name} deleted."

    _attempt(request, change)
    return redirect(_model_href(ws, model.name))


@login_required
@require_POST
def model_delete(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    ws, model = _writable_model(request, name, kwargs)

    def change() -> str:
        registry.registered_model_delete(workspace=ws, name=model.name, actor=request.user)
        return f"Model “{model.name}” and its versions deleted."

    if _attempt(request, change):
        return redirect(ws_reverse(ws, "models"))
    return redirect(_model_href(ws, model.name))


urlpatterns = [
    path("models/", model_list, name="models"),
    path("models/<str:name>/", model_detail, name="model"),
    path("models/<str:name>/aliases/", model_alias, name="model-alias"),
    path("models/<str:name>/tags/", model_tag, name="model-tag"),
    path("models/<str:name>/delete/", model_delete, name="model-delete"),
    path(
        "models/<str:name>/versions/<int:version>/delete/",
        model_version_delete,
        name="model-version-delete",
    ),
]
