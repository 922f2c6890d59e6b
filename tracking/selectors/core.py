"""Lookups by id within a workspace."""

from __future__ import annotations

from django.db.models import QuerySet

from portal.errors import NotFound
from portal.models import ResourceGroup, Subscription, Workspace
from tracking.models import Experiment, Run, RunStatus


def int_id(value: str | int) -> int | None:
    """An id as stored (a positive BIGINT), or None for text that cannot be one."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def experiment_get(*, workspace: Workspace, experiment_id: str | int) -> Experiment:
    """The workspace's experiment with this id (active or deleted), or RESOURCE_DOES_NOT_EXIST."""
    pk = int_id(experiment_id)
    experiment = (
        Experiment.objects.filter(workspace=workspace, pk=pk).first() if pk is not None else None
    )
    if experiment is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    return experiment


def experiment_get_by_name(*, workspace: Workspace, name: str) -> Experiment:
    experiment = Experiment.objects.filter(workspace=workspace, name=name).first()
    if experiment is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return experiment


def run_get(*, workspace: Workspace, run_id: str, for_update: bool = False) -> Run:
    """The workspace's run with this id (active or deleted), or RESOURCE_DOES_NOT_EXIST."""
    runs = Run.objects.filter(workspace=workspace, run_uuid=run_id)
    if for_update:
        runs = runs.select_for_update()
    # PostgreSQL refuses NUL in a text parameter with an error, not a miss.
    run = runs.first() if isinstance(run_id, str) and run_id and "\x00" not in run_id else None
    if run is None:
        raise NotFound(f"Run with id={run_id} not found")
    return run


def runs_within(obj: Subscription | ResourceGroup | Workspace | Experiment | Run) -> QuerySet[Run]:
    """Every run at or below a node of the tree, deleted ones included."""
    if isinstance(obj, Run):
        return Run.objects.filter(pk=obj.pk)
    if isinstance(obj, Experiment):
        return Run.objects.filter(experiment=obj)
    if isinstance(obj, Workspace):
        return Run.objects.filter(workspace=obj)
    if isinstance(obj, ResourceGroup):
        return Run.objects.filter(workspace__resource_group=obj)
    if isinstance(obj, Subscription):
        return Run.objects.filter(workspace__resource_group__subscription=obj)
    raise TypeError(f"no runs below a {type(obj).__name__}")


def run_duration_ms(run: Run, *, now_ms: int | None = None) -> int | None:
    """How long the run took. A run still RUNNING counts until `now_ms` when given;
    None when a time is missing."""
    if run.start_time is None:
        return None
    end = run.end_time
    if end is None and now_ms is not None and run.status == RunStatus.RUNNING:
        end = now_ms
    return None if end is None else max(0, end - run.start_time)
