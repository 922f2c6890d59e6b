"""Runs rendered as MLflow's JSON, in bulk: one query per relation for a whole page."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

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


class KeyValues(NamedTuple):
    """The metrics, params and tags of some runs, by run pk, as MLflow's JSON lists them."""

    metrics: dict[int, list[dict[str, Any]]]
    params: dict[int, list[dict[str, Any]]]
    tags: dict[int, list[dict[str, Any]]]


def run_key_values(pks: list[int]) -> KeyValues:
    """Latest metrics, params and tags of the runs: one round trip for the three key/value
    tables of a whole page. A run without any has empty lists."""
    metrics: dict[int, list] = defaultdict(list)
    params: dict[int, list] = defaultdict(list)
    tags: dict[int, list] = defaultdict(list)
    if not pks:
        return KeyValues(metrics, params, tags)
    marks = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 0, run_id, key, NULL, value, timestamp, step, is_nan "  # noqa: S608
            f"FROM tracking_latestmetric WHERE run_id IN ({marks}) "
            f"UNION ALL SELECT 1, run_id, key, value, NULL, NULL, NULL, NULL "
            f"FROM tracking_param WHERE run_id IN ({marks}) "
            f"UNION ALL SELECT 2, run_id, key, value, NULL, NULL, NULL, NULL "
            f"FROM tracking_runtag WHERE run_id IN ({marks})",
            pks * 3,
        )
        for kind, run_id, key, text, number, timestamp, step, is_nan in cursor.fetchall():
            if kind == 0:
                metrics[run_id].append(
                    {
                        "key": key,
                        "value": json_float(number, bool(is_nan)),
                        "timestamp": timestamp,
                        "step": step,
                    }
                )
            elif kind == 1:
                params[run_id].append({"key": key, "value": text})
            else:
                tags[run_id].append({"key": key, "value": text})
    return KeyValues(metrics, params, tags)


def runs_json(runs: list[Run]) -> list[dict[str, Any]]:
    """Full run objects (info, data, inputs, outputs) for a list of runs, in its order."""
    if not runs:
        return []
    pks = [run.pk for run in runs]
    metrics, params, tags = run_key_values(pks)
    inputs: dict[int, list] = defaultdict(list)
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
    outputs = run_outputs(pks)
    defaults = default_experiment_pks(run.workspace_id for run in runs)
    result = []
    for run in runs:
        run_inputs: dict[str, Any] = {"dataset_inputs": inputs.get(run.pk, [])}
        if model_inputs.get(run.pk):
            run_inputs["model_inputs"] = model_inputs[run.pk]
        entry: dict[str, Any] = {
            "info": run_info_json(run, defaults),
            "data": {
                "metrics": metrics.get(run.pk, []),
                "params": params.get(run.pk, []),
                "tags": tags.get(run.pk, []),
            },
            "inputs": run_inputs,
        }
        if outputs.get(run.pk):
            entry["outputs"] = {"model_outputs": outputs[run.pk]}
        result.append(entry)
    return result


def runs_by_pks(pks: list[int]) -> list[Run]:
    by_pk = {run.pk: run for run in Run.objects.filter(pk__in=pks)}
    return [by_pk[pk] for pk in pks if pk in by_pk]


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
