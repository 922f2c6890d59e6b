"""Monitoring of web services: per-minute telemetry rollups, sampled requests, drift."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from deployments.models.webservices import WebService
from portal.models import Job, Workspace
from tracking.models import Run


class RequestMinute(models.Model):
    """One service's requests in one minute: counts, sizes and a latency histogram
    (fixed log-spaced buckets, deployments.monitoring's), so p50/p95/p99 over any
    window are read from summed buckets."""

    service = models.ForeignKey(
        WebService, on_delete=models.CASCADE, related_name="request_minutes"
    )
    minute = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)  # status >= 400
    server_errors = models.PositiveIntegerField(default=0)  # status >= 500
    latency_sum_ms = models.FloatField(default=0)
    latency_max_ms = models.FloatField(default=0)
    latency_buckets = models.JSONField(default=list)
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["service", "minute"]
        constraints = [
            models.UniqueConstraint(fields=["service", "minute"], name="request_minute_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.minute:%Y-%m-%d %H:%M}"


class RequestSample(models.Model):
    """A sampled scoring request: its inputs (the rows, as records) and outputs, kept for
    the recent-requests table and as the drift monitor's windows."""

    service = models.ForeignKey(
        WebService, on_delete=models.CASCADE, related_name="request_samples"
    )
    time = models.DateTimeField()
    request_id = models.CharField(max_length=64, blank=True)
    status = models.PositiveSmallIntegerField()
    latency_ms = models.FloatField()
    bytes_in = models.PositiveIntegerField(default=0)
    bytes_out = models.PositiveIntegerField(default=0)
    inputs = models.JSONField(null=True, blank=True)  # {"columns": [...], "data": [[...], ...]}
    outputs = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-time"]
        indexes = [models.Index(fields=["service", "time"])]

    def __str__(self) -> str:
        return f"{self.service_id} {self.time:%Y-%m-%d %H:%M:%S} {self.status}"


class DriftMonitor(models.Model):
    """Compares windows of a service's collected inputs with a baseline data set."""

    class BaselineKind(models.TextChoices):
        RUN_INPUT = "run_input", "Training data logged with mlflow.log_input"
        DATASET = "dataset", "Registered dataset"
        CSV = "csv", "Uploaded CSV"

    class Frequency(models.TextChoices):
        HOUR = "hour", "Hourly"
        DAY = "day", "Daily"
        WEEK = "week", "Weekly"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey(WebService, on_delete=models.CASCADE, related_name="drift_monitors")
    name = models.CharField(max_length=64)
    baseline_kind = models.CharField(max_length=16, choices=BaselineKind.choices)
    # What names the baseline: a run id + dataset digest, a dataset id, an artifact path.
    baseline_ref = models.JSONField(default=dict)
    # The baseline's columns and the features monitored ([] = every common column);
    # categorical columns by name.
    features = models.JSONField(default=list)
    categorical_features = models.JSONField(default=list)
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.DAY)
    threshold = models.FloatField(default=0.2)
    alert_emails = models.JSONField(default=list)
    alert_webhook = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    # The tracking run drift figures are logged to as metrics.
    monitoring_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_window_end = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["service", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="drift_monitor_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class DriftResult(models.Model):
    """One window compared with the baseline: the overall magnitude, and per feature the
    statistics and its share of the drift."""

    monitor = models.ForeignKey(DriftMonitor, on_delete=models.CASCADE, related_name="results")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    rows = models.PositiveIntegerField(default=0)
    magnitude = models.FloatField()
    drifted = models.BooleanField(default=False)
    # {feature: {"kind": "numeric"|"categorical", "wasserstein": …, "ks_pvalue": …, "psi": …,
    #            "js": …, "chi2_pvalue": …, "contribution": …}}
    features = models.JSONField(default=dict)
    alerted_at = models.DateTimeField(null=True, blank=True)
    # Why an alert (email, webhook) could not be sent; alerts never fail the computation.
    alert_error = models.CharField(max_length=500, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["monitor", "window_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["monitor", "window_start", "window_end"], name="drift_result_window_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.monitor_id} {self.window_start:%Y-%m-%d %H:%M} {self.magnitude:.3f}"


class DriftBackfillJob(Job):
    """Computing a monitor's windows over a date range (kind "drift_backfill")."""

    monitor = models.ForeignKey(
        DriftMonitor, on_delete=models.CASCADE, related_name="backfill_jobs"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()
    # Whether drifted windows send their alerts: scheduled runs and `run()` do, a backfill
    # of past windows does not unless asked.
    send_alerts = models.BooleanField(default=False)

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["status", "updated_at"])]
