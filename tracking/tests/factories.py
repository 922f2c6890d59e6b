"""Tracking data for page tests, written through the same services the MLflow API uses."""

from __future__ import annotations

from collections.abc import Iterable

from portal.models import Workspace
from tracking.models import Experiment, Run
from tracking.services.experiments import experiment_create, now_ms
from tracking.services.runs import MetricIn, run_create, run_log_batch, run_update


def make_experiment(workspace: Workspace, name: str = "exp") -> Experiment:
    return experiment_create(workspace=workspace, name=name, actor=None)


def make_run(
    experiment: Experiment,
    name: str = "",
    *,
    params: dict[str, object] | None = None,
    metrics: dict[str, float | Iterable[float]] | None = None,
    tags: dict[str, str] | None = None,
    status: str = "FINISHED",
    user_id: str = "olivia",
    start_time: int | None = None,
) -> Run:
    """A run with params, tags and metrics; a metric given as a list is logged as steps 0…n."""
    start = start_time if start_time is not None else now_ms()
    run = run_create(
        workspace=experiment.workspace,
        experiment=experiment,
        user_id=user_id,
        start_time=start,
        run_name=name,
    )
    points = []
    for key, values in (metrics or {}).items():
        series = [values] if isinstance(values, int | float) else list(values)
        points += [
            MetricIn(key, float(v), False, start + step * 1000, step)
            for step, v in enumerate(series)
        ]
    for offset in range(0, max(1, len(points)), 1000):
        run_log_batch(
            run=run,
            metrics=points[offset : offset + 1000],
            params=[(k, str(v)) for k, v in (params or {}).items()] if offset == 0 else [],
            tags=list((tags or {}).items()) if offset == 0 else [],
        )
    if status != "RUNNING":
        run_update(run=run, status=status, end_time=start + 60_000)
    run.refresh_from_db()
    return run
