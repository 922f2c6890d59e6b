"""Chart data for run and compare pages: downsampled metric series as JSON.

No page ever loads a whole history: a series longer than `points` comes back as
min/max buckets (spikes survive), and zooming asks again for the visible step range.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from portal.errors import InvalidParameter
from tracking.models import Run
from tracking.selectors.metrics import sampled_history
from tracking.views.common import workspace_for

MAX_RUNS = 100
DEFAULT_POINTS = 2000
MAX_POINTS = 10_000


def parse_run_ids(raw: str | None) -> list[str]:
    """Run ids from `a,b,c` (order kept, duplicates dropped), at most MAX_RUNS."""
    ids = list(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))
    if len(ids) > MAX_RUNS:
        raise InvalidParameter(f"At most {MAX_RUNS} runs can be charted together.")
    return ids


def _int_param(request: HttpRequest, name: str, default: int | None) -> int | None:
    raw = request.GET.get(name, "")
    if raw == "":
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise InvalidParameter(f"'{name}' must be a number.") from None


def _finite(value: float, is_nan: bool) -> float | None:
    return None if is_nan or not math.isfinite(value) else value


def metric_series(
    runs: list[Run],
    key: str,
    *,
    points: int = DEFAULT_POINTS,
    min_step: int | None = None,
    max_step: int | None = None,
) -> list[dict[str, Any]]:
    """One entry per run (in the given order) with step, time (ms) and value lists.

    Non-finite values come back as null so the chart shows a gap.
    """
    rows = sampled_history(
        [run.pk for run in runs],
        key,
        max_results=points,
        start_step=min_step,
        end_step=max_step,
    )
    by_run: dict[int, dict[str, list]] = {
        run.pk: {"step": [], "time": [], "value": []} for run in runs
    }
    for run_pk, step, timestamp, value, is_nan in rows:
        columns = by_run[run_pk]
        columns["step"].append(step)
        columns["time"].append(timestamp)
        columns["value"].append(_finite(value, is_nan))
    return [{"run_id": run.run_uuid, "name": run.name, **by_run[run.pk]} for run in runs]


@login_required
@require_GET
def chart_metric(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """GET ?key=loss&runs=<id>,<id>[&points=2000][&min_step=&max_step=]."""
    access = workspace_for(request, kwargs)
    try:
        key = request.GET.get("key", "")
        if not key:
            raise InvalidParameter("Say which metric: ?key=<name>.")
        ids = parse_run_ids(request.GET.get("runs"))
        points = _int_param(request, "points", DEFAULT_POINTS)
        points = max(10, min(MAX_POINTS, points))
        min_step = _int_param(request, "min_step", None)
        max_step = _int_param(request, "max_step", None)
        if (min_step is None) != (max_step is None):
            raise InvalidParameter("Give both min_step and max_step, or neither.")
    except InvalidParameter as exc:
        return HttpResponse(
            orjson.dumps({"error": exc.message}), status=400, content_type="application/json"
        )
    found = {
        run.run_uuid: run
        for run in Run.objects.filter(workspace=access.obj, run_uuid__in=ids).only(
            "pk", "run_uuid", "name"
        )
    }
    runs = [found[run_id] for run_id in ids if run_id in found]
    body = {
        "key": key,
        "points": points,
        "series": metric_series(runs, key, points=points, min_step=min_step, max_step=max_step),
    }
    return HttpResponse(orjson.dumps(body), content_type="application/json")


urlpatterns = [
    path("charts/metric/", chart_metric, name="chart-metric"),
]
