"""Runs rendered as MLflow's JSON, in bulk: one SQL statement for a whole page."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

import orjson
from django.db import connection

from tracking.encoding import json_float
from tracking.models import (
    Experiment,
    ExperimentTag,
    Run,
    RunInput,
    RunModelInput,
)
from tracking.selectors.core import default_experiment_pks, mlflow_experiment_id
from tracking.selectors.logged_models import run_outputs


def run_info_json(run: Run, default_experiments: set[int] | None = None) -> dict[str, Any]:
    """A run's info; `default_experiments` (the row ids of Default experiments, written
    as "0") is looked up when not given."""
    if default_experiments is None:
        default_experiments = default_experiment_pks([run.workspace_id])
    info = {
        "run_id": run.run_uuid,
        "run_uuid": run.run_uuid,
        "run_name": run.name,
        "experiment_id": "0"
        if run.experiment_id in default_experiments
        else str(run.experiment_id),
        "user_id": run.user_id,
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


class RunRow(NamedTuple):
    """A run as the page statement reads it: its columns, whether its experiment is the
    Default, and its latest metrics, params and tags as MLflow's JSON lists them."""

    pk: int
    run_uuid: str
    name: str
    experiment_id: int
    is_default: bool
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str
    metrics: list[dict[str, Any]]
    params: list[dict[str, Any]]
    tags: list[dict[str, Any]]
    has_inputs: bool


def _aggregate(vendor: str, table: str, columns: str) -> str:
    """A correlated subquery: the run's rows of `table` as one JSON array (text) of arrays."""
    if vendor == "postgresql":
        items = f"json_agg(json_build_array({columns}))::text"
    else:
        items = f"json_group_array(json_array({columns}))"
    return f"(SELECT {items} FROM {table} x WHERE x.run_id = r.id)"  # noqa: S608


def _page_sql(vendor: str, count: int) -> str:
    # Metric values travel as text (float8's shortest exact form on PostgreSQL, 17
    # digits on SQLite, whose JSON writes only 15), so they come back the same doubles.
    value = "x.value::text" if vendor == "postgresql" else "printf('%%!.17g', x.value)"
    metrics = _aggregate(
        vendor, "tracking_latestmetric", f"x.key, {value}, x.timestamp, x.step, x.is_nan"
    )
    params = _aggregate(vendor, "tracking_param", "x.key, x.value")
    tags = _aggregate(vendor, "tracking_runtag", "x.key, x.value")
    has_io = " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.id)"  # noqa: S608
        for table in ("tracking_runinput", "tracking_runmodelinput", "tracking_runoutput")
    )
    marks = ", ".join(["%s"] * count)
    # Only fixed names are interpolated; the primary keys are parameters.
    return (
        "SELECT r.id, r.run_uuid, r.name, r.experiment_id, e.is_default, r.user_id, "  # noqa: S608
        "r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage, "
        f"{metrics}, {params}, {tags}, {has_io} "
        "FROM tracking_run r JOIN tracking_experiment e ON e.id = r.experiment_id "
        f"WHERE r.id IN ({marks})"
    )


def _metric_value(text: str, is_nan: Any) -> float | str | None:
    return json_float(float(text), bool(is_nan))


def run_rows(pks: list[int]) -> list[RunRow]:
    """The runs of these primary keys, in this order (missing ones left out), with their
    latest metrics, params and tags: one SQL statement for a whole page."""
    if not pks:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_page_sql(connection.vendor, len(pks)), pks)
        rows = cursor.fetchall()
    by_pk = {}
    for row in rows:
        metrics, params, tags = (orjson.loads(items) if items else [] for items in row[11:14])
        by_pk[row[0]] = RunRow(
            *row[:4],
            bool(row[4]),
            *row[5:11],
            [
                {
                    "key": key,
                    "value": _metric_value(text, is_nan),
                    "timestamp": timestamp,
                    "step": step,
                }
                for key, text, timestamp, step, is_nan in metrics
            ],
            [{"key": key, "value": value} for key, value in params],
            [{"key": key, "value": value} for key, value in tags],
            bool(row[14]),
        )
    return [by_pk[pk] for pk in pks if pk in by_pk]


def _run_io(pks: list[int]) -> tuple[dict[int, list], dict[int, list], dict[int, list]]:
    """Dataset inputs, model inputs and model outputs of the runs (those that have any)."""
    inputs: dict[int, list] = defaultdict(list)
    if not pks:
        return inputs, {}, {}
    for item in RunInput.objects.filter(run_id__in=pks).select_related("dataset"):
        d = item.dataset
        dataset = {"name": d.name, "digest": d.digest, "source_type": d.source_type}
        dataset["source"] = d.source
        if d.schema:
            dataset["schema"] = d.schema
        if d.profile:
            dataset["profile"] = d.profile
        inputs[item.run_id].append({"tags": item.tags, "dataset": dataset})
    model_inputs: dict[int, list] = defaultdict(list)
    for run_pk, model_id in (
        RunModelInput.objects.filter(run_id__in=pks)
        .order_by("pk")
        .values_list("run_id", "model_id")
    ):
        model_inputs[run_pk].append({"model_id": model_id})
    return inputs, model_inputs, run_outputs(pks)


def mlflow_runs_json(pks: list[int]) -> list[dict[str, Any]]:
    """Full MLflow run objects (info, data, inputs, outputs) of the runs of these primary
    keys, in this order: one statement, plus three only for runs with inputs or outputs."""
    rows = run_rows(pks)
    inputs, model_inputs, outputs = _run_io([row.pk for row in rows if row.has_inputs])
    result = []
    for row in rows:
        info = {
            "run_id": row.run_uuid,
            "run_uuid": row.run_uuid,
            "run_name": row.name,
            "experiment_id": "0" if row.is_default else str(row.experiment_id),
            "user_id": row.user_id,
            "status": row.status,
            "start_time": row.start_time,
            "artifact_uri": row.artifact_uri,
            "lifecycle_stage": row.lifecycle_stage,
        }
        if row.end_time is not None:
            info["end_time"] = row.end_time
        run_inputs: dict[str, Any] = {"dataset_inputs": inputs.get(row.pk, [])}
        if model_inputs.get(row.pk):
            run_inputs["model_inputs"] = model_inputs[row.pk]
        entry: dict[str, Any] = {
            "info": info,
            "data": {"metrics": row.metrics, "params": row.params, "tags": row.tags},
            "inputs": run_inputs,
        }
        if outputs.get(row.pk):
            entry["outputs"] = {"model_outputs": outputs[row.pk]}
        result.append(entry)
    return result


def runs_json(runs: list[Run]) -> list[dict[str, Any]]:
    """Full run objects (info, data, inputs, outputs) for a list of runs, in its order."""
    return mlflow_runs_json([run.pk for run in runs])


def experiments_json(experiments: list[Experiment]) -> list[dict[str, Any]]:
    tags: dict[int, list] = defaultdict(list)
    for exp_id, key, value in ExperimentTag.objects.filter(
        experiment_id__in=[e.pk for e in experiments]
    ).values_list("experiment_id", "key", "value"):
        tags[exp_id].append({"key": key, "value": value})
    return [
        {
            "experiment_id": mlflow_experiment_id(e),
            "name": e.name,
            "artifact_location": e.artifact_location,
            "lifecycle_stage": e.lifecycle_stage,
            "last_update_time": e.last_update_time,
            "creation_time": e.creation_time,
            "tags": tags.get(e.pk, []),
        }
        for e in experiments
    ]
