"""Drift monitors (deployments/services/drift.py): baselines, windows of seeded samples,
results, monitoring-run metrics, alerts by email and webhook, the schedule, backfill jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from deployments.models import DriftBackfillJob, DriftMonitor, DriftResult
from deployments.services import drift as svc
from deployments.services import drift_baselines as baselines
from deployments.tests.drift_support import (
    COLUMNS,
    WebhookReceiver,
    csv_bytes,
    frame,
    make_service,
    seed_samples,
)
from portal.errors import AlreadyExists, InvalidParameter, NotFound
from portal.models import AuditEntry, Job
from portal.services import jobs
from tracking.models import LatestMetric, MetricPoint
from tracking.services.evaluation_datasets import (
    evaluation_dataset_create,
    evaluation_dataset_records_upsert,
)

DAY1 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY2 + timedelta(days=1)


@pytest.fixture
def service(cast, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return make_service(cast.workspace)


def _monitor(cast, service, **options) -> DriftMonitor:
    options.setdefault("alert_emails", ["ops@example.com"])
    return svc.drift_monitor_create(
        actor=cast.contributor,
        service=service,
        name=options.pop("name", "inputs"),
        baseline_csv=csv_bytes(frame(1, 3000)),
        categorical_features=[],
        **options,
    )


# --- Windows -------------------------------------------------------------------------------


def test_windows_are_aligned_in_utc_to_the_frequency():
    moment = datetime(2026, 11, 4, 13, 45, tzinfo=UTC)  # a Wednesday
    assert svc.window_floor("hour", moment) == datetime(2026, 11, 4, 13, tzinfo=UTC)
    assert svc.window_floor("day", moment) == datetime(2026, 11, 4, tzinfo=UTC)
    assert svc.window_floor("week", moment) == DAY1
    days = svc.windows("day", DAY1 + timedelta(hours=5), DAY3 + timedelta(hours=1))
    assert days == [(DAY1, DAY2), (DAY2, DAY3)]
    # A window's index (its metric step) is the same whenever it is computed.
    assert svc.window_index("day", DAY2) == svc.window_index("day", DAY1) + 1
    assert svc.window_index("week", DAY1) == (DAY1 - svc.EPOCH).days // 7
    with pytest.raises(InvalidParameter, match="no whole"):
        svc.check_range("day", DAY1, DAY1.replace(hour=3))
    with pytest.raises(InvalidParameter, match="time zone"):
        svc.check_range("day", DAY1.replace(tzinfo=None), DAY3)


# --- Creating ------------------------------------------------------------------------------


def test_a_csv_baseline_is_stored_read_and_described(cast, service):
    monitor = _monitor(cast, service, features=["age", "bmi", "region"], frequency="Day")
    assert monitor.baseline_kind == "csv"
    assert monitor.baseline_ref["columns"] == COLUMNS
    assert monitor.baseline_ref["rows"] == 3000
    assert monitor.frequency == "day"
    # The CSV is an artifact of the workspace; the monitoring run is a tracking run.
    assert baselines.store_for(cast.workspace).exists(monitor.baseline_ref["path"])
    run = monitor.monitoring_run
    assert run.experiment.name == f"drift-{service.name}" and run.name == "inputs"
    assert AuditEntry.objects.filter(action="create", target_id=str(monitor.pk)).exists()
    with pytest.raises(AlreadyExists):
        _monitor(cast, service)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"name": "bad name!"}, "monitor name"),
        ({"features": ["nope"]}, "no column 'nope'"),
        ({"frequency": "month"}, "frequency"),
        ({"threshold": 0}, "threshold"),
        ({"alert_emails": ["not-an-email"]}, "email"),
        ({"alert_webhook": "ftp://x"}, "http"),
    ],
)
def test_bad_settings_are_refused(cast, service, options, message):
    with pytest.raises(InvalidParameter, match=message):
        _monitor(cast, service, **options)


def test_a_baseline_that_cannot_be_read_is_refused(cast, service):
    with pytest.raises(InvalidParameter, match=r"no rows|could not be read"):
        svc.drift_monitor_create(
            actor=cast.contributor, service=service, name="x", baseline_csv=b"only,a,header\n"
        )
    with pytest.raises(InvalidParameter, match="baseline kind"):
        svc.drift_monitor_create(
            actor=cast.contributor, service=service, name="x", baseline={"kind": "s3"}
        )
    with pytest.raises(NotFound):
        svc.drift_monitor_create(
            actor=cast.contributor,
            service=service,
            name="x",
            baseline={"kind": "run_input", "run_id": "0" * 32},
        )


def test_a_registered_dataset_is_a_baseline(cast, service):
    dataset = evaluation_dataset_create(
        workspace=cast.workspace, name="reference", experiments=[], actor=cast.owner
    )
    rows = frame(4, 300).to_dict(orient="records")
    evaluation_dataset_records_upsert(
        workspace=cast.workspace,
        dataset_id=dataset.dataset_id,
        records=[{"inputs": row} for row in rows],
        actor=cast.owner,
    )
    monitor = svc.drift_monitor_create(
        actor=cast.contributor,
        service=service,
        name="from-dataset",
        baseline={"kind": "dataset", "dataset_id": dataset.dataset_id},
    )
    assert sorted(monitor.baseline_ref["columns"]) == sorted(COLUMNS)
    assert monitor.baseline_ref["rows"] == 300
    seed_samples(service, DAY1, frame(5, 200, shift=1.0))
    result = svc.drift_window_compute(monitor=monitor, start=DAY1, end=DAY2, send_alerts=False)
    assert result.drifted


# --- Windows compared ----------------------------------------------------------------------


def test_unshifted_inputs_do_not_drift_and_figures_are_logged_as_metrics(cast, service):
    monitor = _monitor(cast, service)
    seed_samples(service, DAY1, frame(2, 400))
    result = svc.drift_window_compute(monitor=monitor, start=DAY1, end=DAY2)
    assert result.rows == 400  # the failed request's rows are not counted
    assert not result.drifted and result.magnitude < 0.1
    assert result.features["age"]["kind"] == "numeric"
    assert result.features["region"]["kind"] == "categorical"
    assert result.features["region"]["chi2_pvalue"] > 0.01
    assert len(mail.outbox) == 0 and result.alerted_at is None
    # The monitoring run has the figures, at the window's step and end time.
    run = monitor.monitoring_run
    metrics = {m.key: m for m in LatestMetric.objects.filter(run=run)}
    assert metrics["drift_magnitude"].value == pytest.approx(result.magnitude)
    assert metrics["drift_magnitude"].step == svc.window_index("day", DAY1)
    assert metrics["drift_magnitude"].timestamp == int(DAY2.timestamp() * 1000)
    assert {"age.wasserstein", "age.ks_pvalue", "age.psi", "region.js", "rows"} <= set(metrics)
    assert "region.chi2_pvalue" in metrics and "region.wasserstein" not in metrics


def test_shifted_inputs_drift_and_alert_once_by_email_and_webhook(cast, service):
    with WebhookReceiver() as hook:
        monitor = _monitor(cast, service, alert_webhook=hook.url)
        seed_samples(service, DAY1, frame(2, 400, shift=1.0), named=False)
        result = svc.drift_window_compute(monitor=monitor, start=DAY1, end=DAY2)
        assert result.drifted and result.magnitude > 0.6
        assert sum(f["contribution"] for f in result.features.values()) == pytest.approx(1)
        # An email to the addresses, a POST to the webhook, the window marked alerted.
        assert len(mail.outbox) == 1
        email = mail.outbox[0]
        assert email.to == ["ops@example.com"]
        assert "diabetes-svc" in email.subject and "age" in email.body
        assert len(hook.received) == 1
        body = hook.received[0]
        assert body["service"] == "diabetes-svc" and body["monitor"] == "inputs"
        assert body["drifted"] is True and body["magnitude"] == pytest.approx(result.magnitude)
        assert set(body["features"]) == set(COLUMNS)
        assert result.alerted_at is not None and result.alert_error == ""
        # Computing the window again upserts it and alerts no more.
        again = svc.drift_window_compute(monitor=monitor, start=DAY1, end=DAY2)
        assert again.pk == result.pk and DriftResult.objects.count() == 1
        assert len(mail.outbox) == 1 and len(hook.received) == 1


def test_a_failing_webhook_is_written_on_the_result_not_raised(cast, service):
    with WebhookReceiver(status=500) as hook:
        monitor = _monitor(cast, service, alert_webhook=hook.url, alert_emails=[])
        seed_samples(service, DAY1, frame(2, 100, shift=1.0))
        result = svc.drift_window_compute(monitor=monitor, start=DAY1, end=DAY2)
    assert result.drifted and result.alert_error == "webhook: HTTP 500"
    svc.drift_monitor_update(
        actor=cast.contributor, monitor=monitor, alert_webhook="http://127.0.0.1:9/nothing"
    )
    seed_samples(service, DAY2, frame(3, 100, shift=1.0))
    second = svc.drift_window_compute(monitor=monitor, start=DAY2, end=DAY3)
    assert second.alerted_at is not None and second.alert_error.startswith("webhook: Connection")


def test_a_window_with_too_few_rows_stores_nothing(cast, service):
    monitor = _monitor(cast, service)
    seed_samples(service, DAY1, frame(2, 3))
    assert svc.drift_window_compute(monitor=monitor, start=DAY1, end=DAY2) is None
    assert not DriftResult.objects.exists()


# --- Jobs and the schedule -----------------------------------------------------------------


def test_a_backfill_job_computes_each_window(cast, service, django_capture_on_commit_callbacks):
    monitor = _monitor(cast, service)
    seed_samples(service, DAY1, frame(2, 200))
    seed_samples(service, DAY2, frame(3, 200, shift=1.0))
    job = svc.drift_backfill_request(
        actor=cast.contributor, monitor=monitor, start=DAY1, end=DAY3 + timedelta(hours=3)
    )
    assert job.kind == "drift_backfill" and not job.send_alerts
    done = jobs.job_run(model_label="deployments.driftbackfilljob", job_id=job.pk)
    assert done.status == Job.Status.SUCCEEDED, done.error
    assert done.progress_done == done.progress_total == 2
    results = list(DriftResult.objects.filter(monitor=monitor).order_by("window_start"))
    assert [(r.window_start, r.drifted) for r in results] == [(DAY1, False), (DAY2, True)]
    assert len(mail.outbox) == 0  # a backfill does not alert unless asked
    monitor.refresh_from_db()
    assert monitor.last_window_end == DAY3
    series = LatestMetric.objects.get(run=monitor.monitoring_run, key="drift_magnitude")
    steps = sorted(MetricPoint.objects.filter(series=series).values_list("step", flat=True))
    assert steps == [svc.window_index("day", DAY1), svc.window_index("day", DAY2)]


def test_the_schedule_queues_due_windows_with_alerts(cast, service):
    monitor = _monitor(cast, service)
    DriftMonitor.objects.filter(pk=monitor.pk).update(created_at=DAY1 + timedelta(hours=8))
    other = _monitor(cast, service, name="off", enabled=False)
    seed_samples(service, DAY2, frame(3, 200, shift=1.0))
    now = DAY3 + timedelta(minutes=1)  # within the grace: the second day is not due yet
    queued = svc.drift_schedule_tick(now=now)
    assert [(j.monitor_id, j.start, j.end) for j in queued] == [(monitor.pk, DAY1, DAY2)]
    # While its job is unfinished a monitor is not queued again.
    assert svc.drift_schedule_tick(now=now + timedelta(hours=1)) == []
    jobs.job_run(model_label="deployments.driftbackfilljob", job_id=queued[0].pk)
    later = svc.drift_schedule_tick(now=now + timedelta(hours=1))
    assert [(j.start, j.end, j.send_alerts) for j in later] == [(DAY2, DAY3, True)]
    jobs.job_run(model_label="deployments.driftbackfilljob", job_id=later[0].pk)
    assert DriftResult.objects.get(monitor=monitor).drifted
    assert len(mail.outbox) == 1
    assert not DriftBackfillJob.objects.filter(monitor=other).exists()
    # A monitor gone with its service leaves no cached baseline behind.
    assert list(baselines.cache_dir().glob(f"{monitor.pk}-*.parquet"))
    service.delete()
    svc.drift_schedule_tick(now=now)
    assert not list(baselines.cache_dir().glob("*.parquet"))


def test_deleting_a_monitor_removes_its_baseline_and_finishes_its_run(
    cast, service, django_capture_on_commit_callbacks
):
    monitor = _monitor(cast, service)
    path = monitor.baseline_ref["path"]
    baselines.cached_frame(monitor)
    assert list(baselines.cache_dir().glob(f"{monitor.pk}-*.parquet"))
    with django_capture_on_commit_callbacks(execute=True):
        svc.drift_monitor_delete(actor=cast.contributor, monitor=monitor)
    assert not baselines.store_for(cast.workspace).exists(path)
    assert not list(baselines.cache_dir().glob(f"{monitor.pk}-*.parquet"))
    monitor.monitoring_run.refresh_from_db()
    assert monitor.monitoring_run.status == "FINISHED"


def test_beat_runs_the_schedule_task_by_name(settings):
    from portal.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["drift-monitors"]
    assert entry["task"] == "deployments.drift_schedule"
    assert entry["schedule"] == float(settings.DRIFT_SCHEDULE_SECONDS)
    app.loader.import_default_modules()
    assert "deployments.drift_schedule" in app.tasks


def test_a_refused_upload_leaves_no_file(cast, service):
    with pytest.raises(InvalidParameter, match="threshold"):
        _monitor(cast, service, name="refused", threshold=5)
    path = baselines.csv_path(service.pk, "refused")
    assert not baselines.store_for(cast.workspace).exists(path)
