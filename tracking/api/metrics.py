"""/api/v1 metrics of a run: latest values, raw history (keyset paged), sampled history."""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.pagination import CURSOR_PARAM, decode_cursor, page_size, paged_response
from portal.errors import InvalidParameter
from tracking.api.common import (
    INT64_MAX,
    INT64_MIN,
    errors,
    query_int,
    query_text,
    run_for,
)
from tracking.api.serializers import (
    MetricHistoryPageSerializer,
    MetricSerializer,
    SampledHistorySerializer,
)
from tracking.encoding import json_float
from tracking.models import LatestMetric
from tracking.selectors import metrics as sel

DEFAULT_POINTS = 500
MIN_POINTS, MAX_POINTS = 4, 10_000  # a sampled bucket keeps up to 4 points

KEY_PARAM = OpenApiParameter(
    "key",
    {"type": "string", "minLength": 1},
    required=True,
    description="The metric's key, as logged (`mlflow.log_metric(key, …)`). A key the run "
    "never logged gives no points, not a 404.",
    examples=[OpenApiExample("a metric", value="val_loss")],
)
STEP = {"type": "integer", "format": "int64", "minimum": INT64_MIN, "maximum": INT64_MAX}


def _point(step: int, timestamp: int, value: float, is_nan: bool) -> dict[str, Any]:
    return {"step": step, "timestamp": timestamp, "value": json_float(value, bool(is_nan))}


def _decode_after(cursor: dict[str, Any]) -> tuple | None:
    raw = cursor.get("after")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidParameter("cursor: not a cursor this API returned.")
    step, timestamp, value, is_nan = sel.decode_token(raw)
    # Keys past 64 bits, or NaN, cannot come from a stored point.
    if not (INT64_MIN <= step <= INT64_MAX and INT64_MIN <= timestamp <= INT64_MAX) or (
        math.isnan(value)
    ):
        raise InvalidParameter("cursor: not a cursor this API returned.")
    return step, timestamp, value, is_nan


class LatestMetricsView(APIView):
    @extend_schema(
        operation_id="metrics_latest",
        tags=["metrics"],
        summary="Latest metric values",
        description="The last logged value of each of the run's metrics (highest step, "
        "then latest timestamp), by key. Not paged. Values that are not finite numbers are "
        '"NaN", "Infinity" or "-Infinity", as MLflow writes them.',
        responses={200: MetricSerializer(many=True), **errors(401, 403, 404)},
    )
    def get(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        run = run_for(request, kwargs, run_id)
        rows = (
            LatestMetric.objects.filter(run=run)
            .order_by("key")
            .values_list("key", "value", "step", "timestamp", "is_nan")
        )
        return Response(
            [
                {"key": key, "value": json_float(value, is_nan), "step": step, "timestamp": ts}
                for key, value, step, ts, is_nan in rows
            ]
        )


# A history page may hold as many points as one of the MLflow protocol's (get-history pages
# at 25,000): reading a long series 1,000 at a time would be a hundred round trips.
HISTORY_MAX_PAGE = 25_000
HISTORY_PAGE_SIZE_PARAM = OpenApiParameter(
    "page_size",
    {"type": "integer", "minimum": 1, "maximum": HISTORY_MAX_PAGE},
    required=False,
    description=f"Points per page, 1–{HISTORY_MAX_PAGE:,} (default the API's page size). "
    "Example: `10000`.",
)


class MetricHistoryView(APIView):
    @extend_schema(
        operation_id="metrics_history",
        tags=["metrics"],
        summary="Full history of a metric",
        description="Every logged point of one metric, in step order (then timestamp), "
        "paged: follow `next` until it is `null`. For a chart, the sampled history is "
        "lighter.",
        parameters=[KEY_PARAM, HISTORY_PAGE_SIZE_PARAM, CURSOR_PARAM],
        responses={200: MetricHistoryPageSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        run = run_for(request, kwargs, run_id)
        key = query_text(request, "key", required=True)
        size = page_size(request, maximum=HISTORY_MAX_PAGE)
        after = _decode_after(decode_cursor(request.query_params.get("cursor")))
        series = sel.series_id(run, key)
        if series is None:
            return paged_response([], request, None)
        # One row beyond the page tells whether another page follows.
        rows = sel.history_page(series, limit=size + 1, after=after)
        more = len(rows) > size
        rows = rows[:size]
        return paged_response(
            [_point(*row) for row in rows],
            request,
            {"after": sel.encode_token(rows[-1])} if more else None,
        )


class SampledHistoryView(APIView):
    @extend_schema(
        operation_id="metrics_sampled",
        tags=["metrics"],
        summary="Sampled history of a metric (for charts)",
        description="At most about `max_points` points, in step order. A series that fits "
        "comes back whole; a longer one is cut into buckets of equal step range, each "
        "keeping its first, last, lowest and highest point, so no spike is hidden.",
        parameters=[
            KEY_PARAM,
            OpenApiParameter(
                "max_points",
                {"type": "integer", "minimum": MIN_POINTS, "maximum": MAX_POINTS},
                default=DEFAULT_POINTS,
                description=f"About how many points to return at most ({MIN_POINTS}–"
                f"{MAX_POINTS}, default {DEFAULT_POINTS}); about the width of the chart in "
                "pixels is plenty. Example: `200`.",
            ),
            OpenApiParameter(
                "start_step",
                STEP,
                description="First step to include (default: from the first). With "
                "`end_step`, a zoomed-in range sampled at full `max_points`. Example: `1000`.",
            ),
            OpenApiParameter(
                "end_step",
                STEP,
                description="Last step to include (default: to the last). Not below "
                "`start_step` (400). Example: `2000`.",
            ),
        ],
        responses={200: SampledHistorySerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        run = run_for(request, kwargs, run_id)
        key = query_text(request, "key", required=True)
        points = query_int(
            request, "max_points", default=DEFAULT_POINTS, minimum=MIN_POINTS, maximum=MAX_POINTS
        )
        start = query_int(request, "start_step")
        end = query_int(request, "end_step")
        if start is not None and end is not None and start > end:
            raise InvalidParameter("start_step: must not be greater than end_step.")
        ranged = start is not None or end is not None
        series = sel.chart_history(
            [run.pk],
            key,
            points=points,
            # The selector takes a range only with both ends.
            start_step=(INT64_MIN if start is None else start) if ranged else None,
            end_step=(INT64_MAX if end is None else end) if ranged else None,
        ).get(run.pk)
        rows = series.rows if series is not None else []
        return Response({"key": key, "points": [_point(*row) for row in rows]})
