"""Lookups by id within a workspace."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import BigIntegerField, Case, F, QuerySet, Value, When

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


# A logged model's experiment id as MLflow clients know it, for filters and ordering.
MLFLOW_EXPERIMENT_ID = Case(
    When(experiment__is_default=True, then=Value(0)),
    default=F("experiment_id"),
    output_field=BigIntegerField(),
)


def mlflow_experiment_id(experiment: Experiment) -> str:
    """The id MLflow clients know the experiment by: "0" for the workspace's Default
    (as `mlflow server` numbers it), its row id for every other."""
    return "0" if experiment.is_default else str(experiment.pk)


def is_default_id(experiment_id: object) -> bool:
    """Whether an MLflow experiment id names the Default experiment ("0", as mlflow parses it)."""
    try:
        return int(str(experiment_id).strip()) == 0
    except ValueError:
        return False


def default_experiment_pks(workspace_ids: Iterable[int]) -> set[int]:
    """The row ids of these workspaces' Default experiments, to write them as "0"."""
    return set(
        Experiment.objects.filter(workspace_id__in=set(workspace_ids), is_default=True).values_list(
            "pk", flat=True
        )
    )


def experiment_pks(*, workspace: Workspace, experiment_ids: Iterable[Any]) -> list[str]:
    """MLflow experiment ids as row ids, "0" becoming the Default's (when there is one);
    the others are left as they are for the caller to check."""
    ids = [str(e) for e in experiment_ids]
    if any(is_default_id(e) for e in ids):
        default = Experiment.objects.filter(workspace=workspace, is_default=True).first()
        ids = [
            (str(default.pk) if default is not None else e) if is_default_id(e) else e for e in ids
        ]
    return ids


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
