"""MLflow protocol: metric history, paged and streamed, and the sampled bulk history."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator

import orjson
from django.http import HttpResponse, StreamingHttpResponse
from google.protobuf.json_format import ParseError
from mlflow.protos.service_pb2 import GetMetricHistory
from mlflow.utils.proto_json_utils import parse_dict
from mlflow.utils.search_utils import SearchUtils

from portal.errors import InvalidParameter
from tracking.encoding import json_float
from tracking.mlflow.protocol import (
    AJAX_ONLY,
    SEE_API_DOCS,
    Call,
    as_int,
    invalid_type,
    missing,
    route,
)
from tracking.models import Run
from tracking.selectors import metrics as sel
from tracking.selectors import run_get

MAX_RUNS_BULK = 100
MAX_RESULTS_PER_RUN = 2500
# get-history-bulk, mlflow server's legacy endpoint: its limits.
MAX_RUN_IDS_HISTORY_BULK = 100
MAX_HISTORY_BULK_RESULTS = 25000


def _page_offset(token: str) -> tuple[int, tuple | None]:
    """A get-history page token: where the page starts, as (offset, key of the point
    before it). mlflow's store hands out base64 JSON `{"offset": n}` and reads it with
    SearchUtils (whose words refuse a bad one); ours add "after", the last point's key,
    so a page starts at an index seek however deep it is. A token without it (mlflow's
    own shape) skips `offset` points."""
    try:
        parsed = json.loads(base64.b64decode(token))
    except (ValueError, TypeError):
        parsed = None  # SearchUtils below words the refusal
    if parsed is not None and not isinstance(parsed, dict):
        raise InvalidParameter(f"Invalid page token, parsed value={parsed}")
    offset = SearchUtils.parse_start_offset_from_page_token(token)
    after = parsed.get("after")
    if after is None:
        return max(offset, 0), None
    try:
        step, timestamp, value, is_nan = after
        return max(offset, 0), (int(step), int(timestamp), float(value), bool(is_nan))
    except (ValueError, TypeError):
        raise InvalidParameter(f"Invalid page token, parsed value={parsed}") from None


def _page_token(offset: int, row: tuple) -> str:
    """mlflow's token shape, `{"offset": n}` in base64, plus the last point's key. JSON has
    no infinity, so ±inf and NaN travel as the words float() reads back."""
    step, timestamp, value, is_nan = row
    if not math.isfinite(value):
        value = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    body = json.dumps({"offset": offset, "after": [step, timestamp, value, is_nan]})
    return base64.b64encode(body.encode()).decode()


def _max_results(raw: object) -> int | None:
    """`max_results` as mlflow server reads it: into the request's int32 field, so a
    value that field cannot hold (not a number, past int32) counts as absent."""
    message = GetMetricHistory()
    try:
        parse_dict({"max_results": raw}, message)
    except ParseError:
        return None
    return message.max_results if message.HasField("max_results") else None


def _history(
    key: str,
    series: int | None,
    *,
    offset: int,
    after: tuple | None,
    limit: int | None,
) -> Iterator[bytes]:
    """The answer's JSON, a chunk of points at a time: up to `limit` points (all without
    one) from where the token said, then the next token when more follow."""
    yield b'{"metrics":['
    first, last, count = True, after, 0
    skip = offset if after is None else 0  # a key to seek to makes the offset a count only
    if series is not None and skip < 2**63:
        for rows in sel.history_stream(series, after=after, offset=skip, limit=limit):
            chunk = sel.points_json(key, rows)[1:-1]
            yield chunk if first else b"," + chunk
            first, last, count = False, rows[-1], count + len(rows)
    yield b"]"
    more = (
        limit is not None and count == limit and bool(sel.history_page(series, limit=1, after=last))
    )
    if more:
        token = _page_token(offset + count, last)
        yield b',"next_page_token":' + orjson.dumps(token)
    yield b"}"


@route("GET", "2.0/mlflow/metrics/get-history")
def get_history(call: Call) -> HttpResponse:
    """A metric's history in step order: all of it, streamed (memory stays flat however
    long it is), or a page of `max_results` points and a token for the next. Arguments
    are checked as mlflow server checks them, in its words."""
    run_id = call.str("run_id") or call.str("run_uuid")
    if not run_id:
        raise missing("run_id")
    key = call.str("metric_key", required=True)
    raw = call.data.get("max_results")
    max_results = (
        _max_results(raw[0] if isinstance(raw, list) else raw) if raw is not None else None
    )
    if max_results is not None and max_results <= 0:
        raise InvalidParameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    token = call.str("page_token")
    offset, after = _page_offset(token) if token else (0, None)
    run = run_get(workspace=call.workspace, run_id=run_id)
    series = sel.series_id(run, key)
    body = _history(key, series, offset=offset, after=after, limit=max_results)
    if max_results is not None and max_results <= sel.STREAM_CHUNK:
        return HttpResponse(b"".join(body), content_type="application/json")
    return StreamingHttpResponse(body, content_type="application/json")


def _intlike(call: Call, name: str) -> int | None:
    """An integer argument checked as mlflow server's schema checks it: present but not a
    number (an empty value too) is refused in its words."""
    if name not in call.data:
        return None
    value = call.data[name]
    if isinstance(value, list):
        value = value[0]
    if value == "":
        raise invalid_type(name, value)
    return as_int(value, name)


@route("GET", "2.0/mlflow/metrics/get-history-bulk-interval")
def get_history_bulk_interval(call: Call) -> dict:
    """Up to `max_results` points per run, sampled across the steps, for mlflow's charts.
    Checks, their order and their words are mlflow server's; ids of no run here are
    passed over, as its store does."""
    run_ids = call.str_list("run_ids")
    if not run_ids:
        raise missing("run_ids")
    if len(run_ids) > MAX_RUNS_BULK:
        raise InvalidParameter(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS_BULK} "
            f"run_ids. Received {len(run_ids)} run_ids." + SEE_API_DOCS
        )
    key = call.str("metric_key", required=True)
    start_step, end_step = _intlike(call, "start_step"), _intlike(call, "end_step")
    max_results = _intlike(call, "max_results")
    if max_results is None:
        max_results = MAX_RESULTS_PER_RUN
    if not 1 <= max_results <= MAX_RESULTS_PER_RUN:
        raise InvalidParameter(
            f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}." + SEE_API_DOCS
        )
    if (start_step is None) != (end_step is None):
        raise InvalidParameter(
            "If either start step or end step are specified, both must be specified."
        )
    if start_step is not None and start_step > end_step:
        raise InvalidParameter(
            "end_step must be greater than start_step. "
            f"Found start_step={start_step} and end_step={end_step}."
        )
    # PostgreSQL refuses NUL in a text parameter; no run id holds one.
    wanted = [run_id for run_id in run_ids if "\x00" not in run_id]
    runs = dict(
        Run.objects.filter(workspace=call.workspace, run_uuid__in=wanted).values_list(
            "pk", "run_uuid"
        )
    )
    rows = (
        sel.sampled_history(
            list(runs), key, max_results=max_results, start_step=start_step, end_step=end_step
        )
        if runs and "\x00" not in key
        else []
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
