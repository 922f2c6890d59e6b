"""/api/v1 drift monitors over HTTP: baselines from a run logged by the real mlflow client
(log_input + the data as an artifact) and from an uploaded CSV, results, backfill jobs,
and what readers see. The permission cast is in access_drift.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from deployments.models import DriftBackfillJob
from deployments.services import drift as svc
from deployments.tests.drift_support import (
    COLUMNS,
    csv_bytes,
    frame,
    make_service,
    seed_samples,
)
from tracking.tests.conftest import tracking  # noqa: F401  (the fixture)

DAY1 = datetime(2026, 11, 2, tzinfo=UTC)

pytestmark = pytest.mark.django_db(transaction=True)


def _api(tracking, cast, service: str) -> str:  # noqa: F811
    ws = cast.workspace
    return (
        f"{tracking.base}/api/v1/subscriptions/{ws.resource_group.subscription_id}"
        f"/resourceGroups/{ws.resource_group.name}/workspaces/{ws.name}"
        f"/services/{service}/drift-monitors"
    )


def _headers(tracking, who: str) -> dict[str, str]:  # noqa: F811
    return {"Authorization": f"Bearer {tracking.tokens[who]}"}


def _log_training_run(tmp_path, *, source: str | None, folder: str = "data", fmt: str = "csv"):
    """A run as a training script logs it: the frame as an artifact, and as an input."""
    import mlflow

    data = frame(1, 2000)
    name = f"train.{fmt}"
    local = tmp_path / name
    if fmt == "csv":
        data.to_csv(local, index=False)
    else:
        data.to_parquet(local, index=False)
    mlflow.set_experiment("training")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(local), folder)
        # Something else tabular that is not the training data.
        mlflow.log_text("epoch,loss\n1,0.5\n", "metrics/history.csv")
        dataset = mlflow.data.from_pandas(data, source=source, name="train")
        mlflow.log_input(dataset, context="training")
    return run.info.run_id


@pytest.mark.parametrize(
    "source, fmt, baseline",
    [
        # The dataset's source names the artifact: found by its path.
        ("data/train.csv", "csv", {}),
        # A source naming a file elsewhere: found by the file name among the artifacts.
        ("/home/me/project/train.parquet", "parquet", {}),
        # No source: the one tabular artifact with the schema's columns.
        (None, "csv", {}),
        # Said outright.
        (None, "csv", {"artifact_path": "data/train.csv", "dataset_name": "train"}),
    ],
)
def test_a_run_input_baseline_from_the_real_client(
    tracking,  # noqa: F811
    cast,
    tmp_path,
    settings,
    source,
    fmt,
    baseline,
):
    settings.DATA_DIR = tmp_path / "data"
    run_id = _log_training_run(tmp_path, source=source, fmt=fmt)
    make_service(cast.workspace)
    response = requests.post(
        _api(tracking, cast, "diabetes-svc"),
        json={
            "name": "training-data",
            "baseline": {"kind": "run_input", "run_id": run_id, **baseline},
            "categorical_features": ["region"],
            "frequency": "hour",
            "threshold": 0.3,
        },
        headers=_headers(tracking, "contributor"),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["baseline"]["kind"] == "run_input" and body["baseline"]["run_id"] == run_id
    assert body["baseline"]["columns"] == COLUMNS and body["baseline"]["rows"] == 2000
    assert body["monitoring_experiment"] == "drift-diabetes-svc"
    assert body["frequency"] == "hour" and body["threshold"] == 0.3


def test_a_run_without_its_data_is_refused_with_a_hint(tracking, cast, tmp_path):  # noqa: F811
    import mlflow

    mlflow.set_experiment("training")
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(frame(1, 10), name="train"))
    make_service(cast.workspace)
    response = requests.post(
        _api(tracking, cast, "diabetes-svc"),
        json={"name": "m", "baseline": {"kind": "run_input", "run_id": run.info.run_id}},
        headers=_headers(tracking, "contributor"),
        timeout=60,
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "log the frame as a CSV" in response.json()["message"]
    assert str(tmp_path) not in response.text


def test_upload_results_backfill_and_what_readers_see(tracking, cast, tmp_path, settings):  # noqa: F811
    settings.DATA_DIR = tmp_path / "data"
    service = make_service(cast.workspace)
    url = _api(tracking, cast, "diabetes-svc")
    response = requests.post(
        url,
        files={"baseline_file": ("reference.csv", csv_bytes(frame(1, 1000)), "text/csv")},
        data={
            "name": "uploaded",
            "features": "age,bmi,region",
            "alert_emails": '["ops@example.com"]',
            "alert_webhook": "https://hooks.example.com/services/T000/SECRET",
        },
        headers=_headers(tracking, "contributor"),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["baseline"] == {
        "kind": "csv",
        "filename": "reference.csv",
        "columns": COLUMNS,
        "rows": 1000,
    }
    assert created["features"] == ["age", "bmi", "region"]
    assert created["alert_webhook"].endswith("/SECRET")

    # Readers read, but see only the webhook's origin; they cannot create or backfill.
    reader = _headers(tracking, "reader")
    listed = requests.get(url, headers=reader, timeout=30).json()["drift_monitors"]
    assert [m["name"] for m in listed] == ["uploaded"]
    assert listed[0]["alert_webhook"] == "https://hooks.example.com/…"
    denied = requests.post(
        f"{url}/uploaded/backfill",
        json={"start": "2026-11-02", "end": "2026-11-03"},
        headers=reader,
    )
    assert denied.status_code == 403

    # Results of computed windows, filtered by time.
    monitor = svc.drift_monitor_get(service=service, name="uploaded")
    for day, shift in ((0, 0.0), (1, 1.0), (2, 0.0)):
        start = DAY1 + timedelta(days=day)
        seed_samples(service, start, frame(10 + day, 200, shift=shift))
        svc.drift_window_compute(
            monitor=monitor, start=start, end=start + timedelta(days=1), send_alerts=False
        )
    results = requests.get(f"{url}/uploaded/results", headers=reader, timeout=30).json()["results"]
    assert [r["drifted"] for r in results] == [False, True, False]
    assert set(results[1]["features"]) == {"age", "bmi", "region"}
    some = requests.get(
        f"{url}/uploaded/results",
        params={"start": "2026-11-03", "end": "2026-11-04T00:00:00Z"},
        headers=reader,
        timeout=30,
    ).json()["results"]
    assert [r["window_start"] for r in some] == ["2026-11-03T00:00:00Z"]
    bad = requests.get(f"{url}/uploaded/results", params={"start": "yesterday"}, headers=reader)
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["message"]

    # A backfill is a job to poll.
    contributor = _headers(tracking, "contributor")
    started = requests.post(
        f"{url}/uploaded/backfill",
        json={"start": "2026-11-02", "end": "2026-11-05"},
        headers=contributor,
        timeout=30,
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["kind"] == "drift_backfill" and job["status"] == "queued"
    assert job["send_alerts"] is False
    polled = requests.get(job["url"], headers=reader, timeout=30)
    assert polled.status_code == 200 and polled.json()["id"] == job["id"]
    assert DriftBackfillJob.objects.filter(pk=job["id"], monitor=monitor).exists()
    too_long = requests.post(
        f"{url}/uploaded/backfill",
        json={"start": "2026-11-05", "end": "2026-11-02"},
        headers=contributor,
    )
    assert too_long.status_code == 400

    # Change, then delete.
    changed = requests.patch(
        f"{url}/uploaded", json={"enabled": False, "threshold": 0.4}, headers=contributor
    )
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert (
        requests.patch(f"{url}/uploaded", json={"baseline": {}}, headers=contributor).status_code
        == 400
    )
    assert requests.delete(f"{url}/uploaded", headers=contributor).status_code == 204
    assert requests.get(f"{url}/uploaded", headers=reader).status_code == 404


def test_inputs_shipped_by_the_scoring_servers_telemetry_are_the_windows(
    live_server, cast, settings, tmp_path
):
    """The scoring server's own shipper posts sampled requests (the reference's
    `{"data": [[...]]}`, named after the model signature's columns as the server does) to
    the live studio; the monitor of the service scored with shifted rows drifts, the
    other does not."""
    from django.utils import timezone

    from deployments.scoring.inputs import _list_rows
    from deployments.scoring.telemetry import Telemetry
    from deployments.tests.monitoring_support import make_service as make_scored_service

    settings.DATA_DIR = tmp_path / "data"
    baseline = csv_bytes(frame(1, 2000))
    drifted = {}
    for name, shift in (("calm-svc", 0.0), ("shifted-svc", 1.0)):
        service, token = make_scored_service(cast, name=name)
        shipper = Telemetry(
            url=f"{live_server.url}/api/v1/service-telemetry", token=token, sample_rate=1.0
        )
        rows = frame(7, 300, shift=shift).to_numpy().tolist()
        for i in range(0, 300, 10):
            shipper.record(
                200,
                2.0,
                bytes_in=300,
                bytes_out=20,
                request_id=f"{name}-{i}",
                inputs=_list_rows(COLUMNS, rows[i : i + 10]),
                outputs=[1.0] * 10,
                error="",
                sample=True,
            )
        assert shipper.flush() is True
        monitor = svc.drift_monitor_create(
            actor=cast.owner,
            service=service,
            name="inputs",
            baseline_csv=baseline,
            frequency="hour",
        )
        start = svc.window_floor("hour", timezone.now() - timedelta(minutes=1))
        result = svc.drift_window_compute(
            monitor=monitor, start=start, end=start + timedelta(hours=2), send_alerts=False
        )
        assert result.rows == 300
        assert set(result.features) == set(COLUMNS)
        drifted[name] = result.drifted
    assert drifted == {"calm-svc": False, "shifted-svc": True}
