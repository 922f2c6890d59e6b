"""Experiments and runs through the SDK: data logged with the plain mlflow client at the
URI the SDK hands out, read back in the reference SDK's shapes."""

from __future__ import annotations

import math
import re
import time

import pytest

from mlstudio import Experiment, Run, RunNotFound, ValidationError

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def ws(studio):
    return studio.workspace("contributor")


@pytest.fixture
def mlflow_client(ws):
    import mlflow

    uri = ws.get_mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri)


def test_experiments_mapping_and_lazy_experiment(ws, mlflow_client):
    import mlflow

    assert "fresh" not in ws.experiments
    with pytest.raises(KeyError):
        ws.experiments["fresh"]
    fresh = Experiment(ws, "fresh")
    assert fresh.id is None and list(fresh.get_runs()) == []  # nothing was created

    mlflow.set_experiment("alpha")
    Experiment.create(ws, "beta", tags={"team": "nlp"})
    names = set(ws.experiments)
    assert {"alpha", "beta"} <= names and "fresh" not in names
    assert len(ws.experiments) == len(names)
    beta = ws.experiments["beta"]
    assert beta.name == "beta" and beta.tags == {"team": "nlp"}
    assert beta.id == mlflow_client.get_experiment_by_name("beta").experiment_id
    assert {name for name, _ in ws.experiments.items()} == names
    # Read-only: the mapping has no item assignment.
    with pytest.raises(TypeError):
        ws.experiments["gamma"] = beta  # type: ignore[index]

    beta.archive()
    assert "beta" not in ws.experiments
    assert [e.name for e in Experiment.list(ws, view_type="ArchivedOnly")] == ["beta"]
    Experiment(ws, "beta").reactivate()
    assert "beta" in ws.experiments
    assert [e.name for e in Experiment.list(ws, search="ALP")] == ["alpha"]


def test_get_runs_pages_newest_first_with_filters(ws, mlflow_client, settings):
    settings.API_PAGE_SIZE = 2
    exp_id = mlflow_client.create_experiment("paged")
    base = int(time.time() * 1000) - 100_000
    ids = []
    for i in range(5):
        run = mlflow_client.create_run(
            exp_id,
            start_time=base + i * 1000,
            tags={"i": str(i), "parity": "odd" if i % 2 else "even"},
        )
        mlflow_client.log_param(run.info.run_id, "lr", str(i / 10))
        mlflow_client.log_metric(run.info.run_id, "loss", 1.0 / (i + 1))
        ids.append(run.info.run_id)
    child = mlflow_client.create_run(
        exp_id, start_time=base + 10_000, tags={"mlflow.parentRunId": ids[0]}
    )

    exp = ws.experiments["paged"]
    runs = list(exp.get_runs())
    assert [r.id for r in runs] == ids[::-1]  # five runs over three pages, newest first
    assert all(isinstance(r, Run) and r.experiment is exp for r in runs)
    with_children = [r.id for r in exp.get_runs(include_children=True)]
    assert with_children == [child.info.run_id, *ids[::-1]]
    assert [r.id for r in exp.get_runs(tags={"parity": "odd"})] == [ids[3], ids[1]]
    assert len(list(exp.get_runs(tags="parity"))) == 5
    assert [r.id for r in exp.get_runs(properties={"lr": "0.2"})] == [ids[2]]
    assert [r.id for r in exp.get_runs(filter="metrics.loss < 0.22")] == [ids[4]]
    oldest_first = exp.get_runs(order_by="attributes.start_time ASC")
    assert [r.id for r in oldest_first] == ids
    # Lazy: taking the first run reads one page only.
    assert next(iter(exp.get_runs())).id == ids[4]
    parent = Run.get(ws, ids[0])
    assert [c.id for c in parent.get_children()] == [child.info.run_id]
    assert parent.get_metrics(recursive=True) == {ids[0]: {"loss": 1.0}, child.info.run_id: {}}


def test_get_metrics_in_the_reference_shape(ws, mlflow_client):
    from mlflow.entities import Metric

    exp_id = mlflow_client.create_experiment("metrics")
    run_id = mlflow_client.create_run(exp_id).info.run_id
    now = int(time.time() * 1000)
    mlflow_client.log_metric(run_id, "alpha", 0.03)
    for step in (2, 0, 1):  # logged out of order, read in step order
        mlflow_client.log_metric(run_id, "loss", 1.0 - step / 10, step=step)
    mlflow_client.log_metric(run_id, "same_step", 1.0)
    mlflow_client.log_metric(run_id, "same_step", 2.0)
    mlflow_client.log_metric(run_id, "weird", float("nan"), step=0)
    mlflow_client.log_metric(run_id, "weird", float("inf"), step=1)
    # More points than one history page holds.
    points = [Metric("long", float(i), now, i) for i in range(1205)]
    for chunk in range(0, len(points), 1000):
        mlflow_client.log_batch(run_id, metrics=points[chunk : chunk + 1000])

    run = Run.get(ws, run_id)
    metrics = run.get_metrics()
    assert metrics["alpha"] == 0.03
    assert metrics["loss"] == [1.0, 0.9, 0.8]
    assert metrics["same_step"] == [1.0, 2.0]
    assert math.isnan(metrics["weird"][0]) and metrics["weird"][1] == math.inf
    assert metrics["long"] == [float(i) for i in range(1205)]
    assert set(metrics) == {"alpha", "loss", "same_step", "weird", "long"}
    assert run.get_metrics(name="loss") == {"loss": [1.0, 0.9, 0.8]}
    assert run.get_metrics(name="missing") == {}


def test_get_details_in_the_reference_shape(ws, mlflow_client):
    import mlflow

    mlflow.set_experiment("details")
    with mlflow.start_run(run_name="first") as active:
        mlflow.log_param("lr", "0.1")
        mlflow.set_tag("team", "vision")
    run = Run.get(ws, active.info.run_id)
    details = run.get_details()
    assert details["runId"] == run.id == active.info.run_id
    assert details["displayName"] == run.name == "first"
    assert details["experimentId"] == active.info.experiment_id
    assert details["status"] == "Completed" == run.get_status()
    assert ISO_UTC.match(details["startTimeUtc"]) and ISO_UTC.match(details["endTimeUtc"])
    assert details["startTimeUtc"] <= details["endTimeUtc"]
    assert details["properties"] == {"lr": "0.1"} == run.get_params()
    assert details["tags"]["team"] == "vision" == run.get_tags()["team"]
    assert details["target"] == "local"
    assert details["submittedBy"] == "carlos"
    assert details["inputDatasets"] == [] and details["logFiles"] == {}
    assert run.experiment.name == "details"


def test_cancel_delete_restore(ws, mlflow_client):
    exp_id = mlflow_client.create_experiment("lifecycle")
    running = mlflow_client.create_run(exp_id).info.run_id
    exp = ws.experiments["lifecycle"]
    run = next(exp.get_runs())
    assert run.id == running and run.get_status() == "Running"
    assert run.get_details()["endTimeUtc"] is None
    run.cancel()
    assert run.status == "Canceled" and run.get_details()["endTimeUtc"] is not None
    assert mlflow_client.get_run(running).info.status == "KILLED"

    finished = mlflow_client.create_run(exp_id)
    mlflow_client.set_terminated(finished.info.run_id)
    with pytest.raises(ValidationError):
        Run(exp, finished.info.run_id).cancel()

    run.delete()
    assert [r.id for r in exp.get_runs()] == [finished.info.run_id]
    run.restore()
    assert {r.id for r in exp.get_runs()} == {running, finished.info.run_id}
    with pytest.raises(RunNotFound):
        Run.get(ws, "0" * 32)


def test_experiment_delete_requests_a_purge_job(ws, mlflow_client, monkeypatch):
    from portal.services import jobs

    queued: list[str] = []  # the Celery message is not sent; test_deletion runs a worker
    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: queued.append(job.pk))
    mlflow_client.create_experiment("purge-me")
    exp = ws.experiments["purge-me"]
    job = exp.delete(wait=False)
    assert job["kind"] == "experiment" and job["status"] == "queued"
    assert job["url"].startswith(ws.server_url + "/api/v1/jobs/")
    assert "purge-me" not in ws.experiments
    assert len(queued) == 1
    # Opened by name after it was archived elsewhere: the same experiment, purged as well.
    archived = mlflow_client.create_experiment("archived-elsewhere")
    mlflow_client.delete_experiment(archived)
    from mlstudio import Experiment

    again = Experiment(ws, "archived-elsewhere")
    assert again.archived
    assert again.delete(wait=False)["kind"] == "experiment"
    assert len(queued) == 2


def test_file_names_and_download(ws, mlflow_client, tmp_path):
    import mlflow

    mlflow.set_experiment("files")
    with mlflow.start_run() as active:
        mlflow.log_text("hello", "outputs/greeting.txt")
        mlflow.log_text("deep", "outputs/nested/deep.txt")
        mlflow.log_dict({"a": 1}, "config.json")
    run = Run.get(ws, active.info.run_id)
    assert run.get_file_names() == [
        "config.json",
        "outputs/greeting.txt",
        "outputs/nested/deep.txt",
    ]
    written = run.download_file("outputs/nested/deep.txt", tmp_path)
    assert written == tmp_path / "deep.txt" and written.read_text() == "deep"
    renamed = run.download_file("outputs/greeting.txt", tmp_path / "hi.txt")
    assert renamed.read_text() == "hello"
