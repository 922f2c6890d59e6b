"""MLflow protocol: runs, params, tags, metrics, log-batch, inputs, search."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from mlflow.utils.validation import (
    MAX_BATCH_LOG_REQUEST_SIZE,
    _validate_batch_log_limits,
    _validate_run_id,
)

from portal.errors import InvalidParameter
from tracking.mlflow.experiments import resolve_experiment
from tracking.mlflow.protocol import Call, as_float, as_int, invalid_type, missing, page, route
from tracking.models import Run
from tracking.selectors import run_get
from tracking.selectors.core import experiment_pks
from tracking.selectors.runs import mlflow_runs_json, run_info_json, runs_json
from tracking.services import runs as svc
from tracking.services.datasets import run_log_inputs


def _run_id(call: Call) -> str:
    run_id = call.str("run_id") or call.str("run_uuid")
    if not run_id:
        raise missing("run_id")
    return run_id


def _run(call: Call, *, for_update: bool = False, run_id: str | None = None) -> Run:
    """The run the call names; `run_id` when the handler read (and checked) it first, as
    mlflow server checks `run_id` before the other arguments."""
    run_id = run_id or _run_id(call)
    return run_get(workspace=call.workspace, run_id=run_id, for_update=for_update)


def _pairs(call: Call, name: str) -> list[tuple[Any, Any]]:
    pairs = []
    for index, item in enumerate(call.dicts(name)):
        if item.get("key") in (None, ""):
            raise missing(f"{name}[{index}].key")
        pairs.append((item.get("key"), item.get("value")))
    return pairs


@route("POST", "2.0/mlflow/runs/create", write=True)
def create(call: Call) -> dict:
    experiment = resolve_experiment(call, call.str("experiment_id", default="0"))
    run = svc.run_create(
        workspace=call.workspace,
        experiment=experiment,
        # The authenticated user, not what the client claims (as mlflow's auth app does).
        user_id=call.username or call.str("user_id"),
        start_time=call.int("start_time"),
        run_name=call.str("run_name"),
        tags=_pairs(call, "tags"),
    )
    return {"run": runs_json([run])[0]}


@route("GET", "2.0/mlflow/runs/get")
def get(call: Call) -> dict:
    return {"run": runs_json([_run(call)])[0]}


@route("POST", "2.0/mlflow/runs/update", write=True)
def update(call: Call) -> dict:
    with transaction.atomic():
        run = svc.run_update(
            run=_run(call, for_update=True),
            status=call.str("status") or None,
            end_time=call.int("end_time"),
            run_name=call.str("run_name"),
        )
    return {"run_info": run_info_json(run)}


@route("POST", "2.0/mlflow/runs/delete", write=True)
def delete(call: Call) -> dict:
    svc.run_delete(run=_run(call), actor=call.user)
    return {}


@route("POST", "2.0/mlflow/runs/restore", write=True)
def restore(call: Call) -> dict:
    svc.run_restore(run=_run(call), actor=call.user)
    return {}


@route("POST", "2.0/mlflow/runs/log-parameter", write=True)
def log_param(call: Call) -> dict:
    run_id = _run_id(call)
    params = svc.clean_params([(call.str("key", required=True), call.str("value"))])
    svc.run_log_batch(run=_run(call, run_id=run_id), params=params)
    return {}


@route("POST", "2.0/mlflow/runs/set-tag", write=True)
def set_tag(call: Call) -> dict:
    run_id = _run_id(call)
    tags = svc.clean_tags([(call.str("key", required=True), call.str("value"))])
    svc.run_log_batch(run=_run(call, run_id=run_id), tags=tags)
    return {}


@route("POST", "2.0/mlflow/runs/delete-tag", write=True)
def delete_tag(call: Call) -> dict:
    run_id = _run_id(call)
    key = call.str("key", required=True)
    svc.run_delete_tag(run=_run(call, run_id=run_id), key=key)
    return {}


def _plain(data: dict[str, Any], seen: set[str]) -> svc.Point | None:
    """The point of a metric that is what the client sends for all but a key's first
    point: a key seen (and checked) before in the batch, a finite float value, an int
    timestamp and step (or no step) within int64, no model. None for anything else,
    which _metric checks in full."""
    key = data.get("key")
    value = data.get("value")
    timestamp = data.get("timestamp")
    step = data.get("step")
    if (
        type(key) is str
        and key in seen
        and type(value) is float
        and value - value == 0.0  # not NaN nor ±inf
        and type(timestamp) is int
        and 0 <= timestamp < 2**63
        and (step is None or (type(step) is int and -(2**63) <= step < 2**63))
        and not data.get("model_id")
    ):
        return [key, value, timestamp, step or 0]
    return None


def _metric(data: dict[str, Any], seen: set[str], index: int | None = None) -> svc.MetricIn:
    """A metric checked as mlflow server checks it, in its words; `index` names it in a
    batch ("metrics[3].value")."""
    key = data.get("key")
    value = data.get("value")
    timestamp = data.get("timestamp")
    step = data.get("step")
    model_id = data.get("model_id")
    where = "" if index is None else f"metrics[{index}]."
    if key in (None, ""):
        raise missing(f"{where}key")
    if value is None:
        raise missing(f"{where}value")
    if timestamp is None:
        raise missing(f"{where}timestamp")
    if not isinstance(key, str):
        raise invalid_type(f"{where}key", key)
    metric = svc.clean_metric(
        key,
        as_float(value, f"{where}value"),
        as_int(timestamp, f"{where}timestamp"),
        as_int(step, f"{where}step") if step is not None else 0,
        seen,
        where.rstrip("."),
    )
    if model_id:
        metric.model_id = str(model_id)
        metric.dataset_name = str(data.get("dataset_name") or "")
        metric.dataset_digest = str(data.get("dataset_digest") or "")
    return metric


def _metrics(raw: list[dict[str, Any]]) -> tuple[list[svc.Point], list[svc.MetricIn] | None]:
    """The batch's metrics, checked in order (the first bad one is refused): as points
    for run_log_points, or, when one of them is linked to a logged model, as MetricIn
    for run_log_batch (then the first item is empty)."""
    seen: set[str] = set()
    items: list[svc.Point | svc.MetricIn] = []
    linked = False
    for index, data in enumerate(raw):
        point = _plain(data, seen)
        if point is None:
            metric = _metric(data, seen, index)
            linked = linked or bool(metric.model_id)
            items.append(metric)
        else:
            items.append(point)
    if linked:
        metrics = [m if isinstance(m, svc.MetricIn) else svc.metric_in(m) for m in items]
        return [], metrics
    return [svc.point_json(m) if isinstance(m, svc.MetricIn) else m for m in items], None


@route("POST", "2.0/mlflow/runs/log-metric", write=True)
def log_metric(call: Call) -> dict:
    run_id = _run_id(call)
    metric = _metric(call.data, set())
    if metric.model_id:
        svc.run_log_batch(run=_run(call, run_id=run_id), metrics=[metric])
    else:
        svc.run_log_points(workspace=call.workspace, run_id=run_id, points=[svc.point_json(metric)])
    return {}


@route("POST", "2.0/mlflow/runs/log-batch", write=True)
def log_batch(call: Call) -> dict:
    if len(call.request.body) > MAX_BATCH_LOG_REQUEST_SIZE:
        raise InvalidParameter(
            f"Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} bytes, "
            f"got a request of size {len(call.request.body)}."
        )
    run_id = _run_id(call)
    raw_metrics = call.dicts("metrics")
    raw_params = _pairs(call, "params")
    raw_tags = _pairs(call, "tags")
    # Refuse an oversized batch before parsing a thousand metrics of it.
    _validate_batch_log_limits(raw_metrics, raw_params, raw_tags)
    points, linked = _metrics(raw_metrics)
    params = svc.clean_params(raw_params, batch=True)
    tags = svc.clean_tags(raw_tags, batch=True)
    _validate_run_id(run_id)  # as mlflow's store does for a batch, in its words
    if points and not params and not tags:
        # The hot path: metrics alone, one statement (run lookup included).
        svc.run_log_points(workspace=call.workspace, run_id=run_id, points=points)
        return {}
    svc.run_log_batch(
        run=_run(call, run_id=run_id),
        metrics=linked if linked is not None else [svc.metric_in(p) for p in points],
        params=params,
        tags=tags,
    )
    return {}


@route("POST", "2.0/mlflow/runs/log-inputs", write=True)
def log_inputs(call: Call) -> dict:
    run_log_inputs(
        run=_run(call), dataset_inputs=call.dicts("datasets"), model_inputs=call.dicts("models")
    )
    return {}


SEARCH_RUNS_MAX_RESULTS = 50000


def _experiment_ids(call: Call) -> list[str]:
    # "0" is the client's name for the default experiment.
    return experiment_pks(workspace=call.workspace, experiment_ids=call.list("experiment_ids"))


@route("POST", "2.0/mlflow/runs/search")
def search(call: Call) -> dict:
    from tracking.selectors.search import search_runs

    experiment_ids = _experiment_ids(call)
    filter_string = call.str("filter")
    max_results = call.int("max_results", default=1000)
    if max_results > SEARCH_RUNS_MAX_RESULTS:  # mlflow server's handler refuses it so
        raise invalid_type("max_results", max_results)
    order_by = call.str_list("order_by")
    pks, token = search_runs(
        workspace=call.workspace,
        experiment_ids=experiment_ids,
        filter_string=filter_string,
        run_view_type=str(call.data.get("run_view_type") or "ACTIVE_ONLY"),
        max_results=max_results,
        order_by=order_by,
        page_token=call.str("page_token") or None,
    )
    return page("runs", mlflow_runs_json(list(pks)), token)
