"""REST API v1, tracking half: what the experiment and run endpoints do — filters and
MLflow search, paging through next links, NaN metrics, updates, deletes, purge, cancel."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchUtils

from portal.models import AuditEntry
from portal.tests.api import api, assert_error
from tracking.artifacts import artifact_uri_path, store_for
from tracking.models import Experiment, LifecycleStage, Run
from tracking.services.experiments import experiment_delete, now_ms
from tracking.services.runs import run_delete
from tracking.tests.api_v1 import isolate, log_points, pages, run_names, url, write_artifact
from tracking.tests.factories import make_experiment, make_run


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path) -> None:
    isolate(settings, tmp_path)


# --- Experiments ---------------------------------------------------------------------------


def test_experiment_create_returns_the_experiment(cast) -> None:
    response = api(cast).post(
        url(cast, "api-experiments"),
        {"name": "churn", "tags": {"team": "risk", "empty": ""}},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "churn" and body["tags"] == {"team": "risk", "empty": ""}
    assert body["lifecycle_stage"] == "active"
    assert body["experiment_id"] == str(int(body["experiment_id"]))
    assert body["artifact_location"] == f"mlflow-artifacts:/{body['experiment_id']}"
    assert body["creation_time"] <= now_ms() and body["last_update_time"] >= body["creation_time"]
    assert AuditEntry.objects.filter(action="create", target_repr="churn").exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": 5}, {"name": "x", "tags": ["a"]}, {"name": "x", "tags": {"k": 1}}],
)
def test_experiment_create_refuses_bad_bodies(cast, body) -> None:
    response = api(cast).post(url(cast, "api-experiments"), body, content_type="application/json")
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_experiment_create_refuses_a_taken_name_and_bad_json(cast) -> None:
    make_experiment(cast.workspace, "taken")
    client = api(cast)
    path = url(cast, "api-experiments")
    response = client.post(path, {"name": "taken"}, content_type="application/json")
    assert_error(response, 400, "RESOURCE_ALREADY_EXISTS")
    assert_error(
        client.post(path, "{nope", content_type="application/json"), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(
        client.post(path, "[1]", content_type="application/json"), 400, "INVALID_PARAMETER_VALUE"
    )


def test_experiment_list_filters(cast) -> None:
    for name in ("Churn model", "churn-v2", "fraud"):
        make_experiment(cast.workspace, name)
    experiment_delete(experiment=make_experiment(cast.workspace, "old churn"), actor=None)
    client = api(cast, "reader")

    def names(**query) -> list[str]:
        response = client.get(url(cast, "api-experiments", query))
        assert response.status_code == 200, response.content
        return sorted(e["name"] for e in response.json()["results"])

    # Every workspace has its Default experiment (MLflow's id 0) from the start.
    assert names() == ["Churn model", "Default", "churn-v2", "fraud"]
    assert names(search="CHURN") == ["Churn model", "churn-v2"]
    assert names(name="churn-v2") == ["churn-v2"]
    assert names(name="churn") == []
    assert names(view="deleted") == ["old churn"]
    assert names(view="all", search="churn") == ["Churn model", "churn-v2", "old churn"]
    bads = ({"view": "gone"}, {"view": ""}, {"page_size": "0"}, {"page_size": "1001"})
    for bad in (*bads, {"page_size": "x"}):
        assert_error(client.get(url(cast, "api-experiments", bad)), 400, "INVALID_PARAMETER_VALUE")
    for cursor in ("!!!", "bm9wZQ", "\U000bb2eb{", "cD1hYmM="):  # the last: a position, no id
        response = client.get(url(cast, "api-experiments", {"cursor": cursor}))
        assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_experiment_pages_follow_next_links(cast) -> None:
    default = Experiment.objects.get(workspace=cast.workspace, is_default=True).pk
    made = [default] + [make_experiment(cast.workspace, f"e{i}").pk for i in range(6)]
    got = pages(api(cast), url(cast, "api-experiments", {"page_size": 3}))
    assert [len(page) for page in got] == [3, 3, 1]
    # /api/v1 knows the Default by its own id, as its pages do.
    assert [int(e["experiment_id"]) for page in got for e in page] == made[::-1]
    client = api(cast)
    second = client.get(client.get(url(cast, "api-experiments", {"page_size": 3})).json()["next"])
    back = client.get(second.json()["previous"]).json()["results"]
    assert back == got[0]  # `previous` cursors are accepted too


def test_experiment_order_by_pages_through_in_that_order(cast) -> None:
    for name in ("beta", "Alpha", "delta", "gamma", "alpha-2"):
        make_experiment(cast.workspace, name)
    client = api(cast, "reader")

    def listed(order: str) -> list[str]:
        got = pages(client, url(cast, "api-experiments", {"order_by": order, "page_size": 2}))
        return [e["name"] for page in got for e in page]

    by_name = listed("name")
    assert by_name == sorted(by_name) and len(by_name) == 6  # with the Default
    assert listed("-name") == by_name[::-1]
    assert listed("created") == ["Default", "beta", "Alpha", "delta", "gamma", "alpha-2"]
    assert listed("-created") == ["alpha-2", "gamma", "delta", "Alpha", "beta", "Default"]
    assert sorted(listed("last_update")) == sorted(by_name)
    bad = client.get(url(cast, "api-experiments", {"order_by": "size"}))
    assert "order_by" in assert_error(bad, 400, "INVALID_PARAMETER_VALUE")["message"]


def test_experiment_rename_delete_restore(cast) -> None:
    experiment = make_experiment(cast.workspace, "a")
    run = make_run(experiment, "r")
    make_experiment(cast.workspace, "taken")
    client = api(cast, "contributor")
    path = url(cast, "api-experiment", experiment_id=experiment.pk)

    response = client.patch(path, {"name": "b"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["name"] == "b"
    assert AuditEntry.objects.filter(action="rename", changes={"name": ["a", "b"]}).exists()
    assert client.patch(path, {}, content_type="application/json").json()["name"] == "b"
    response = client.patch(path, {"name": "taken"}, content_type="application/json")
    assert_error(response, 400, "RESOURCE_ALREADY_EXISTS")

    response = client.delete(path)
    assert response.status_code == 200 and response.json()["lifecycle_stage"] == "deleted"
    run.refresh_from_db()
    assert run.lifecycle_stage == LifecycleStage.DELETED
    assert client.get(path).json()["lifecycle_stage"] == "deleted"  # still readable
    response = client.patch(path, {"name": "c"}, content_type="application/json")
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")  # deleted: no rename

    response = client.post(url(cast, "api-experiment-restore", experiment_id=experiment.pk))
    assert response.status_code == 200 and response.json()["lifecycle_stage"] == "active"
    run.refresh_from_db()
    assert run.lifecycle_stage == LifecycleStage.ACTIVE
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"delete", "restore"} <= actions


def test_experiment_purge_returns_a_job(cast) -> None:
    experiment = make_experiment(cast.workspace, "a")
    client = api(cast, "contributor")
    purge = url(cast, "api-experiment-purge", experiment_id=experiment.pk)
    assert_error(client.post(purge), 400, "INVALID_PARAMETER_VALUE")  # still active

    experiment_delete(experiment=experiment, actor=None)
    response = client.post(purge)
    assert response.status_code == 202
    job = response.json()
    assert job["kind"] == "experiment" and job["status"] == "queued"
    assert job["url"].startswith("http://testserver/") and job["is_finished"] is False
    assert {"id", "label", "phase", "percent", "page_url", "progress_total"} <= set(job)
    assert client.post(purge).json()["id"] == job["id"]  # asking again: the same job


@pytest.mark.parametrize("experiment_id", ["999999", "abc", "0", "-1", "9" * 30])
def test_unknown_experiment_ids_are_404(cast, experiment_id) -> None:
    response = api(cast).get(url(cast, "api-experiment", experiment_id=experiment_id))
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


# --- Runs ----------------------------------------------------------------------------------


@pytest.fixture
def scored(cast) -> dict[str, Run]:
    """Four runs in two experiments, with an accuracy each (one missing)."""
    a = make_experiment(cast.workspace, "a")
    b = make_experiment(cast.workspace, "b")
    return {
        "low": make_run(a, "low", metrics={"acc": 0.2}, params={"model": "lr"}, start_time=1000),
        "mid": make_run(a, "mid", metrics={"acc": 0.5}, params={"model": "rf"}, start_time=2000),
        "high": make_run(b, "high", metrics={"acc": 0.9}, params={"model": "rf"}, start_time=3000),
        "none": make_run(b, "none", params={"model": "lr"}, start_time=4000),
    }


def test_runs_search_across_experiments_with_filter_and_order(cast, scored) -> None:
    client = api(cast, "reader")
    runs = url(cast, "api-runs")
    assert run_names(client.get(runs)) == ["none", "high", "mid", "low"]  # newest first
    query = {"filter": "metrics.acc > 0.3", "order_by": "metrics.acc ASC"}
    assert run_names(client.get(url(cast, "api-runs", query))) == ["mid", "high"]
    query = {"filter": "params.model = 'rf'", "order_by": ["metrics.acc DESC"]}
    assert run_names(client.get(url(cast, "api-runs", query))) == ["high", "mid"]
    query = {"order_by": ["params.model ASC", "attributes.start_time ASC"]}
    assert run_names(client.get(url(cast, "api-runs", query))) == ["low", "none", "mid", "high"]
    a = scored["low"].experiment_id
    query = {"experiment_id": [a], "order_by": "metrics.acc DESC"}
    assert run_names(client.get(url(cast, "api-runs", query))) == ["mid", "low"]
    both = {"experiment_id": [a, scored["high"].experiment_id]}
    assert len(run_names(client.get(url(cast, "api-runs", both)))) == 4


@pytest.mark.parametrize(
    "query",
    [
        {"filter": "metrics.acc >> 1"},
        {"filter": "nonsense"},
        {"order_by": "metrics.acc SIDEWAYS"},
        {"filter": "attributes.nope = 'x'"},
    ],
)
def test_runs_bad_search_is_400_with_mlflows_message(cast, scored, query) -> None:
    body = assert_error(api(cast).get(url(cast, "api-runs", query)), 400, "INVALID_PARAMETER_VALUE")
    try:
        if "filter" in query:
            SearchUtils.parse_search_filter(query["filter"])
        else:
            SearchUtils.parse_order_by_for_search_runs(query["order_by"])
    except MlflowException as exc:
        assert body["message"] == exc.message


@pytest.mark.parametrize(
    "query",
    [
        {"view": "sideways"},
        {"page_size": "0"},
        {"page_size": "100000"},
        {"page_size": "1.5"},
        {"cursor": "!!!"},
        {"cursor": "eyJ0b2tlbiI6IDV9"},  # {"token": 5}
        {"cursor": "eyJ0b2tlbiI6ICJ4In0"},  # {"token": "x"}
        {"filter": "params.a = 'x\x00'"},
    ],
)
def test_runs_bad_parameters_are_400(cast, scored, query) -> None:
    assert_error(api(cast).get(url(cast, "api-runs", query)), 400, "INVALID_PARAMETER_VALUE")


def test_runs_unknown_or_foreign_experiment_ids_are_404(cast, scored) -> None:
    foreign = make_experiment(cast.other_workspace, "theirs")
    for experiment_id in ("abc", "424242", str(foreign.pk)):
        response = api(cast).get(url(cast, "api-runs", {"experiment_id": experiment_id}))
        assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_runs_view_deleted_and_all(cast, scored) -> None:
    run_delete(run=scored["mid"], actor=None)
    client = api(cast)
    assert run_names(client.get(url(cast, "api-runs", {"view": "deleted"}))) == ["mid"]
    assert len(run_names(client.get(url(cast, "api-runs", {"view": "all"})))) == 4
    assert "mid" not in run_names(client.get(url(cast, "api-runs")))


def test_runs_pages_follow_next_links(cast) -> None:
    experiment = make_experiment(cast.workspace, "many")
    for i in range(7):
        make_run(experiment, f"r{i}", metrics={"acc": i / 10}, start_time=1000 + i)
    query = {"page_size": 3, "order_by": "metrics.acc ASC", "filter": "metrics.acc >= 0"}
    got = pages(api(cast), url(cast, "api-runs", query))
    assert [len(page) for page in got] == [3, 3, 1]
    assert [run["run_name"] for page in got for run in page] == [f"r{i}" for i in range(7)]


def test_run_shape_with_nan_and_infinite_metrics(cast) -> None:
    experiment = make_experiment(cast.workspace, "e")
    run = make_run(experiment, "r", params={"lr": 0.1}, tags={"team": "risk"}, status="RUNNING")
    log_points(run, "nan", [float("nan")])
    log_points(run, "up", [float("inf")])
    log_points(run, "down", [float("-inf")])
    log_points(run, "loss", [0.5, 0.25])
    response = api(cast, "reader").get(url(cast, "api-run", run_id=run.run_uuid))
    body = response.json()
    assert set(body) == {
        "run_id",
        "run_name",
        "experiment_id",
        "status",
        "start_time",
        "end_time",
        "lifecycle_stage",
        "user_id",
        "artifact_uri",
        "params",
        "tags",
        "metrics",
    }
    assert body["run_id"] == run.run_uuid and body["experiment_id"] == str(experiment.pk)
    assert body["status"] == "RUNNING" and body["end_time"] is None
    assert body["params"] == {"lr": "0.1"}
    assert body["tags"]["team"] == "risk" and body["tags"]["mlflow.runName"] == "r"
    assert body["metrics"]["loss"] == {"value": 0.25, "step": 1, "timestamp": 1001}
    values = {key: m["value"] for key, m in body["metrics"].items()}
    assert values == {"nan": "NaN", "up": "Infinity", "down": "-Infinity", "loss": 0.25}

    metrics = api(cast, "reader").get(url(cast, "api-run-metrics", run_id=run.run_uuid)).json()
    assert [m["key"] for m in metrics] == ["down", "loss", "nan", "up"]
    assert metrics[2] == {"key": "nan", "value": "NaN", "step": 0, "timestamp": 1000}


def test_runs_page_costs_the_same_queries_for_2_or_20_runs(cast) -> None:
    experiment = make_experiment(cast.workspace, "e")
    client = api(cast)
    path = url(cast, "api-runs")
    counts = []
    for total in (2, 20):
        while Run.objects.count() < total:
            make_run(experiment, metrics={"a": 1, "b": 2}, params={"p": 1, "q": 2}, tags={"t": "x"})
        client.get(path)  # warm: the token's last-used stamp is written once a minute
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert len(response.json()["results"]) == total
        assert all(len(run["metrics"]) == 2 for run in response.json()["results"])
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_run_update(cast) -> None:
    run = make_run(make_experiment(cast.workspace, "e"), "r", status="RUNNING")
    client = api(cast, "contributor")
    path = url(cast, "api-run", run_id=run.run_uuid)
    response = client.patch(path, {"run_name": "renamed"}, content_type="application/json")
    assert response.json()["run_name"] == "renamed"
    assert response.json()["tags"]["mlflow.runName"] == "renamed"
    response = client.patch(path, {"status": "FINISHED"}, content_type="application/json")
    assert response.json()["status"] == "FINISHED" and response.json()["end_time"] >= run.start_time
    response = client.patch(path, {"status": "DONE"}, content_type="application/json")
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    run_delete(run=run, actor=None)
    response = client.patch(path, {"run_name": "again"}, content_type="application/json")
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_run_delete_restore_and_purge(cast) -> None:
    run = make_run(make_experiment(cast.workspace, "e"), "r")
    write_artifact(run, "model/weights.bin", b"\x00" * 10)
    client = api(cast, "contributor")
    path = url(cast, "api-run", run_id=run.run_uuid)
    purge = url(cast, "api-run-purge", run_id=run.run_uuid)

    body = assert_error(client.post(purge), 400, "INVALID_PARAMETER_VALUE")
    assert "delete" in body["message"]
    response = client.delete(path)
    assert response.status_code == 200 and response.json()["lifecycle_stage"] == "deleted"
    response = client.post(url(cast, "api-run-restore", run_id=run.run_uuid))
    assert response.status_code == 200 and response.json()["lifecycle_stage"] == "active"

    client.delete(path)
    response = client.post(purge)
    assert response.status_code == 204 and response.content == b""
    assert_error(client.get(path), 404, "RESOURCE_DOES_NOT_EXIST")
    assert not Run.objects.filter(pk=run.pk).exists()
    assert store_for(cast.workspace).list(artifact_uri_path(run.artifact_uri)) == []
    assert_error(client.post(purge), 404, "RESOURCE_DOES_NOT_EXIST")


def test_run_restore_needs_its_experiment_active(cast) -> None:
    experiment = make_experiment(cast.workspace, "e")
    run = make_run(experiment, "r")
    experiment_delete(experiment=experiment, actor=None)
    response = api(cast).post(url(cast, "api-run-restore", run_id=run.run_uuid))
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    "status, answer",
    [("RUNNING", 200), ("SCHEDULED", 200), ("KILLED", 200), ("FINISHED", 400), ("FAILED", 400)],
)
def test_run_cancel(cast, status, answer) -> None:
    run = make_run(make_experiment(cast.workspace, "e"), "r", status="RUNNING")
    Run.objects.filter(pk=run.pk).update(status=status, end_time=None)
    response = api(cast, "contributor").post(url(cast, "api-run-cancel", run_id=run.run_uuid))
    assert response.status_code == answer, response.content
    run.refresh_from_db()
    if answer == 400:
        assert_error(response, 400, "INVALID_PARAMETER_VALUE")
        assert run.status == status
    elif status == "KILLED":
        assert response.json()["status"] == "KILLED" and run.end_time is None  # unchanged
    else:
        assert response.json()["status"] == "KILLED"
        assert response.json()["end_time"] == run.end_time and run.end_time >= run.start_time


def test_run_cancel_twice_keeps_the_first_end_time(cast) -> None:
    run = make_run(make_experiment(cast.workspace, "e"), "r", status="RUNNING")
    client = api(cast)
    cancel = url(cast, "api-run-cancel", run_id=run.run_uuid)
    first = client.post(cancel).json()
    second = client.post(cancel).json()
    assert first["status"] == second["status"] == "KILLED"
    assert first["end_time"] == second["end_time"]
    assert AuditEntry.objects.filter(action="cancel").count() == 1
