"""mlstudio.datadrift against a live server, with a real Celery worker computing the
windows: DataDriftDetector.create_from_service → run → results, the alert webhook, the
figures as metrics of the monitoring run, the schedule switch, and the permission cast."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from conftest import producer_on, start_worker, stop_worker
from deployments.tests.drift_support import (
    COLUMNS,
    WebhookReceiver,
    frame,
    make_service,
    seed_samples,
)
from mlstudio.datadrift import DataDriftDetector, DriftMonitorNotFound, baseline_spec
from mlstudio.exceptions import AuthorizationError, ConflictError, ValidationError

DAY1 = datetime(2026, 11, 2, tzinfo=UTC)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_broker(tmp_path):
    """A worker process and this process's producer pointed at its queue folder."""
    data = tmp_path / "data" / "celery"
    for folder in ("queue", "control"):
        (data / folder).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(data / "queue"),
        "data_folder_out": str(data / "queue"),
        "control_folder": str(data / "control"),
        "store_processed": False,
    }
    worker = start_worker(tmp_path, "filesystem")
    try:
        with producer_on("filesystem://", options):
            yield worker
    finally:
        stop_worker(worker)


def test_baseline_forms(tmp_path):
    assert baseline_spec("runs:/abc") == ({"kind": "run_input", "run_id": "abc"}, None)
    assert baseline_spec("runs:/abc/data/train.csv")[0] == {
        "kind": "run_input",
        "run_id": "abc",
        "artifact_path": "data/train.csv",
    }
    assert baseline_spec("datasets:/d-1")[0] == {"kind": "dataset", "dataset_id": "d-1"}
    spec, upload = baseline_spec(frame(1, 3))
    assert spec is None and upload[1].startswith(b"age,bmi,bp,region\n")
    path = tmp_path / "ref.csv"
    path.write_text("a,b\n1,2\n")
    assert baseline_spec(str(path))[1] == ("ref.csv", b"a,b\n1,2\n")
    with pytest.raises(ValidationError):
        baseline_spec(42)


def test_a_detector_runs_on_the_worker_and_its_figures_chart_as_metrics(
    studio, cast, worker_broker, settings, tmp_path
):
    settings.DATA_DIR = tmp_path / "studio-data"
    service = make_service(cast.workspace)
    for day, shift in ((0, 0.0), (1, 1.0), (2, 0.0)):
        seed_samples(service, DAY1 + timedelta(days=day), frame(20 + day, 300, shift=shift))
    ws = studio.workspace("contributor")
    with WebhookReceiver() as hook:
        monitor = DataDriftDetector.create_from_service(
            ws,
            "diabetes-svc",
            "inputs",
            baseline=frame(1, 3000),
            frequency="Day",
            threshold=0.25,
            webhook=hook.url,
            alert_emails=["ops@example.com"],
        )
        assert monitor.baseline["columns"] == COLUMNS and monitor.frequency == "Day"
        with pytest.raises(ConflictError):
            DataDriftDetector.create_from_service(
                ws, "diabetes-svc", "inputs", baseline=frame(1, 10)
            )

        job = monitor.run(DAY1, date(2026, 11, 5))
        final = job.wait_for_completion(timeout=120)
        assert final["status"] == "succeeded", worker_broker.log.read_text()[-3000:]
        assert final["progress_done"] == 3

        results = monitor.get_results()
        assert [r["drifted"] for r in results] == [False, True, False]
        assert results[1]["magnitude"] >= 0.25 and results[1]["alerted_at"]
        assert results[1]["features"]["age"]["ks_pvalue"] < 1e-6
        assert [r["window_start"] for r in monitor.get_results(start=DAY1 + timedelta(days=2))] == [
            "2026-11-04T00:00:00Z"
        ]
        # The worker posted the drifted window to the webhook, and mailed it (the
        # console backend prints it in the worker's log).
        assert [body["window_start"] for body in hook.received] == ["2026-11-03T00:00:00+00:00"]
    worker_log = worker_broker.log.read_text()
    assert "Subject: [ML Studio] Data drift on diabetes-svc/inputs" in worker_log
    assert "To: ops@example.com" in worker_log

    # The figures are metrics of the monitoring run, one point per window.
    import mlflow

    client = mlflow.MlflowClient(ws.get_mlflow_tracking_uri())
    run_id = monitor.refresh().monitoring_run_id
    history = client.get_metric_history(run_id, "drift_magnitude")
    assert [round(m.value, 6) for m in history] == [round(r["magnitude"], 6) for r in results]
    assert len({m.step for m in history}) == 3
    assert client.get_run(run_id).data.metrics.keys() >= {"age.wasserstein", "region.js"}
    assert client.get_experiment(client.get_run(run_id).info.experiment_id).name == (
        "drift-diabetes-svc"
    )

    # The schedule switch; readers read but do not run; unknown names are NotFound.
    assert monitor.disable_schedule().enabled is False
    assert DataDriftDetector.get(ws, "diabetes-svc", "inputs").enabled is False
    assert monitor.enable_schedule().enabled is True
    reader_view = DataDriftDetector.get(studio.workspace("reader"), "diabetes-svc", "inputs")
    assert len(reader_view.get_results()) == 3
    with pytest.raises(AuthorizationError):
        reader_view.backfill(DAY1, DAY1 + timedelta(days=1))
    with pytest.raises(DriftMonitorNotFound):
        DataDriftDetector.get(ws, "diabetes-svc", "nope")
    assert [m.name for m in DataDriftDetector.list(ws, "diabetes-svc")] == ["inputs"]
    monitor.delete()
    assert DataDriftDetector.list(ws, "diabetes-svc") == []
