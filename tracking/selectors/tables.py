"""Reads behind the experiment list and the runs table.

Both stay fast on big workspaces: the experiment list aggregates runs in one
grouped query; the runs table asks the search selector for one page of run pks
(the same filter and order semantics as `mlflow.search_runs`) and then loads only
the chosen columns of those runs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest

from portal.models import Workspace
from tracking.models import Experiment, LatestMetric, LifecycleStage, Param, Run, RunTag
from tracking.selectors.core import run_duration_ms
from tracking.selectors.search import run_search_queryset

EXPERIMENT_SORTS = {
    "name": ("name",),
    "-name": ("-name",),
    "runs": ("run_count", "name"),
    "-runs": ("-run_count", "name"),
    "activity": ("last_activity", "name"),
    "-activity": ("-last_activity", "name"),
    "created": ("creation_time", "name"),
    "-created": ("-creation_time", "name"),
}
VIEWS = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", "all": "ALL"}
COLUMN_KINDS = ("metrics", "params", "tags")
DEFAULT_ORDER = "attributes.start_time DESC"
DEFAULT_COLUMNS_PER_KIND = 6
MAX_COLUMNS = 60
# Keys that are safe to write bare in an order-by clause; others are backquoted.
_BARE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def experiments_for_list(
    *, workspace: Workspace, query: str = "", sort: str = "-activity", deleted: bool = False
) -> QuerySet[Experiment]:
    """The workspace's experiments matching `query` (substring of the name, any case),
    with their active run count and last activity (ms since epoch)."""
    stage = LifecycleStage.DELETED if deleted else LifecycleStage.ACTIVE
    experiments = Experiment.objects.filter(workspace=workspace, lifecycle_stage=stage)
    if query:
        experiments = experiments.filter(name__icontains=query)
    return experiments.annotate(
        run_count=Count("runs", filter=Q(runs__lifecycle_stage=LifecycleStage.ACTIVE)),
        last_activity=Greatest(
            "last_update_time",
            Coalesce(Max("runs__end_time"), 0),
            Coalesce(Max("runs__start_time"), 0),
        ),
    ).order_by(*EXPERIMENT_SORTS.get(sort, EXPERIMENT_SORTS["-activity"]))


@dataclass(frozen=True)
class Column:
    kind: str  # metrics | params | tags
    key: str

    @property
    def ident(self) -> str:
        return f"{self.kind}.{self.key}"

    def order_clause(self, ascending: bool) -> str:
        key = self.key if _BARE_KEY.match(self.key) else f"`{self.key}`"
        return f"{self.kind}.{key} {'ASC' if ascending else 'DESC'}"


@dataclass
class RunRow:
    run: Run
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, LatestMetric] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        return run_duration_ms(self.run, now_ms=int(time.time() * 1000))

    @property
    def parent_id(self) -> str:
        return self.tags.get("mlflow.parentRunId", "")

    def cell(self, column: Column) -> Any:
        if column.kind == "metrics":
            return self.metrics.get(column.key)
        if column.kind == "params":
            return self.params.get(column.key)
        return self.tags.get(column.key)


def available_columns(experiment: Experiment) -> dict[str, list[str]]:
    """Every metric, param and user tag key logged in the experiment, sorted."""
    runs = Run.objects.filter(experiment=experiment)
    return {
        "metrics": sorted(
            LatestMetric.objects.filter(run__in=runs).values_list("key", flat=True).distinct()
        ),
        "params": sorted(
            Param.objects.filter(run__in=runs).values_list("key", flat=True).distinct()
        ),
        "tags": sorted(
            RunTag.objects.filter(run__in=runs)
            .exclude(key__startswith="mlflow.")
            .values_list("key", flat=True)
            .distinct()
        ),
    }


def parse_columns(raw: str | None, available: dict[str, list[str]]) -> list[Column]:
    """Columns from `metrics.loss,params.lr,tags.team`; unknown ones are dropped.

    Without a choice, the first few metrics and params are shown.
    """
    if raw is None:
        return [
            Column(kind, key)
            for kind in ("metrics", "params")
            for key in available[kind][:DEFAULT_COLUMNS_PER_KIND]
        ]
    columns = []
    for ident in raw.split(","):
        kind, _, key = ident.strip().partition(".")
        if kind in COLUMN_KINDS and key in available[kind]:
            columns.append(Column(kind, key))
    return list(dict.fromkeys(columns))[:MAX_COLUMNS]


@dataclass
class RunTable:
    rows: list[RunRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)


def run_table(
    *,
    workspace: Workspace,
    experiment: Experiment,
    columns: list[Column],
    filter_string: str = "",
    order: str = DEFAULT_ORDER,
    view: str = "active",
    page: int = 1,
    per_page: int = 100,
) -> RunTable:
    """One page of the experiment's runs. Raises InvalidParameter for a bad filter
    or order (mlflow's messages), before any query runs."""
    runs = run_search_queryset(
        workspace=workspace,
        experiment_ids=[str(experiment.pk)],
        filter_string=filter_string,
        run_view_type=VIEWS.get(view, "ACTIVE_ONLY"),
        order_by=[order] if order else None,
    )
    if runs is None:
        return RunTable([], 0, 1, per_page)
    total = runs.count()
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    pks = list(runs[(page - 1) * per_page : page * per_page])
    return RunTable(_rows(pks, columns), total, page, per_page)


def _rows(pks: list[int], columns: list[Column]) -> list[RunRow]:
    """The runs of a page with just the chosen columns: four queries, whatever the size."""
    if not pks:
        return []
    fields = (
        "pk",
        "run_uuid",
        "name",
        "status",
        "user_id",
        "start_time",
        "end_time",
        "lifecycle_stage",
        "experiment_id",
        "workspace_id",
    )
    by_pk = {run.pk: RunRow(run) for run in Run.objects.filter(pk__in=pks).only(*fields)}
    wanted = {kind: [c.key for c in columns if c.kind == kind] for kind in COLUMN_KINDS}
    if wanted["params"]:
        for run_id, key, value in Param.objects.filter(
            run_id__in=pks, key__in=wanted["params"]
        ).values_list("run_id", "key", "value"):
            by_pk[run_id].params[key] = value
    if wanted["metrics"]:
        for metric in LatestMetric.objects.filter(run_id__in=pks, key__in=wanted["metrics"]).only(
            "run_id", "key", "value", "step", "is_nan", "timestamp"
        ):
            by_pk[metric.run_id].metrics[metric.key] = metric
    tag_keys = [*wanted["tags"], "mlflow.parentRunId"]
    for run_id, key, value in RunTag.objects.filter(run_id__in=pks, key__in=tag_keys).values_list(
        "run_id", "key", "value"
    ):
        by_pk[run_id].tags[key] = value
    return [by_pk[pk] for pk in pks if pk in by_pk]
