"""Data drift monitors of web services: create/update/delete, compute windows, alert,
backfill, schedule.

A monitor compares windows of the inputs a service's scoring server sampled
(`RequestSample.inputs`, successful requests only) with a baseline
(deployments.services.drift_baselines) using deployments.drift's statistics. Windows are
aligned in UTC to the monitor's frequency: hours, days (from midnight) and weeks (from
Monday). A window's result is upserted into `DriftResult`; its figures are also logged
as metrics of the monitor's **monitoring run** (experiment `drift-<service>`, run named
after the monitor) with step = the window's index since the epoch and timestamp = its
end, so they chart like any run's: `drift_magnitude`, `rows`, and per feature
`<feature>.wasserstein`, `.ks_pvalue`, `.psi` (numeric) or `.js`, `.chi2_pvalue`
(categorical), and `.contribution`.

Computing goes through portal's job machinery, kind "drift_backfill": a backfill over a
date range, `run` over a range (which alerts), and the Celery beat sweep
(`drift_schedule_tick`, every DRIFT_SCHEDULE_SECONDS) that queues each enabled monitor's
ended windows. A drifted window alerts once: an email to `alert_emails` (Django's
send_mail) and a JSON POST to `alert_webhook` (5 s timeout); failures are written on
the result (`alert_error`), never raised.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from deployments import drift as stats
from deployments.models import (
    DriftBackfillJob,
    DriftMonitor,
    DriftResult,
    RequestSample,
    WebService,
)
from deployments.services import drift_alerts
from deployments.services import drift_baselines as baselines
from portal import registry
from portal.errors import AlreadyExists, InvalidParameter, NotFound
from portal.models import Job
from portal.services import audit_record, job_create
from portal.services.jobs import job_heartbeat, job_log
from tracking.models import Experiment, LifecycleStage, Run, RunStatus
from tracking.services.experiments import experiment_create, now_ms
from tracking.services.runs import MetricIn, run_create, run_log_batch

log = logging.getLogger(__name__)

KIND = "drift_backfill"
Frequency = DriftMonitor.Frequency
Kind = DriftMonitor.BaselineKind
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NAME_HELP = "1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit"
FREQUENCIES = {
    Frequency.HOUR: timedelta(hours=1),
    Frequency.DAY: timedelta(days=1),
    Frequency.WEEK: timedelta(weeks=1),
}
# A Monday at midnight: week windows start on Mondays, and every window's index counts
# from here, so a window keeps its step whenever it is computed.
EPOCH = datetime(1969, 12, 29, tzinfo=UTC)
MIN_WINDOW_ROWS = 5  # fewer sampled rows say nothing; no result is stored
MAX_WINDOW_ROWS = 100_000
MAX_WINDOWS = 2000  # of one backfill
MAX_DUE_WINDOWS = 100  # of one scheduled sweep of a monitor (the newest)
# Telemetry arrives in batches every few seconds: a window is due a little after it ends.
WINDOW_GRACE = timedelta(minutes=2)
MAX_FEATURES = 500
MAX_EMAILS = 20
METRIC_NAME = re.compile(r"[^\w\-. /]")
MONITOR_TAG = "mlstudio.drift.monitor"
SERVICE_TAG = "mlstudio.drift.service"


# --- Windows -------------------------------------------------------------------------------


def window_floor(frequency: str, moment: datetime) -> datetime:
    """The start of the window `moment` lies in."""
    moment = moment.astimezone(UTC)
    length = FREQUENCIES[Frequency(frequency)]
    return EPOCH + ((moment - EPOCH) // length) * length


def window_index(frequency: str, start: datetime) -> int:
    return (start.astimezone(UTC) - EPOCH) // FREQUENCIES[Frequency(frequency)]


def windows(frequency: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The whole windows from the one holding `start` to the last one that ends by `end`."""
    length = FREQUENCIES[Frequency(frequency)]
    out = []
    current = window_floor(frequency, start)
    while current + length <= end and len(out) <= MAX_WINDOWS:
        out.append((current, current + length))
        current += length
    return out


def check_range(frequency: str, start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidParameter("start and end must carry a time zone (e.g. 2026-12-01T00:00Z).")
    if end <= start:
        raise InvalidParameter("end must be after start.")
    if not windows(frequency, start, end):
        raise InvalidParameter(
            f"The range holds no whole {Frequency(frequency).label.lower()} window."
        )
    if len(windows(frequency, start, end)) > MAX_WINDOWS:
        raise InvalidParameter(f"At most {MAX_WINDOWS} windows at once; shorten the range.")


# --- Checks --------------------------------------------------------------------------------


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise InvalidParameter(f"A drift monitor name must be {NAME_HELP}; got {str(name)[:80]!r}.")
    return name


def _check_frequency(frequency: Any) -> str:
    value = str(frequency or "").lower()
    if value not in Frequency.values:
        raise InvalidParameter(
            f"frequency must be one of {', '.join(Frequency.values)} (any case); "
            f"got {str(frequency)[:40]!r}."
        )
    return value


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise InvalidParameter("threshold must be a number from 0 to 1.")
    if not (0 < float(threshold) <= 1):
        raise InvalidParameter("threshold must be above 0 and at most 1.")
    return float(threshold)


def _check_emails(emails: Any) -> list[str]:
    if emails is None:
        return []
    if isinstance(emails, str):
        emails = [e.strip() for e in emails.replace(";", ",").split(",") if e.strip()]
    if not isinstance(emails, list | tuple) or len(emails) > MAX_EMAILS:
        raise InvalidParameter(f"alert_emails must be a list of at most {MAX_EMAILS} addresses.")
    for email in emails:
        try:
            validate_email(email)
        except (ValidationError, TypeError):
            raise InvalidParameter(f"Not an email address: {str(email)[:100]!r}.") from None
    return list(emails)


def _check_webhook(url: Any) -> str:
    if url in (None, ""):
        return ""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise InvalidParameter("alert_webhook must be an http(s) URL.") from None
    if len(url) > 500:
        raise InvalidParameter("alert_webhook must be at most 500 characters.")
    return url


def _check_features(value: Any, columns: list[str], what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or len(value) > MAX_FEATURES:
        raise InvalidParameter(f"{what} must be a list of at most {MAX_FEATURES} column names.")
    unknown = [str(v) for v in value if str(v) not in columns]
    if unknown:
        raise InvalidParameter(
            f"{what}: the baseline has no column {', '.join(repr(u) for u in unknown[:5])}; "
            f"it has {', '.join(columns[:20])}{' …' if len(columns) > 20 else ''}."
        )
    return [str(v) for v in value]


def _check_baseline(
    baseline: Any, upload: bytes | None
) -> tuple[str, dict[str, Any], bytes | None]:
    """(kind, ref, CSV bytes to store) from what the caller gave."""
    if upload is not None:
        return Kind.CSV, {"filename": (baseline or {}).get("filename", "baseline.csv")}, upload
    if not isinstance(baseline, dict):
        raise InvalidParameter(
            "baseline must say where the baseline rows are: {'kind': 'run_input', 'run_id': "
            "...}, {'kind': 'dataset', 'dataset_id': ...} or an uploaded CSV."
        )
    kind = baseline.get("kind")
    if kind == Kind.RUN_INPUT:
        if not isinstance(baseline.get("run_id"), str) or not baseline["run_id"]:
            raise InvalidParameter("A run_input baseline needs run_id.")
        ref = {"run_id": baseline["run_id"]}
        for key in ("dataset_name", "artifact_path"):
            if baseline.get(key):
                ref[key] = str(baseline[key])[:500]
        return Kind.RUN_INPUT, ref, None
    if kind == Kind.DATASET:
        if not isinstance(baseline.get("dataset_id"), str) or not baseline["dataset_id"]:
            raise InvalidParameter("A dataset baseline needs dataset_id.")
        return Kind.DATASET, {"dataset_id": baseline["dataset_id"]}, None
    if kind == Kind.CSV:
        raise InvalidParameter("A csv baseline needs the CSV file itself.")
    raise InvalidParameter(
        f"baseline kind must be one of {', '.join(Kind.values)}; got {str(kind)[:40]!r}."
    )


# --- Monitors ------------------------------------------------------------------------------


def drift_monitor_get(*, service: WebService, name: str) -> DriftMonitor:
    monitor = (
        DriftMonitor.objects.filter(service=service, name=name)
        .select_related("service", "workspace", "monitoring_run")
        .first()
        if "\x00" not in name
        else None
    )
    if monitor is None:
        raise NotFound(f"The service '{service.name}' has no drift monitor named '{name}'.")
    return monitor


@transaction.atomic
def drift_monitor_create(
    *,
    actor: AbstractBaseUser | None,
    service: WebService,
    name: str,
    baseline: dict[str, Any] | None = None,
    baseline_csv: bytes | None = None,
    features: list[str] | None = None,
    categorical_features: list[str] | None = None,
    frequency: str = Frequency.DAY,
    threshold: float = stats.DEFAULT_THRESHOLD,
    alert_emails: list[str] | str | None = None,
    alert_webhook: str = "",
    enabled: bool = True,
) -> DriftMonitor:
    """A monitor of `service`; its baseline is read now, so a baseline that cannot be
    read is refused here rather than at the first window."""
    name = _check_name(name)
    if DriftMonitor.objects.filter(service=service, name=name).exists():
        raise AlreadyExists(f"The service '{service.name}' has a drift monitor '{name}' already.")
    kind, ref, upload = _check_baseline(baseline, baseline_csv)
    workspace = service.workspace
    if upload is not None:
        frame = baselines.csv_frame(upload)
        ref["path"] = baselines.csv_path(service.pk, name)
    else:
        frame = baselines.load(workspace, kind, ref)
    columns = [str(c) for c in frame.columns]
    ref.update(columns=columns[:MAX_FEATURES], rows=len(frame))
    monitor = DriftMonitor(
        workspace=workspace,
        service=service,
        name=name,
        baseline_kind=kind,
        baseline_ref=ref,
        features=_check_features(features, columns, "features"),
        categorical_features=_check_features(categorical_features, columns, "categorical_features"),
        frequency=_check_frequency(frequency),
        threshold=_check_threshold(threshold),
        alert_emails=_check_emails(alert_emails),
        alert_webhook=_check_webhook(alert_webhook),
        enabled=bool(enabled),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    if upload is not None:  # stored once everything else was found right
        baselines.csv_store(workspace, ref["path"], upload)
    try:
        with transaction.atomic():
            monitor.save()
    except IntegrityError:
        raise AlreadyExists(
            f"The service '{service.name}' has a drift monitor '{name}' already."
        ) from None
    monitor.monitoring_run = _new_monitoring_run(monitor, actor)
    monitor.save(update_fields=["monitoring_run"])
    audit_record(
        actor=actor,
        action="create",
        target=monitor,
        changes={"service": service.name, "baseline": kind},
    )
    return monitor


UPDATABLE = (
    "features",
    "categorical_features",
    "frequency",
    "threshold",
    "alert_emails",
    "alert_webhook",
    "enabled",
)


@transaction.atomic
def drift_monitor_update(
    *, actor: AbstractBaseUser | None, monitor: DriftMonitor, **changes: Any
) -> DriftMonitor:
    """Change the settings named (UPDATABLE); the baseline stays: make a new monitor for
    another baseline."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidParameter(f"Cannot change {', '.join(sorted(unknown))} of a drift monitor.")
    columns = list(monitor.baseline_ref.get("columns") or [])
    checks = {
        "features": lambda v: _check_features(v, columns, "features"),
        "categorical_features": lambda v: _check_features(v, columns, "categorical_features"),
        "frequency": _check_frequency,
        "threshold": _check_threshold,
        "alert_emails": _check_emails,
        "alert_webhook": _check_webhook,
        "enabled": bool,
    }
    diff = {}
    for field, value in changes.items():
        value = checks[field](value)
        if getattr(monitor, field) != value:
            diff[field] = [getattr(monitor, field), value]
            setattr(monitor, field, value)
    if diff:
        monitor.save(update_fields=list(diff))
        audit_record(actor=actor, action="update", target=monitor, changes=diff)
    return monitor


@transaction.atomic
def drift_monitor_delete(*, actor: AbstractBaseUser | None, monitor: DriftMonitor) -> None:
    """Remove the monitor, its results and its uploaded baseline; its monitoring run
    stays (it is tracking data) and is marked finished."""
    audit_record(actor=actor, action="delete", target=monitor)
    if monitor.baseline_kind == Kind.CSV and monitor.baseline_ref.get("path"):
        path = monitor.baseline_ref["path"]
        workspace = monitor.workspace
        transaction.on_commit(lambda: baselines.csv_delete(workspace, path))
    if monitor.monitoring_run_id:
        Run.objects.filter(pk=monitor.monitoring_run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FINISHED, end_time=now_ms()
        )
    pk = monitor.pk
    monitor.delete()
    transaction.on_commit(lambda: baselines.cache_forget(pk))


# --- The monitoring run --------------------------------------------------------------------


def _experiment_name(monitor: DriftMonitor) -> str:
    return f"drift-{monitor.service.name}"


def _new_monitoring_run(monitor: DriftMonitor, actor: AbstractBaseUser | None) -> Run:
    workspace = monitor.workspace
    name = _experiment_name(monitor)
    experiment = Experiment.objects.filter(
        workspace=workspace, name=name, lifecycle_stage=LifecycleStage.ACTIVE
    ).first()
    if experiment is None:
        experiment = experiment_create(workspace=workspace, name=name, actor=actor)
    return run_create(
        workspace=workspace,
        experiment=experiment,
        user_id=actor.get_username() if getattr(actor, "is_authenticated", False) else "",
        start_time=None,
        run_name=monitor.name,
        tags=[(MONITOR_TAG, monitor.name), (SERVICE_TAG, monitor.service.name)],
    )


def monitoring_run(monitor: DriftMonitor) -> Run:
    """The run drift figures go to; a new one when it was deleted."""
    run = monitor.monitoring_run
    if run is not None:
        run.refresh_from_db()
    if run is None or run.lifecycle_stage != LifecycleStage.ACTIVE:
        run = _new_monitoring_run(monitor, None)
        DriftMonitor.objects.filter(pk=monitor.pk).update(monitoring_run=run)
        monitor.monitoring_run = run
    return run


def metric_key(feature: str, statistic: str) -> str:
    return f"{METRIC_NAME.sub('_', feature)[:200]}.{statistic}"


def _metrics(result: DriftResult, step: int) -> list[MetricIn]:
    timestamp = int(result.window_end.timestamp() * 1000)
    points = [
        MetricIn("drift_magnitude", result.magnitude, False, timestamp, step),
        MetricIn("rows", float(result.rows), False, timestamp, step),
    ]
    for feature, figures in result.features.items():
        for statistic in ("wasserstein", "ks_pvalue", "psi", "js", "chi2_pvalue", "contribution"):
            value = figures.get(statistic)
            if isinstance(value, int | float) and math.isfinite(value):
                key = metric_key(feature, statistic)
                points.append(MetricIn(key, float(value), False, timestamp, step))
    return points


def _log_metrics(monitor: DriftMonitor, result: DriftResult) -> None:
    run = monitoring_run(monitor)
    points = _metrics(result, window_index(monitor.frequency, result.window_start))
    for first in range(0, len(points), 1000):  # mlflow's batch limit
        run_log_batch(run=run, metrics=points[first : first + 1000])


# --- One window ----------------------------------------------------------------------------


def window_frame(monitor: DriftMonitor, start: datetime, end: datetime) -> pd.DataFrame:
    """The sampled inputs of successful requests in [start, end), at most
    MAX_WINDOW_ROWS rows, named as the baseline's columns when they carry no names."""
    samples = (
        RequestSample.objects.filter(
            service_id=monitor.service_id,
            time__gte=start,
            time__lt=end,
            status__lt=400,
            inputs__isnull=False,
        )
        .order_by("time")
        .values_list("inputs", flat=True)
    )
    picked, rows = [], 0
    for inputs in samples.iterator(chunk_size=500):
        if not isinstance(inputs, dict) or not isinstance(inputs.get("data"), list):
            continue
        picked.append(inputs)
        rows += len(inputs["data"])
        if rows >= MAX_WINDOW_ROWS:
            break
    frame = stats.frame_from_inputs(picked, columns=monitor.baseline_ref.get("columns"))
    return frame.iloc[:MAX_WINDOW_ROWS]


def drift_window_compute(
    *,
    monitor: DriftMonitor,
    start: datetime,
    end: datetime,
    baseline: pd.DataFrame | None = None,
    send_alerts: bool = True,
) -> DriftResult | None:
    """Compare one window with the baseline, store and log the result, alert when it
    drifted (once). None when the window has fewer than MIN_WINDOW_ROWS rows."""
    window = window_frame(monitor, start, end)
    if len(window) < MIN_WINDOW_ROWS:
        return None
    if baseline is None:
        baseline = baselines.cached_frame(monitor)
    report = stats.compare(
        baseline,
        window,
        features=monitor.features or None,
        categorical=monitor.categorical_features,
        threshold=monitor.threshold,
    )
    figures = report.features_dict()
    for missing in report.missing:
        figures[missing] = {"kind": "missing", "score": None, "contribution": 0.0}
    with transaction.atomic():
        result, _ = DriftResult.objects.update_or_create(
            monitor=monitor,
            window_start=start,
            window_end=end,
            defaults={
                "rows": report.rows,
                "magnitude": report.magnitude,
                "drifted": report.drifted,
                "features": figures,
                "computed_at": timezone.now(),
            },
        )
        _log_metrics(monitor, result)
    if result.drifted and send_alerts:
        drift_alerts.drift_alert(monitor=monitor, result=result)
    return result


# --- Backfill jobs -------------------------------------------------------------------------


@transaction.atomic
def drift_backfill_request(
    *,
    actor: AbstractBaseUser | None,
    monitor: DriftMonitor,
    start: datetime,
    end: datetime,
    send_alerts: bool = False,
) -> DriftBackfillJob:
    """A job computing every whole window of [start, end) (`run` is one with alerts)."""
    check_range(monitor.frequency, start, end)
    job = job_create(
        DriftBackfillJob,
        kind=KIND,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        label=f"{monitor.service.name} › {monitor.name} "
        f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}",
        monitor=monitor,
        workspace=monitor.workspace,
        start=start,
        end=end,
        send_alerts=send_alerts,
    )
    if actor is not None:
        audit_record(
            actor=actor,
            action="drift_backfill",
            target=monitor,
            changes={"start": start.isoformat(), "end": end.isoformat()},
        )
    return job


def _job_windows(job: DriftBackfillJob) -> list[tuple[datetime, datetime]]:
    return windows(job.monitor.frequency, job.start, job.end)


def backfill_run(job: Job, progress: registry.Progress) -> None:
    """The job: each window in turn (idempotent: results are upserted, metrics points
    deduplicated, alerts claimed once)."""
    assert isinstance(job, DriftBackfillJob)
    monitor = DriftMonitor.objects.select_related("service", "workspace", "monitoring_run").get(
        pk=job.monitor_id
    )
    progress(0, "Reading the baseline")
    baseline = baselines.cached_frame(monitor)
    computed = 0
    for start, end in _job_windows(job):
        job_heartbeat(job)
        result = drift_window_compute(
            monitor=monitor, start=start, end=end, baseline=baseline, send_alerts=job.send_alerts
        )
        # The scheduled sweep carries on after the newest window computed in order.
        DriftMonitor.objects.filter(
            Q(last_window_end__isnull=True)
            | Q(last_window_end__gte=start, last_window_end__lt=end),
            pk=monitor.pk,
        ).update(last_window_end=end)
        if result is not None:
            computed += 1
        progress(1, f"Window {start:%Y-%m-%d %H:%M}")
    job_log(job, f"{computed} window(s) with data compared")


def drift_job_get(*, monitor: DriftMonitor, job_id: Any) -> DriftBackfillJob:
    job = DriftBackfillJob.objects.filter(monitor=monitor, pk=job_id).first()
    if job is None:
        raise NotFound("This drift monitor has no job with that id.")
    return job


# --- The schedule --------------------------------------------------------------------------


@dataclass
class Due:
    monitor: DriftMonitor
    start: datetime
    end: datetime


def drift_due(*, now: datetime | None = None) -> list[Due]:
    """Each enabled monitor's ended windows not computed yet (the newest
    MAX_DUE_WINDOWS), skipping monitors with a job under way."""
    now = now or timezone.now()
    busy = DriftBackfillJob.objects.filter(status__in=Job.UNFINISHED).values("monitor_id")
    due = []
    monitors = (
        DriftMonitor.objects.filter(enabled=True)
        .exclude(pk__in=busy)
        .exclude(service__state=WebService.State.DELETING)
        .select_related("service", "workspace")
    )
    for monitor in monitors:
        length = FREQUENCIES[Frequency(monitor.frequency)]
        end = window_floor(monitor.frequency, now - WINDOW_GRACE)
        start = monitor.last_window_end or window_floor(monitor.frequency, monitor.created_at)
        start = max(start, end - MAX_DUE_WINDOWS * length)
        if start < end:
            due.append(Due(monitor, start, end))
    return due


def drift_schedule_tick(*, now: datetime | None = None) -> list[DriftBackfillJob]:
    """Celery beat: queue a job (with alerts) for every monitor with ended windows, and
    drop this host's cached baselines of monitors that are gone (a deleted service takes
    its monitors with it)."""
    baselines.cache_prune(set(DriftMonitor.objects.values_list("pk", flat=True)))
    jobs = []
    for item in drift_due(now=now):
        try:
            jobs.append(
                drift_backfill_request(
                    actor=None,
                    monitor=item.monitor,
                    start=item.start,
                    end=item.end,
                    send_alerts=True,
                )
            )
        except Exception:  # one monitor's trouble must not stop the others
            log.exception("Could not schedule drift monitor %s", item.monitor.pk)
    return jobs


# --- Registration --------------------------------------------------------------------------


def register() -> None:
    registry.register_job_kind(
        registry.JobKind(
            name=KIND,
            label="Drift backfill",
            model=DriftBackfillJob,
            run=backfill_run,
            units=lambda job: max(len(_job_windows(job)), 1),
            done_phase="Completed",
        )
    )
