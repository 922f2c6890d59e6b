"""Chart data for run and compare pages: downsampled metric series as JSON.

No page ever loads a whole history: a series longer than `points` comes back as its
first, last, lowest and highest point per step bucket (spikes survive), and zooming
asks again for the visible step range, which comes back whole once it is short enough.

Pages embed the chart component (static/js/charts.js) with `chart_embed()`:

    <div class="metric-charts" data-metric-charts data-url="{{ charts.url }}"
         data-runs="{{ charts.runs }}" data-keys="{{ charts.keys }}"></div>
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
from portal.models import Workspace
from tracking.models import Run
from tracking.selectors.compare import compare_runs
from tracking.selectors.metrics import chart_history
from tracking.views.common import workspace_for, ws_reverse

MAX_RUNS = 100
DEFAULT_POINTS = 2000
MAX_POINTS = 10_000
_INT64 = 2**63


def parse_run_ids(raw: str | None) -> list[str]:
    """Run ids from `a,b,c` (order kept, duplicates dropped), at most MAX_RUNS."""
    ids = list(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))
    if len(ids) > MAX_RUNS:
        raise InvalidParameter(f"At most {MAX_RUNS} runs can be charted together.")
    return ids


def chart_embed(ws: Workspace, runs: list[Run], keys: list[str]) -> dict[str, str]:
    """The data attributes of a `[data-metric-charts]` container, as strings for the
    template (autoescaping makes the JSON safe inside an attribute)."""
    return {
        "url": ws_reverse(ws, "chart-metric"),
        "runs": orjson.dumps([{"id": run.run_uuid, "name": run.name} for run in runs]).decode(),
        "keys": orjson.dumps(list(keys)).decode(),
    }


def _int_param(request: HttpRequest, name: str, default: int | None) -> int | None:
    raw = request.GET.get(name, "").strip()
    if raw == "":
        return default
    try:
        number = int(float(raw))
    except (ValueError, OverflowError):
        raise InvalidParameter(f"'{name}' must be a whole number, not '{raw[:40]}'.") from None
    if not -_INT64 <= number < _INT64:
        raise InvalidParameter(f"'{name}' is out of range.")
    return number


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
    """One entry per run (in the given order) with step, time (ms) and value lists,
    whether the series was downsampled and how many points it has in the range.

    Non-finite values come back as null so the chart shows a gap.
    """
    sampled = chart_history(
        [run.pk for run in runs], key, points=points, start_step=min_step, end_step=max_step
    )
    series = []
    for run in runs:
        found = sampled.get(run.pk)
        rows = found.rows if found else []
        series.append(
            {
                "run_id": run.run_uuid,
                "name": run.name,
                "start_time": run.start_time,
                "step": [row[0] for row in rows],
                "time": [row[1] for row in rows],
                "value": [_finite(row[2], row[3]) for row in rows],
                "downsampled": bool(found and found.downsampled),
                "total": found.total if found else 0,
            }
        )
    return series


def _json(body: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


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
        if not ids:
            raise InvalidParameter("Say which runs: ?runs=<run id>,<run id>.")
        points = _int_param(request, "points", DEFAULT_POINTS)
        points = max(10, min(MAX_POINTS, points))
        min_step = _int_param(request, "min_step", None)
        max_step = _int_param(request, "max_step", None)
        if (min_step is None) != (max_step is None):
            raise InvalidParameter("Give both min_step and max_step, or neither.")
        if min_step is not None and min_step > max_step:
            raise InvalidParameter("min_step must not be greater than max_step.")
    except InvalidParameter as exc:
        return _json({"error": exc.message}, status=400)
    runs, _ = compare_runs(workspace=access.obj, run_ids=ids)
    return _json(
        {
            "key": key,
            "points": points,
            "min_step": min_step,
            "max_step": max_step,
            "series": metric_series(runs, key, points=points, min_step=min_step, max_step=max_step),
        }
    )


urlpatterns = [
    path("charts/metric/", chart_metric, name="chart-metric"),
]
