"""/api/v1 drift monitors of a web service: list, create, get, change, delete, results,
backfill (a job) and the job's state.

Readers see monitors and results; contributors create, change, delete and backfill. A
webhook URL often carries a secret (chat webhooks do), so readers see only its origin.
A CSV baseline is uploaded as multipart/form-data: the file in `baseline_file`, the
other fields as form fields (lists as JSON text), or everything JSON in a `spec` field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.urls import reverse
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.api.common import path_name, workspace_for
from deployments.models import DriftBackfillJob, DriftMonitor, DriftResult, WebService
from deployments.services import drift as svc
from deployments.services.drift_baselines import MAX_UPLOAD_BYTES
from portal.api.access import ws_access
from portal.errors import InvalidParameter, NotFound
from portal.models import Role, Workspace
from tracking.api.common import errors

TAGS = ["drift"]
MAX_RESULTS = 5000


# --- Shapes --------------------------------------------------------------------------------


class BaselineSerializer(serializers.Serializer):
    # Plain text rather than a choice: an enum named "kind" would collide in the schema.
    kind = serializers.CharField(help_text="run_input, dataset or csv.")
    run_id = serializers.CharField(required=False)
    dataset_name = serializers.CharField(required=False)
    artifact_path = serializers.CharField(required=False)
    dataset_id = serializers.CharField(required=False)
    filename = serializers.CharField(required=False)
    columns = serializers.ListField(child=serializers.CharField(), required=False)
    rows = serializers.IntegerField(required=False)


class ResultSerializer(serializers.Serializer):
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    rows = serializers.IntegerField()
    magnitude = serializers.FloatField()
    drifted = serializers.BooleanField()
    features = serializers.DictField(
        child=serializers.DictField(),
        help_text="Per feature: kind (numeric|categorical|missing), score, contribution, "
        "and wasserstein, ks_pvalue, psi (numeric) or js, chi2_pvalue (categorical).",
    )
    alerted_at = serializers.DateTimeField(allow_null=True)
    alert_error = serializers.CharField(allow_blank=True)
    computed_at = serializers.DateTimeField()


class MonitorSerializer(serializers.Serializer):
    name = serializers.CharField()
    service = serializers.CharField()
    baseline = BaselineSerializer()
    features = serializers.ListField(child=serializers.CharField())
    categorical_features = serializers.ListField(child=serializers.CharField())
    frequency = serializers.CharField(help_text="hour, day or week.")
    threshold = serializers.FloatField()
    alert_emails = serializers.ListField(child=serializers.CharField())
    alert_webhook = serializers.CharField(
        allow_blank=True, help_text="The whole URL for contributors; its origin for readers."
    )
    enabled = serializers.BooleanField()
    monitoring_run_id = serializers.CharField(allow_null=True)
    monitoring_experiment = serializers.CharField(allow_null=True)
    last_window_end = serializers.DateTimeField(allow_null=True)
    latest_result = ResultSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_null=True)


class MonitorListSerializer(serializers.Serializer):
    drift_monitors = MonitorSerializer(many=True)


class ResultListSerializer(serializers.Serializer):
    results = ResultSerializer(many=True)


class MonitorCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    baseline = BaselineSerializer(
        required=False,
        help_text="{kind: run_input, run_id, dataset_name?, artifact_path?} or "
        "{kind: dataset, dataset_id}; a CSV is uploaded as the `baseline_file` part instead.",
    )
    baseline_file = serializers.FileField(required=False, help_text="A CSV (multipart only).")
    features = serializers.ListField(child=serializers.CharField(), required=False)
    categorical_features = serializers.ListField(child=serializers.CharField(), required=False)
    frequency = serializers.CharField(required=False, default="day")
    threshold = serializers.FloatField(required=False, default=0.2)
    alert_emails = serializers.ListField(child=serializers.CharField(), required=False)
    alert_webhook = serializers.CharField(required=False, allow_blank=True, default="")
    enabled = serializers.BooleanField(required=False, default=True)


class MonitorUpdateSerializer(serializers.Serializer):
    features = serializers.ListField(child=serializers.CharField(), required=False)
    categorical_features = serializers.ListField(child=serializers.CharField(), required=False)
    frequency = serializers.CharField(required=False)
    threshold = serializers.FloatField(required=False)
    alert_emails = serializers.ListField(child=serializers.CharField(), required=False)
    alert_webhook = serializers.CharField(required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class BackfillSerializer(serializers.Serializer):
    start = serializers.CharField(help_text="ISO 8601 date or time (UTC when no zone).")
    end = serializers.CharField(help_text="ISO 8601 date or time (UTC when no zone).")
    send_alerts = serializers.BooleanField(
        required=False, default=False, help_text="Alert on drifted windows (a `run`)."
    )


class DriftJobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    label = serializers.CharField()
    status = serializers.CharField()
    phase = serializers.CharField(allow_blank=True)
    progress_done = serializers.IntegerField()
    progress_total = serializers.IntegerField()
    percent = serializers.IntegerField()
    is_finished = serializers.BooleanField()
    error = serializers.CharField(allow_blank=True)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    send_alerts = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()


# --- Helpers -------------------------------------------------------------------------------


def _service(workspace: Workspace, name: str) -> WebService:
    service = (
        WebService.objects.filter(workspace=workspace, name=path_name(name, "web service"))
        .select_related("workspace")
        .first()
    )
    if service is None:
        raise NotFound(f"No web service named {name!r} in this workspace.")
    return service


def _read(request: Request, kwargs: dict[str, Any], service: str) -> tuple[WebService, bool]:
    """The service for a read, and whether the caller may write (sees webhooks)."""
    access = ws_access(
        request,
        kwargs["subscription_id"],
        kwargs["resource_group"],
        kwargs["workspace"],
        min_role=Role.READER,
    )
    return _service(access.obj, service), access.can_write


def _write(request: Request, kwargs: dict[str, Any], service: str) -> WebService:
    return _service(workspace_for(request, kwargs, write=True), service)


def _monitor(service: WebService, name: str) -> DriftMonitor:
    return svc.drift_monitor_get(service=service, name=path_name(name, "drift monitor"))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…" if url else ""


def result_data(result: DriftResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "window_start": result.window_start,
        "window_end": result.window_end,
        "rows": result.rows,
        "magnitude": result.magnitude,
        "drifted": result.drifted,
        "features": result.features,
        "alerted_at": result.alerted_at,
        "alert_error": result.alert_error,
        "computed_at": result.computed_at,
    }


def monitor_data(monitor: DriftMonitor, *, can_write: bool) -> dict[str, Any]:
    ref = {k: v for k, v in monitor.baseline_ref.items() if k != "path"}
    run = monitor.monitoring_run
    return {
        "name": monitor.name,
        "service": monitor.service.name,
        "baseline": {"kind": monitor.baseline_kind, **ref},
        "features": monitor.features,
        "categorical_features": monitor.categorical_features,
        "frequency": monitor.frequency,
        "threshold": monitor.threshold,
        "alert_emails": monitor.alert_emails,
        "alert_webhook": monitor.alert_webhook if can_write else _origin(monitor.alert_webhook),
        "enabled": monitor.enabled,
        "monitoring_run_id": run.run_uuid if run else None,
        "monitoring_experiment": run.experiment.name if run else None,
        "last_window_end": monitor.last_window_end,
        "latest_result": result_data(monitor.results.order_by("-window_start").first()),
        "created_at": monitor.created_at,
        "created_by": monitor.created_by.get_username() if monitor.created_by else None,
    }


def _monitor_response(monitor: DriftMonitor, *, can_write: bool, status: int = 200) -> Response:
    return Response(MonitorSerializer(monitor_data(monitor, can_write=can_write)).data, status)


def parse_moment(value: Any, what: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone) or date (its midnight, UTC)."""
    text = str(value or "").strip()
    moment = None
    try:
        moment = parse_datetime(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = datetime(day.year, day.month, day.day)
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidParameter(f"{what} must be an ISO 8601 date or time; got {text[:40]!r}.")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def job_data(request: Request, kwargs: dict[str, Any], job: DriftBackfillJob) -> dict[str, Any]:
    total = max(job.progress_total, 1)
    url = reverse(
        "api-drift-monitor-job",
        kwargs={
            **{k: kwargs[k] for k in ("subscription_id", "resource_group", "workspace")},
            "service": job.monitor.service.name,
            "monitor": job.monitor.name,
            "drift_job_id": job.pk,
        },
    )
    return {
        "id": job.pk,
        "kind": job.kind,
        "label": job.label,
        "status": job.status,
        "phase": job.phase,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "percent": 100
        if job.is_finished and not job.error
        else int(job.progress_done * 100 / total),
        "is_finished": job.is_finished,
        "error": job.error,
        "start": job.start,
        "end": job.end,
        "send_alerts": job.send_alerts,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "url": request.build_absolute_uri(url),
    }


def _create_body(request: Request) -> tuple[dict[str, Any], bytes | None]:
    """The fields of a create, from JSON or from a form (multipart with the CSV)."""
    if request.content_type.startswith("application/json"):
        if not isinstance(request.data, dict):
            raise InvalidParameter("Send a JSON object.")
        fields = dict(request.data)
    else:
        fields = _form_fields(request.data)
    upload = request.FILES.get("baseline_file")
    if upload is not None:
        if upload.size > MAX_UPLOAD_BYTES:
            raise InvalidParameter(
                f"The baseline CSV is {upload.size} bytes; at most {MAX_UPLOAD_BYTES} are accepted."
            )
        fields["baseline"] = {"kind": "csv", "filename": str(upload.name)[:200]}
        return fields, upload.read()
    if not isinstance(fields.get("baseline"), dict):
        raise InvalidParameter(
            "baseline is required: {kind: run_input, run_id} or {kind: dataset, dataset_id}, "
            "or upload a CSV as `baseline_file` (multipart)."
        )
    return fields, None


LIST_FIELDS = ("features", "categorical_features", "alert_emails")


def _form_fields(form: Any) -> dict[str, Any]:
    """Form fields: all of them as JSON in `spec`, or one by one (lists as JSON text or
    comma-separated, the baseline as JSON text)."""
    if "spec" in form:
        try:
            fields = json.loads(form["spec"])
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            raise InvalidParameter("spec must be a JSON object.")
        return fields
    fields: dict[str, Any] = {}
    for key in form:
        if key == "baseline_file":
            continue
        value = form.get(key)
        try:
            if key in LIST_FIELDS and isinstance(value, str):
                items = json.loads(value) if value.startswith("[") else value.split(",")
                value = [str(v).strip() for v in items if str(v).strip()]
            elif key == "baseline" and isinstance(value, str):
                value = json.loads(value)
        except ValueError:
            raise InvalidParameter(f"{key} is not valid JSON.") from None
        fields[key] = value
    return fields


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{what} must be a number.") from None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


# --- Views ---------------------------------------------------------------------------------

SERVICE_ERRORS = errors(401, 403, 404)


class DriftMonitorListView(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="drift_monitors_list",
        tags=TAGS,
        summary="List a service's drift monitors",
        description="Each with its latest window's result.",
        responses={200: MonitorListSerializer, **SERVICE_ERRORS},
    )
    def get(self, request: Request, service: str, **kwargs: Any) -> Response:
        found, can_write = _read(request, kwargs, service)
        monitors = DriftMonitor.objects.filter(service=found).select_related(
            "service", "monitoring_run__experiment", "created_by"
        )
        data = [monitor_data(m, can_write=can_write) for m in monitors]
        return Response(MonitorListSerializer({"drift_monitors": data}).data)

    @extend_schema(
        operation_id="drift_monitors_create",
        tags=TAGS,
        summary="Create a drift monitor",
        description="Needs the contributor role. The baseline is read at once (400 when it "
        "cannot be): the training data a run logged with `mlflow.log_input` plus the data "
        "itself as a CSV/Parquet/JSON artifact of the run (`run_input`), a registered "
        "dataset (`dataset`), or an uploaded CSV (multipart, `baseline_file`, at most "
        "50 MB). `frequency`: hour, day or week; a window drifts when its magnitude (the "
        "mean per-feature score in [0, 1]) reaches `threshold`. Drift figures are also "
        "logged as metrics of a run in the experiment `drift-<service>`.",
        request={
            "application/json": MonitorCreateSerializer,
            "multipart/form-data": MonitorCreateSerializer,
        },
        responses={201: MonitorSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, service: str, **kwargs: Any) -> Response:
        found = _write(request, kwargs, service)
        fields, csv = _create_body(request)
        known = {
            "features",
            "categorical_features",
            "frequency",
            "threshold",
            "alert_emails",
            "alert_webhook",
            "enabled",
        }
        options = {k: v for k, v in fields.items() if k in known}
        if "threshold" in options:
            options["threshold"] = _number(options["threshold"], "threshold")
        if "enabled" in options:
            options["enabled"] = _bool(options["enabled"])
        monitor = svc.drift_monitor_create(
            actor=request.user,
            service=found,
            name=fields.get("name"),
            baseline=fields.get("baseline"),
            baseline_csv=csv,
            **options,
        )
        return _monitor_response(monitor, can_write=True, status=201)


class DriftMonitorDetailView(APIView):
    @extend_schema(
        operation_id="drift_monitors_get",
        tags=TAGS,
        summary="Get a drift monitor",
        responses={200: MonitorSerializer, **SERVICE_ERRORS},
    )
    def get(self, request: Request, service: str, monitor: str, **kwargs: Any) -> Response:
        found, can_write = _read(request, kwargs, service)
        return _monitor_response(_monitor(found, monitor), can_write=can_write)

    @extend_schema(
        operation_id="drift_monitors_update",
        tags=TAGS,
        summary="Change a drift monitor",
        description="Needs the contributor role. Fields left out keep their value; "
        "`enabled` false stops the schedule (backfills still run). The baseline cannot "
        "change: create another monitor.",
        request=MonitorUpdateSerializer,
        responses={200: MonitorSerializer, **errors(400, 401, 403, 404)},
    )
    def patch(self, request: Request, service: str, monitor: str, **kwargs: Any) -> Response:
        found = _monitor(_write(request, kwargs, service), monitor)
        if not isinstance(request.data, dict):
            raise InvalidParameter("Send a JSON object of the fields to change.")
        changes = dict(request.data)
        if "threshold" in changes:
            changes["threshold"] = _number(changes["threshold"], "threshold")
        found = svc.drift_monitor_update(actor=request.user, monitor=found, **changes)
        return _monitor_response(found, can_write=True)

    @extend_schema(
        operation_id="drift_monitors_delete",
        tags=TAGS,
        summary="Delete a drift monitor",
        description="Needs the contributor role. Its results and uploaded baseline go; its "
        "monitoring run stays, finished.",
        responses={204: OpenApiResponse(description="Deleted."), **SERVICE_ERRORS},
    )
    def delete(self, request: Request, service: str, monitor: str, **kwargs: Any) -> Response:
        found = _monitor(_write(request, kwargs, service), monitor)
        svc.drift_monitor_delete(actor=request.user, monitor=found)
        return Response(status=204)


class DriftResultsView(APIView):
    @extend_schema(
        operation_id="drift_monitors_results",
        tags=TAGS,
        summary="A drift monitor's results",
        description=f"The windows computed, oldest first (at most {MAX_RESULTS}: the "
        "newest), within `start` and `end` when given.",
        parameters=[
            OpenApiParameter("start", str, description="ISO 8601; windows starting then or after."),
            OpenApiParameter("end", str, description="ISO 8601; windows ending then or before."),
        ],
        responses={200: ResultListSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, service: str, monitor: str, **kwargs: Any) -> Response:
        found, _ = _read(request, kwargs, service)
        results = DriftResult.objects.filter(monitor=_monitor(found, monitor))
        if request.query_params.get("start"):
            start = parse_moment(request.query_params["start"], "start")
            results = results.filter(window_start__gte=start)
        if request.query_params.get("end"):
            end = parse_moment(request.query_params["end"], "end")
            results = results.filter(window_end__lte=end)
        newest = list(results.order_by("-window_start")[:MAX_RESULTS])
        data = [result_data(r) for r in reversed(newest)]
        return Response(ResultListSerializer({"results": data}).data)


class DriftBackfillView(APIView):
    @extend_schema(
        operation_id="drift_monitors_backfill",
        tags=TAGS,
        summary="Compute a drift monitor's windows over a range (a job)",
        description="Needs the contributor role. Every whole window of [start, end) is "
        "compared with the baseline in the background (at most 2000); poll the job's "
        "`url`. Windows computed before are computed again. `send_alerts` alerts on "
        "drifted windows not alerted before (the SDK's `run`).",
        request=BackfillSerializer,
        responses={202: DriftJobSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, service: str, monitor: str, **kwargs: Any) -> Response:
        found = _monitor(_write(request, kwargs, service), monitor)
        body = BackfillSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = svc.drift_backfill_request(
            actor=request.user,
            monitor=found,
            start=parse_moment(body.validated_data["start"], "start"),
            end=parse_moment(body.validated_data["end"], "end"),
            send_alerts=body.validated_data["send_alerts"],
        )
        return Response(DriftJobSerializer(job_data(request, kwargs, job)).data, status=202)


class DriftJobView(APIView):
    @extend_schema(
        operation_id="drift_monitors_job",
        tags=TAGS,
        summary="A drift job's state (poll it)",
        responses={200: DriftJobSerializer, **SERVICE_ERRORS},
    )
    def get(
        self, request: Request, service: str, monitor: str, drift_job_id: Any, **kwargs: Any
    ) -> Response:
        found, _ = _read(request, kwargs, service)
        job = svc.drift_job_get(monitor=_monitor(found, monitor), job_id=drift_job_id)
        return Response(DriftJobSerializer(job_data(request, kwargs, job)).data)
