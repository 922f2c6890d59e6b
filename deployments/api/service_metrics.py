"""`GET …/services/<name>/metrics?start=&end=`: a web service's telemetry rollups over a
window (deployments.selectors_monitoring), what the service page charts. Readers may ask:
it holds counts and latencies, no key and no request data."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import selectors_monitoring as monitoring
from deployments.api.common import path_name, workspace_for
from tracking.api.common import errors

TAGS = ["web services"]


class MetricsTotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Answers with status ≥ 400.")
    server_errors = serializers.IntegerField(help_text="Answers with status ≥ 500.")
    error_rate = serializers.FloatField(allow_null=True, help_text="errors / requests.")
    latency_avg_ms = serializers.FloatField(allow_null=True)
    latency_max_ms = serializers.FloatField(allow_null=True)
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p95_ms = serializers.FloatField(allow_null=True)
    latency_p99_ms = serializers.FloatField(allow_null=True)
    bytes_in = serializers.IntegerField()
    bytes_out = serializers.IntegerField()


def _floats(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=serializers.FloatField(allow_null=True), help_text=help_text)


class MetricsSeriesSerializer(serializers.Serializer):
    time = serializers.ListField(
        child=serializers.CharField(), help_text="Each bucket's start (UTC, ISO 8601)."
    )
    requests = serializers.ListField(child=serializers.IntegerField())
    requests_per_minute = _floats("Requests per minute, averaged over the bucket.")
    errors = serializers.ListField(child=serializers.IntegerField())
    error_rate = _floats("errors / requests; null for a bucket without requests.")
    p50_ms = _floats("Median latency from the bucket's summed histogram.")
    p95_ms = _floats("95th percentile latency.")
    p99_ms = _floats("99th percentile latency.")
    latency_avg_ms = _floats("Mean latency.")
    latency_max_ms = _floats("Slowest request.")


class ServiceMetricsSerializer(serializers.Serializer):
    service = serializers.CharField()
    start = serializers.CharField()
    end = serializers.CharField()
    bucket_seconds = serializers.IntegerField(
        help_text="60 up to 6 hours, then 5 minutes, 30 minutes, 2 hours or a day."
    )
    totals = MetricsTotalsSerializer()
    series = MetricsSeriesSerializer()


class ServiceMetricsView(APIView):
    @extend_schema(
        operation_id="services_metrics",
        tags=TAGS,
        summary="A web service's request metrics",
        description="Requests, errors and latency percentiles (p50/p95/p99, read from the "
        "summed latency histograms) per bucket over a window, and the window's totals. "
        "`start`/`end` are ISO 8601 times or epoch seconds (default: the last hour); or "
        f"`range` = {' | '.join(monitoring.RANGES)}. Windows span at most "
        f"{monitoring.MAX_RANGE.days} days.",
        parameters=[
            OpenApiParameter("start", str, description="Window start (ISO 8601 or epoch s)."),
            OpenApiParameter("end", str, description="Window end (default: now)."),
            OpenApiParameter("range", str, enum=list(monitoring.RANGES)),
        ],
        responses={200: ServiceMetricsSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, service: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        found = monitoring.service_by_name(
            workspace=workspace, name=path_name(service, "web service")
        )
        start, end = monitoring.metrics_window(
            request.query_params.get("start"),
            request.query_params.get("end"),
            request.query_params.get("range"),
        )
        data = monitoring.service_metrics(service=found, start=start, end=end)
        return Response(ServiceMetricsSerializer({"service": found.name, **data}).data)
