"""MLflow protocol: metric history, paged and streamed, and the sampled bulk history."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from django.http import HttpResponse, StreamingHttpResponse
from mlflow.store.tracking import GET_METRIC_HISTORY_MAX_RESULTS

from portal.errors import InvalidParameter, NotFound
from tracking.encoding import json_float
from tracking.mlflow.protocol import AJAX_ONLY, Call, route
from tracking.models import Run
from tracking.selectors import metrics as sel
from tracking.selectors import run_get

MAX_RUNS_BULK = 100
MAX_RESULTS_PER_RUN = 2500
# get-history-bulk, mlflow server's legacy endpoint: its limits.
MAX_RUN_IDS_HISTORY_BULK = 100
MAX_HISTORY_BULK_RESULTS = 25000


def _stream(key: str, series: int | None) -> Iterator[bytes]:
    yield b'{"metrics":['
    first = True
    if series is not None:
        for rows in sel.history_stream(series):
            chunk = sel.points_json(key, rows)[1:-1]
            if chunk:
                yield chunk if first else b"," + chunk
                first = False
    yield b"]}"


@route("GET", "2.0/mlflow/metrics/get-history")
def get_history(call: Call) -> HttpResponse | dict:
    run_id = call.str("run_id") or call.str("run_uuid")
    if not run_id:
        raise InvalidParameter("Missing value for required parameter 'run_id'.")
    key = call.str("metric_key", required=True)
    run = run_get(workspace=call.workspace, run_id=run_id)
    series = sel.series_id(run, key)
    max_results = call.int("max_results")
    if max_results is None:
        # The whole history, streamed: memory stays flat however long it is.
        return StreamingHttpResponse(_stream(key, series), content_type="application/json")
    if max_results <= 0:
        raise InvalidParameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    max_results = min(max_results, GET_METRIC_HISTORY_MAX_RESULTS)
    token = call.str("page_token")
    if series is None:
        return {"metrics": []}
    points, last = sel.history_page_json(
        series, key, limit=max_results, after=sel.decode_token(token) if token else None
    )
    body = b'{"metrics":' + points
    if last is not None:
        body += b',"next_page_token":' + orjson.dumps(sel.encode_token(last))
    return HttpResponse(body + b"}", content_type="application/json")


@route("GET", "2.0/mlflow/metrics/get-history-bulk-interval")
def get_history_bulk_interval(call: Call) -> dict:
    run_ids = call.str_list("run_ids")
    if not run_ids:
        raise InvalidParameter("Missing value for required parameter 'run_ids'.")
    if len(run_ids) > MAX_RUNS_BULK:
        raise InvalidParameter(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS_BULK} "
            f"run_ids. Received {len(run_ids)} run_ids."
        )
    key = call.str("metric_key", required=True)
    max_results = call.int("max_results", default=MAX_RESULTS_PER_RUN)
    if not 1 <= max_results <= MAX_RESULTS_PER_RUN:
        raise InvalidParameter(f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}.")
    start_step, end_step = call.int("start_step"), call.int("end_step")
    if (start_step is None) != (end_step is None):
        raise InvalidParameter(
            "If either start step or end step are specified, both must be specified."
        )
    if start_step is not None and start_step > end_step:
        raise InvalidParameter(
            "end_step must be greater than start_step. "
            f"Found start_step={start_step} and end_step={end_step}."
        )
    runs = dict(
        Run.objects.filter(workspace=call.workspace, run_uuid__in=run_ids).values_list(
            "pk", "run_uuid"
        )
    )
    missing_ids = set(run_ids) - set(runs.values())
    if missing_ids:
        raise NotFound(f"Run with id={sorted(missing_ids)[0]} not found")
    rows = sel.sampled_history(
        list(runs), key, max_results=max_results, start_step=start_step, end_step=end_step
    )
    order = {run_uuid: i for i, run_uuid in enumerate(run_ids)}
    metrics = [
        {
            "key": key,
            "value": json_float(value, is_nan),
            "timestamp": timestamp,
            "step": step,
            "run_id": runs[run_pk],
        }
        for run_pk, step, timestamp, value, is_nan in rows
    ]
    metrics.sort(key=lambda m: order[m["run_id"]])
    return {"metrics": metrics}


@route("GET", "2.0/mlflow/metrics/get-history-bulk", prefixes=AJAX_ONLY)
def get_history_bulk(call: Call) -> dict:
    """The legacy bulk history mlflow's UI used: `?run_id=…&run_id=…&metric_key=…`, up to
    `max_results` points in all (25,000 at most), by run id, then timestamp and step.
    Ids of no run here are passed over, as mlflow's store does."""
    run_ids = [str(run_id) for run_id in call.list("run_id")]
    if not run_ids:
        raise InvalidParameter("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > MAX_RUN_IDS_HISTORY_BULK:
        raise InvalidParameter(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_RUN_IDS_HISTORY_BULK}"
            f" run_ids. Received {len(run_ids)} run_ids."
        )
    if "metric_key" not in call.data:
        raise InvalidParameter("GetMetricHistoryBulk request must specify a metric_key.")
    key = str(call.list("metric_key")[0])
    max_results = call.int("max_results", default=MAX_HISTORY_BULK_RESULTS)
    if max_results < 0:
        # mlflow server passes it to SQL as it is: all or an error, by database.
        raise InvalidParameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a non-negative integer."
        )
    # PostgreSQL refuses NUL in a text parameter; no run id or key holds one.
    wanted = [run_id for run_id in run_ids if "\x00" not in run_id]
    runs = Run.objects.filter(workspace=call.workspace, run_uuid__in=wanted)
    run_pks = list(runs.values_list("pk", flat=True)) if "\x00" not in key else []
    rows = sel.history_bulk(run_pks, key, limit=min(max_results, MAX_HISTORY_BULK_RESULTS))
    return {
        "metrics": [
            {
                "key": key,
                "value": json_float(value, is_nan),
                "timestamp": timestamp,
                "step": step,
                "run_id": run_uuid,
            }
            for run_uuid, step, timestamp, value, is_nan in rows
        ]
    }
