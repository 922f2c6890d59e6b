"""Pages: compare runs — overlaid metric charts, latest values, params against a metric,
and a diff table. Deep-linkable: `compare/?runs=<run id>,<run id>,...` (2 to 100 runs,
from any experiments of the workspace)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from portal.errors import InvalidParameter
from portal.selectors import Access
from tracking.selectors.compare import compare_runs, comparison
from tracking.selectors.core import run_duration_ms
from tracking.views.charts import MAX_RUNS, chart_embed, parse_run_ids
from tracking.views.common import (
    experiment_url,
    render_ws,
    run_url,
    tracking_crumbs,
    workspace_for,
    ws_reverse,
)

MIN_RUNS = 2
MISSING_SHOWN = 10


def _problem(
    request: HttpRequest,
    access: Access,
    message: str,
    *,
    status: int,
    missing: list[str] | None = None,
) -> HttpResponse:
    return render_ws(
        request,
        "tracking/compare.html",
        access,
        nav="experiments",
        status=status,
        problem=message,
        missing_note=_missing_note(missing or []),
        experiments_url=ws_reverse(access.obj, "experiments"),
        crumbs=[*tracking_crumbs(access.obj), ("Compare runs", request.get_full_path())],
    )


def _missing_note(missing: list[str]) -> str:
    """Which ids were left out: the first few, cut short (they are user input)."""
    if not missing:
        return ""
    shown = ", ".join(run_id[:40] for run_id in missing[:MISSING_SHOWN])
    more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
    were = "run id was" if len(missing) == 1 else "run ids were"
    return f"{len(missing)} {were} not found in this workspace and left out: {shown}{more}."


@login_required
@require_GET
def compare(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    try:
        ids = parse_run_ids(request.GET.get("runs"))
    except InvalidParameter:
        return _problem(
            request,
            access,
            f"Up to {MAX_RUNS} runs can be compared at once. Pick fewer runs.",
            status=400,
        )
    if len(ids) < MIN_RUNS:
        return _problem(
            request,
            access,
            "Pick at least two runs to compare: select them in an experiment's runs table "
            "and press Compare.",
            status=400,
        )
    runs, missing = compare_runs(workspace=ws, run_ids=ids)
    if not runs:
        raise Http404("None of these runs exist in this workspace.")
    if len(runs) < MIN_RUNS:
        return _problem(
            request,
            access,
            "Only one of these runs exists in this workspace; comparing needs at least two.",
            status=404,
            missing=missing,
        )
    data = comparison(runs)
    experiments = {run.experiment_id: run.experiment for run in runs}
    shared = next(iter(experiments.values())) if len(experiments) == 1 else None
    return render_ws(
        request,
        "tracking/compare.html",
        access,
        nav="experiments",
        crumbs=[*tracking_crumbs(ws, shared), ("Compare runs", request.get_full_path())],
        data=data,
        runs=[
            {
                "run": run,
                "index": index,
                "url": run_url(run),
                "experiment_url": experiment_url(run.experiment),
                "duration": run_duration_ms(run),
            }
            for index, run in enumerate(runs)
        ],
        experiment=shared,
        experiment_count=len(experiments),
        missing_note=_missing_note(missing),
        charts=chart_embed(ws, runs, data.metric_keys),
        share_url=request.build_absolute_uri(
            f"{request.path}?runs={','.join(run.run_uuid for run in runs)}"
        ),
    )


urlpatterns = [
    path("compare/", compare, name="compare"),
]
