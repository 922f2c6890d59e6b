"""The Drift tab of a web service's page (included by deployments.views.services through
`drift_tab_context`), and the forms it posts: create a monitor, compute a range, switch
the schedule, delete.

The tab shows one monitor at a time (`?tab=drift&monitor=<name>`): its settings, the drift
magnitude of each window against the threshold, one chart per feature over time (the
normed Wasserstein distance of numeric features, the Jensen–Shannon distance of
categorical ones), and the newest window's features by contribution."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from deployments.api.drift import parse_moment
from deployments.models import DriftMonitor, DriftResult, WebService
from deployments.services import drift as svc
from deployments.services.drift_baselines import MAX_UPLOAD_BYTES
from portal.errors import InvalidParameter, NotFound, StudioError
from portal.models import Role, Workspace, role_at_least
from portal.selectors import role_for
from tracking.views.common import workspace_for, ws_reverse

CHART_WINDOWS = 90  # the newest windows charted
MAX_CHARTED_FEATURES = 24


def _service_url(ws: Workspace, service: WebService, **query: str) -> str:
    base = ws_reverse(ws, "service", name=service.name)
    return f"{base}?{urlencode({'tab': 'drift', **query})}"


def _score_key(figures: dict[str, Any]) -> str:
    return "js" if figures.get("kind") == "categorical" else "wasserstein"


def chart_data(monitor: DriftMonitor, results: list[DriftResult]) -> dict[str, Any]:
    """What drift.js draws: windows' ends, magnitudes and per-feature series."""
    features: dict[str, dict[str, Any]] = {}
    for index, result in enumerate(results):
        for name, figures in result.features.items():
            if figures.get("kind") not in ("numeric", "categorical"):
                continue
            series = features.setdefault(
                name,
                {
                    "kind": figures["kind"],
                    "statistic": _score_key(figures),
                    "values": [None] * len(results),
                    "pvalues": [None] * len(results),
                },
            )
            series["values"][index] = figures.get(series["statistic"])
            pkey = "chi2_pvalue" if figures["kind"] == "categorical" else "ks_pvalue"
            series["pvalues"][index] = figures.get(pkey)
    # The features that moved most first, so the charts that matter come first.
    ranked = sorted(features.items(), key=lambda item: -max((v or 0) for v in item[1]["values"]))[
        :MAX_CHARTED_FEATURES
    ]
    return {
        "windows": [r.window_start.isoformat() for r in results],
        "magnitude": [r.magnitude for r in results],
        "drifted": [r.drifted for r in results],
        "rows": [r.rows for r in results],
        "threshold": monitor.threshold,
        "features": [{"name": name, **series} for name, series in ranked],
    }


def _contributions(result: DriftResult | None) -> list[dict[str, Any]]:
    if result is None:
        return []
    rows = []
    for name, figures in result.features.items():
        rows.append(
            {
                "name": name,
                "kind": figures.get("kind"),
                "score": figures.get("score"),
                "contribution": figures.get("contribution") or 0.0,
                "percent": round((figures.get("contribution") or 0.0) * 100),
                "figures": figures,
            }
        )
    return sorted(rows, key=lambda r: -r["contribution"])


def drift_tab_context(request: HttpRequest, service: WebService) -> dict[str, Any]:
    """The Drift tab's context (the page checked the reader role already)."""
    ws = service.workspace
    monitors = list(
        DriftMonitor.objects.filter(service=service).select_related("monitoring_run__experiment")
    )
    chosen = request.GET.get("monitor", "")
    monitor = next((m for m in monitors if m.name == chosen), monitors[0] if monitors else None)
    results: list[DriftResult] = []
    if monitor is not None:
        newest = monitor.results.order_by("-window_start")[:CHART_WINDOWS]
        results = list(reversed(newest))
    latest = results[-1] if results else None
    can_write = role_at_least(role_for(request.user, ws), Role.CONTRIBUTOR)
    context: dict[str, Any] = {
        "drift_monitors": [
            {"monitor": m, "url": _service_url(ws, service, monitor=m.name)} for m in monitors
        ],
        "drift_monitor": monitor,
        "drift_results": results,
        "drift_latest": latest,
        "drift_drifted_windows": sum(1 for r in results if r.drifted),
        "drift_contributions": _contributions(latest),
        "drift_chart": chart_data(monitor, results) if monitor else None,
        "drift_can_write": can_write,
        "drift_create_url": ws_reverse(ws, "service-drift-create", name=service.name),
        "drift_frequencies": DriftMonitor.Frequency.choices,
        "drift_max_upload_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
    }
    if monitor is not None:
        names = {"name": service.name, "monitor": monitor.name}
        run = monitor.monitoring_run
        context.update(
            drift_backfill_url=ws_reverse(ws, "service-drift-backfill", **names),
            drift_toggle_url=ws_reverse(ws, "service-drift-schedule", **names),
            drift_delete_url=ws_reverse(ws, "service-drift-delete", **names),
            drift_run_url=ws_reverse(ws, "run", run_id=run.run_uuid) if run else "",
            drift_baseline=_baseline_words(monitor),
        )
    return context


def _baseline_words(monitor: DriftMonitor) -> str:
    ref = monitor.baseline_ref
    columns = len(ref.get("columns") or [])
    if monitor.baseline_kind == DriftMonitor.BaselineKind.RUN_INPUT:
        what = f"training data of run {str(ref.get('run_id'))[:12]}"
        if ref.get("dataset_name"):
            what += f" ({ref['dataset_name']})"
    elif monitor.baseline_kind == DriftMonitor.BaselineKind.DATASET:
        what = f"registered dataset {ref.get('dataset_id')}"
    else:
        what = f"uploaded CSV {ref.get('filename') or ''}".strip()
    return f"{what} · {ref.get('rows', '?')} rows, {columns} columns"


# --- Forms ---------------------------------------------------------------------------------


def _service_for_write(request: HttpRequest, name: str, kwargs: dict[str, Any]) -> WebService:
    access = workspace_for(request, kwargs, write=True)
    service = WebService.objects.filter(workspace=access.obj, name=name).first()
    if service is None:
        raise NotFound(f"No web service named {name!r} in this workspace.")
    service.workspace = access.obj
    return service


def _list(value: str) -> list[str] | None:
    items = [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
    return items or None


def _form_baseline(request: HttpRequest) -> tuple[dict[str, Any] | None, bytes | None]:
    kind = request.POST.get("baseline_kind", "")
    if kind == "csv":
        upload = request.FILES.get("baseline_file")
        if upload is None:
            raise InvalidParameter("Choose the CSV file of the baseline.")
        if upload.size > MAX_UPLOAD_BYTES:
            raise InvalidParameter(
                f"The CSV is {upload.size} bytes; at most {MAX_UPLOAD_BYTES} are accepted."
            )
        return {"kind": "csv", "filename": upload.name[:200]}, upload.read()
    if kind == "run_input":
        spec = {"kind": "run_input", "run_id": request.POST.get("run_id", "").strip()}
        if request.POST.get("artifact_path", "").strip():
            spec["artifact_path"] = request.POST["artifact_path"].strip()
        return spec, None
    if kind == "dataset":
        return {"kind": "dataset", "dataset_id": request.POST.get("dataset_id", "").strip()}, None
    raise InvalidParameter("Choose where the baseline comes from.")


@login_required
@require_POST
def drift_monitor_create_page(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    service = _service_for_write(request, name, kwargs)
    ws = service.workspace
    try:
        baseline, csv = _form_baseline(request)
        threshold = float(request.POST.get("threshold") or 0.2)
        monitor = svc.drift_monitor_create(
            actor=request.user,
            service=service,
            name=request.POST.get("name", "").strip(),
            baseline=baseline,
            baseline_csv=csv,
            features=_list(request.POST.get("features", "")),
            categorical_features=_list(request.POST.get("categorical_features", "")),
            frequency=request.POST.get("frequency", "day"),
            threshold=threshold,
            alert_emails=_list(request.POST.get("alert_emails", "")),
            alert_webhook=request.POST.get("alert_webhook", "").strip(),
        )
    except ValueError:
        messages.error(request, "The threshold must be a number from 0 to 1.")
        return redirect(_service_url(ws, service))
    except StudioError as exc:
        messages.error(request, exc.message)
        return redirect(_service_url(ws, service))
    messages.success(request, f"Drift monitor “{monitor.name}” created.")
    return redirect(_service_url(ws, service, monitor=monitor.name))


def _monitor_for_write(
    request: HttpRequest, name: str, monitor: str, kwargs: dict[str, Any]
) -> DriftMonitor:
    service = _service_for_write(request, name, kwargs)
    found = svc.drift_monitor_get(service=service, name=monitor)
    found.service = service
    return found


@login_required
@require_POST
def drift_monitor_backfill_page(
    request: HttpRequest, name: str, monitor: str, **kwargs: Any
) -> HttpResponse:
    found = _monitor_for_write(request, name, monitor, kwargs)
    ws = found.service.workspace
    try:
        job = svc.drift_backfill_request(
            actor=request.user,
            monitor=found,
            start=parse_moment(request.POST.get("start"), "start"),
            end=parse_moment(request.POST.get("end"), "end"),
            send_alerts=request.POST.get("send_alerts") == "on",
        )
        messages.success(
            request,
            f"Computing {job.start:%Y-%m-%d %H:%M} to {job.end:%Y-%m-%d %H:%M} in the "
            "background; reload to see the windows.",
        )
    except StudioError as exc:
        messages.error(request, exc.message)
    return redirect(_service_url(ws, found.service, monitor=found.name))


@login_required
@require_POST
def drift_monitor_schedule_page(
    request: HttpRequest, name: str, monitor: str, **kwargs: Any
) -> HttpResponse:
    found = _monitor_for_write(request, name, monitor, kwargs)
    enabled = request.POST.get("enabled") == "1"
    svc.drift_monitor_update(actor=request.user, monitor=found, enabled=enabled)
    messages.success(request, f"Schedule {'on' if enabled else 'off'} for “{found.name}”.")
    return redirect(_service_url(found.service.workspace, found.service, monitor=found.name))


@login_required
@require_POST
def drift_monitor_delete_page(
    request: HttpRequest, name: str, monitor: str, **kwargs: Any
) -> HttpResponse:
    found = _monitor_for_write(request, name, monitor, kwargs)
    service = found.service
    svc.drift_monitor_delete(actor=request.user, monitor=found)
    messages.success(request, f"Drift monitor “{monitor}” deleted.")
    return redirect(_service_url(service.workspace, service))


urlpatterns = [
    path(
        "services/<str:name>/drift/create/",
        drift_monitor_create_page,
        name="service-drift-create",
    ),
    path(
        "services/<str:name>/drift/<str:monitor>/backfill/",
        drift_monitor_backfill_page,
        name="service-drift-backfill",
    ),
    path(
        "services/<str:name>/drift/<str:monitor>/schedule/",
        drift_monitor_schedule_page,
        name="service-drift-schedule",
    ),
    path(
        "services/<str:name>/drift/<str:monitor>/delete/",
        drift_monitor_delete_page,
        name="service-drift-delete",
    ),
]
