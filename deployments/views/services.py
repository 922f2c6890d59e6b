"""Pages: the workspace's web services (list) and a service (tabs: Overview, Monitoring,
Logs, Drift), its keys for contributors, key regeneration and deletion.

Readers see every page but never a key: the keys come from their own POST route, which
needs the contributor role, and only when asked ("Show keys"); the overview's sample
`curl` carries a placeholder. The Monitoring tab's charts read the service's metrics
from /api/v1 (`api-service-metrics`) with the browser's session, in static/js/service.js."""

from __future__ import annotations

import importlib
import json
import shlex
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deployments import selectors_monitoring as monitoring
from deployments.models import DeploymentJob, WebService
from deployments.services import webservices as svc
from portal.errors import InvalidParameter, StudioError
from portal.forms import DeleteConfirmForm
from portal.models import Workspace
from portal.selectors import Access
from portal.views.common import crumbs_for, form_error
from tracking.views.common import render_ws, workspace_for, ws_kwargs, ws_reverse

TABS = ("overview", "monitoring", "logs", "drift")
LOG_LINES = 2000
KEY_NAMES = ("Primary", "Secondary")
DRIFT_TEMPLATE = "deployments/services/drift_tab.html"
# The badge class of each state (studio.css's job colours).
STATE_BADGES = {
    WebService.State.HEALTHY: "succeeded",
    WebService.State.TRANSITIONING: "running",
    WebService.State.UNHEALTHY: "failed",
    WebService.State.FAILED: "failed",
    WebService.State.DELETING: "queued",
    WebService.State.STOPPED: "queued",
}


def service_url(ws: Workspace, service: WebService, tab: str = "") -> str:
    url = ws_reverse(ws, "service", name=service.name)
    return f"{url}?tab={tab}" if tab else url


def _crumbs(ws: Workspace, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [*crumbs_for(ws), ("Web services", ws_reverse(ws, "services")), *more]


def _image_url(ws: Workspace, service: WebService) -> str:
    return ws_reverse(ws, "image", name=service.image.name, version=service.image.version)


# --- The list -------------------------------------------------------------------------------


@login_required
@require_GET
def service_list(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    services = list(
        WebService.objects.filter(workspace=ws)
        .select_related("image", "compute_target", "created_by")
        .order_by("name")
    )
    last_hour = monitoring.requests_since(
        services=services, since=timezone.now() - timedelta(hours=1)
    )
    rows = [
        {
            "service": s,
            "url": service_url(ws, s),
            "image_url": _image_url(ws, s),
            "badge": STATE_BADGES.get(s.state, "queued"),
            "requests_last_hour": last_hour.get(s.pk, 0),
        }
        for s in services
    ]
    return render_ws(
        request,
        "deployments/services/list.html",
        access,
        nav="services",
        crumbs=_crumbs(ws),
        rows=rows,
        healthy=sum(1 for s in services if s.state == WebService.State.HEALTHY),
        total_last_hour=sum(last_hour.values()),
        images_url=ws_reverse(ws, "images"),
    )


# --- A service ------------------------------------------------------------------------------


def _service(access: Access, name: str) -> WebService:
    return monitoring.service_by_name(workspace=access.obj, name=name)


def _signature_columns(service: WebService) -> list[tuple[str, str]]:
    """(name, type) of the model's input columns, from the image's signature."""
    signature = service.image.signature or {}
    raw = signature.get("inputs")
    try:
        columns = json.loads(raw) if isinstance(raw, str) else raw or []
    except ValueError:
        return []
    return [
        (str(c.get("name", "")), str(c.get("type", "")))
        for c in columns
        if isinstance(c, dict) and c.get("name")
    ]


def _example_row(service: WebService, columns: list[tuple[str, str]]) -> list[Any]:
    """A row to score: the newest sampled request's first row, else a neutral value per
    column of the signature."""
    sample = service.request_samples.exclude(inputs=None).order_by("-time").values("inputs").first()
    data = (sample or {}).get("inputs") or {}
    if data.get("data") and data.get("columns") == [name for name, _ in columns]:
        return data["data"][0]
    neutral = {"string": "a", "boolean": False, "long": 0, "integer": 0}
    return [neutral.get(kind, 0.0) for _, kind in columns]


def sample_curl(service: WebService) -> str:
    """A `curl` that scores one row, with a placeholder where the key goes."""
    columns = _signature_columns(service)
    row = _example_row(service, columns)
    body = json.dumps({"data": [row]}) if row else '{"data": [[...]]}'
    lines = [
        f"curl -X POST {shlex.quote(service.scoring_uri or '<scoring URI>')}",
        "  -H 'Content-Type: application/json'",
    ]
    if service.auth_enabled:
        lines.append("  -H 'Authorization: Bearer <primary key>'")
    lines.append(f"  -d {shlex.quote(body)}")
    return " \\\n".join(lines)


def _drift_context(request: HttpRequest, service: WebService) -> dict[str, Any] | None:
    """What the drift helper's tab needs, when its template and context function are
    there (deployments.views.drift); None otherwise."""
    try:
        get_template(DRIFT_TEMPLATE)
        module = importlib.import_module("deployments.views.drift")
    except (TemplateDoesNotExist, ImportError):
        return None
    context_for = getattr(module, "drift_tab_context", None)
    return context_for(request, service) if callable(context_for) else None


def _latest_job(service: WebService) -> DeploymentJob | None:
    return service.jobs.select_related("image").order_by("-created_at").first()


def _tab_context(request: HttpRequest, access: Access, service: WebService, tab: str) -> dict:
    ws = access.obj
    if tab == "monitoring":
        start, end = monitoring.metrics_window(range_label=monitoring.DEFAULT_RANGE)
        return {
            # The same window and totals as the charts' first answer (the JS refreshes them).
            "totals": monitoring.service_metrics(service=service, start=start, end=end)["totals"],
            "samples": monitoring.recent_samples(service=service),
            "ranges": list(monitoring.RANGES),
            "default_range": monitoring.DEFAULT_RANGE,
            "metrics_url": reverse(
                "api-service-metrics", kwargs={**ws_kwargs(ws), "service": service.name}
            ),
        }
    if tab == "logs":
        try:
            logs = svc.service_logs(service=service, tail_lines=LOG_LINES)
            error = ""
        except StudioError as exc:
            logs, error = "", exc.message
        return {"logs": logs, "logs_error": error, "log_lines": LOG_LINES}
    if tab == "drift":
        drift = _drift_context(request, service)
        return {
            **(drift or {}),
            "drift_available": drift is not None,
            "drift_template": DRIFT_TEMPLATE,
        }
    return {
        "curl": sample_curl(service),
        "columns": _signature_columns(service),
        "job": _latest_job(service),
        "config_rows": sorted(service.config.items()),
        "keys_url": ws_reverse(ws, "service-keys", name=service.name),
        "regen_url": ws_reverse(ws, "service-regen-key", name=service.name),
        "key_names": KEY_NAMES,
    }


@login_required
@require_GET
def service_detail(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    service = _service(access, name)
    tab = request.GET.get("tab", "overview")
    if tab not in TABS:
        tab = "overview"
    url = service_url(ws, service)
    return render_ws(
        request,
        "deployments/services/detail.html",
        access,
        nav="services",
        crumbs=_crumbs(ws, (service.name, url)),
        service=service,
        tab=tab,
        tabs=[(t, t.capitalize()) for t in TABS],
        page_url=url,
        badge=STATE_BADGES.get(service.state, "queued"),
        image_url=_image_url(ws, service),
        delete_url=ws_reverse(ws, "service-delete", name=service.name),
        **_tab_context(request, access, service, tab),
    )


@login_required
@require_POST
def service_keys(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    """The keys, as a fragment the "Show keys" button swaps in (contributors only: a
    reader gets 403 from workspace_for). POST, so no link, prefetch or cache shows them."""
    access = workspace_for(request, kwargs, write=True)
    service = _service(access, name)
    try:
        primary, secondary = svc.service_keys(service=service)
        error = ""
    except StudioError as exc:
        primary = secondary = ""
        error = exc.message
    response = render(
        request,
        "deployments/services/_keys.html",
        {"primary": primary, "secondary": secondary, "error": error, "service": service},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def service_regen_key(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs, write=True)
    service = _service(access, name)
    key = request.POST.get("key", "")
    try:
        if key not in KEY_NAMES:
            raise InvalidParameter("Choose the Primary or the Secondary key.")
        svc.service_regen_key(actor=request.user, service=service, key=key)
    except StudioError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"The {key.lower()} key of “{service.name}” was regenerated; the old one no "
            "longer scores.",
        )
    return redirect(service_url(access.obj, service))


@login_required
@require_http_methods(["GET", "POST"])
def service_delete(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    """The page that asks for the service's name; POST stops and deletes it."""
    access = workspace_for(request, kwargs, write=True)
    ws = access.obj
    service = _service(access, name)
    posted = request.method == "POST"
    form = DeleteConfirmForm(request.POST if posted else None, what="service")
    if posted and form.is_valid():
        if form.cleaned_data["confirm_name"] != service.name:
            form_error(
                form,
                InvalidParameter("The name typed does not match the service's name."),
                "confirm_name",
            )
        else:
            try:
                svc.service_delete(actor=request.user, service=service)
            except StudioError as exc:
                form_error(form, exc, "confirm_name")
            else:
                messages.success(
                    request, f"Web service “{service.name}” is being stopped and deleted."
                )
                return redirect(ws_reverse(ws, "services"))
    url = service_url(ws, service)
    return render_ws(
        request,
        "deployments/services/delete.html",
        access,
        nav="services",
        status=400 if posted else 200,
        crumbs=_crumbs(ws, (service.name, url), ("Delete", request.path)),
        service=service,
        form=form,
        cancel_url=url,
        samples=service.request_samples.count(),
        minutes=service.request_minutes.count(),
    )


urlpatterns = [
    path("services/", service_list, name="services"),
    path("services/<str:name>/", service_detail, name="service"),
    path("services/<str:name>/keys/", service_keys, name="service-keys"),
    path("services/<str:name>/regen-key/", service_regen_key, name="service-regen-key"),
    path("services/<str:name>/delete/", service_delete, name="service-delete"),
]
