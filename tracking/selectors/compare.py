"""Reads for the compare page: the runs, and their params, latest metrics and tags side by side.

The page never loads metric history: its small plots use the latest values embedded in
the page, and its line charts ask the chart endpoint for downsampled series.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from portal.models import Workspace
from tracking.models import LatestMetric, Param, Run, RunTag
from tracking.templatetags.tracking_format import metric_value

SYSTEM_TAG_PREFIX = "mlflow."


@dataclass(frozen=True)
class DiffRow:
    section: str  # "param" | "metric" | "tag"
    key: str
    cells: list[tuple[str | None, str]]  # per run: display text (None: no value), full value
    differs: bool


@dataclass
class Comparison:
    runs: list[Run]
    metric_keys: list[str]
    rows: list[DiffRow]
    plot: dict[str, Any]  # embedded in the page for the small plots (finite numbers only)
    param_count: int = 0

    @property
    def differing(self) -> int:
        return sum(row.differs for row in self.rows)


def compare_runs(*, workspace: Workspace, run_ids: list[str]) -> tuple[list[Run], list[str]]:
    """The workspace's runs with these ids, in the order asked, and the ids not found
    (unknown, or another workspace's: the two are not told apart)."""
    found = {
        run.run_uuid: run
        for run in Run.objects.filter(workspace=workspace, run_uuid__in=run_ids).select_related(
            "experiment"
        )
    }
    return [found[i] for i in run_ids if i in found], [i for i in run_ids if i not in found]


def _by_key(rows, runs: list[Run], value) -> dict[str, list]:
    column = {run.pk: index for index, run in enumerate(runs)}
    table: dict[str, list] = defaultdict(lambda: [None] * len(runs))
    for row in rows:
        table[row.key][column[row.run_id]] = value(row)
    return dict(sorted(table.items()))


def _number(text: str | None) -> float | None:
    try:
        number = float(text) if text is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _param_plot(values: list[str | None]) -> dict[str, Any]:
    """A param as a plot axis: numeric when every run has a number for it."""
    numbers = [_number(v) for v in values]
    if all(n is not None for n in numbers):
        return {"kind": "number", "values": numbers}
    return {"kind": "category", "values": values}


def comparison(runs: list[Run]) -> Comparison:
    """Params, latest metrics and (non-system) tags of the runs, keyed and aligned by run."""
    pks = [run.pk for run in runs]
    params = _by_key(
        Param.objects.filter(run_id__in=pks).only("run_id", "key", "value"),
        runs,
        lambda row: row.value,
    )
    metrics = _by_key(
        LatestMetric.objects.filter(run_id__in=pks).only(
            "run_id", "key", "value", "is_nan", "step"
        ),
        runs,
        lambda row: (row.value, row.is_nan, row.step),
    )
    tags = _by_key(
        RunTag.objects.filter(run_id__in=pks)
        .exclude(key__startswith=SYSTEM_TAG_PREFIX)
        .only("run_id", "key", "value"),
        runs,
        lambda row: row.value,
    )
    rows = [_text_row("param", key, values) for key, values in params.items()]
    rows += [_metric_row(key, values) for key, values in metrics.items()]
    rows += [_text_row("tag", key, values) for key, values in tags.items()]
    plot = {
        "runs": [
            {"id": run.run_uuid, "name": run.name or run.run_uuid[:8], "label": label}
            for run, label in zip(runs, run_labels(runs), strict=True)
        ],
        "params": {key: _param_plot(values) for key, values in params.items()},
        "metrics": {
            key: [
                value[0] if value and not value[1] and math.isfinite(value[0]) else None
                for value in values
            ]
            for key, values in metrics.items()
        },
    }
    return Comparison(
        runs=runs,
        metric_keys=list(metrics),
        rows=rows,
        plot=plot,
        param_count=len(params),
    )


def run_labels(runs: list[Run]) -> list[str]:
    """Names to tell runs apart on an axis: a short id is added where names repeat."""
    names = [run.name or run.run_uuid[:8] for run in runs]
    repeated = {name for name in names if names.count(name) > 1}
    return [
        f"{name} ({run.run_uuid[:6]})" if name in repeated else name
        for name, run in zip(names, runs, strict=True)
    ]


def _text_row(section: str, key: str, values: list[str | None]) -> DiffRow:
    cells = [(v, "" if v is None else v) for v in values]
    return DiffRow(section=section, key=key, cells=cells, differs=len(set(values)) > 1)


def _metric_row(key: str, values: list[tuple[float, bool, int] | None]) -> DiffRow:
    cells = [
        (None, "")
        if v is None
        else (metric_value(v[0], v[1]), f"{'NaN' if v[1] else repr(v[0])} at step {v[2]}")
        for v in values
    ]
    # Compared by value, not by step: the same final loss at another step is equal.
    compared = {None if v is None else (v[0], v[1]) for v in values}
    return DiffRow(section="metric", key=key, cells=cells, differs=len(compared) > 1)
