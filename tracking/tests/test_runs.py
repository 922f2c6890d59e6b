"""Runs, params, tags, metrics and history through the real mlflow client."""

from __future__ import annotations

import math
import time

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.django_db(transaction=True)


def test_start_run_logs_and_reads_back(tracking):
    mlflow.set_experiment("experiment_with_mlflow")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_metric("alpha", 0.03)
        mlflow.log_param("lr", "0.1")
        mlflow.set_tag("team", "vision")
        mlflow.log_metrics({"loss": 1.5, "acc": 0.5}, step=3)
    got = mlflow.get_run(run.info.run_id)
    assert got.info.run_name == "first"
    assert got.info.status == "FINISHED"
    assert got.info.end_time >= got.info.start_time
    assert got.data.metrics == {"alpha": 0.03, "loss": 1.5, "acc": 0.5}
    assert got.data.params == {"lr": "0.1"}
    assert got.data.tags["team"] == "vision"
    assert got.data.tags["mlflow.runName"] == "first"
    assert got.data.tags["mlflow.user"]
    assert got.info.artifact_uri.endswith(f"/{run.info.run_id}/artifacts")


def test_run_without_name_gets_generated_name_and_default_experiment(tracking):
    with mlflow.start_run() as run:
        pass
    got = mlflow.get_run(run.info.run_id)
    assert got.info.run_name and "-" in got.info.run_name
    default = mlflow.MlflowClient().get_experiment(got.info.experiment_id)
    assert default.name == "Default"


def test_update_delete_restore_run(tracking):
    client = mlflow.MlflowClient()
    exp = client.create_experiment("lifecycle")
    run = client.create_run(exp, run_name="a")
    client.update_run(run.info.run_id, status="KILLED", name="renamed")
    got = client.get_run(run.info.run_id)
    assert got.info.status == "KILLED" and got.info.run_name == "renamed"
    assert got.data.tags["mlflow.runName"] == "renamed"
    client.set_terminated(run.info.run_id, status="FAILED", end_time=1234)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FAILED" and got.info.end_time == 1234
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as err:
        client.log_metric(run.info.run_id, "m", 1.0)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


def test_nested_runs_carry_parent_tag(tracking):
    mlflow.set_experiment("nested")
    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        pass
    got = mlflow.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_params_are_immutable(tracking):
    client = mlflow.MlflowClient()
    run = client.create_run(client.create_experiment("params"))
    client.log_param(run.info.run_id, "p", "1")
    client.log_param(run.info.run_id, "p", "1")  # same value: no-op
    with pytest.raises(MlflowException) as err:
        client.log_param(run.info.run_id, "p", "2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run.info.run_id).data.params == {"p": "1"}


def test_tags_last_write_wins_and_delete(tracking):
    client = mlflow.MlflowClient()
    run = client.create_run(client.create_experiment("tags"))
    client.set_tag(run.info.run_id, "t", "1")
    client.set_tag(run.info.run_id, "t", "2")
    assert client.get_run(run.info.run_id).data.tags["t"] == "2"
    client.delete_tag(run.info.run_id, "t")
    assert "t" not in client.get_run(run.info.run_id).data.tags
    with pytest.raises(MlflowException) as err:
        client.delete_tag(run.info.run_id, "t")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_metric_specials_duplicates_and_order(tracking):
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("metrics")).info.run_id
    ts = int(time.time() * 1000)
    for step, value in [(2, math.nan), (0, math.inf), (1, -math.inf), (3, 7.5), (3, 7.5)]:
        client.log_metric(run_id, "m", value, timestamp=ts, step=step)
    history = client.get_metric_history(run_id, "m")
    assert [h.step for h in history] == [0, 1, 2, 3]  # duplicate dropped, step order
    assert history[0].value == math.inf
    assert history[1].value == -math.inf
    assert math.isnan(history[2].value)
    assert history[3].value == 7.5
    assert client.get_run(run_id).data.metrics["m"] == 7.5  # latest by step


def test_log_batch_limits_truncation_and_retry(tracking):
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("batch")).info.run_id
    ts = int(time.time() * 1000)
    metrics = [Metric(f"m{i % 10}", float(i), ts, i // 10) for i in range(1000)]
    params = [Param(f"p{i}", "x" * 7000 if i == 0 else str(i)) for i in range(20)]
    tags = [RunTag("long", "y" * 9000)]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)  # retry: no-op
    got = client.get_run(run_id)
    assert len(got.data.params["p0"]) == 6000  # MLflow's truncation
    assert len(got.data.tags["long"]) == 8000
    assert len(client.get_metric_history(run_id, "m3")) == 100
    assert got.data.metrics["m9"] == 999.0


def test_log_batch_rejects_over_limit_batches_whole(tracking):
    """The client splits large batches itself; the server refuses one that breaks the
    limits, and a batch with a changed param is refused all-or-nothing."""
    import requests

    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("limits")).info.run_id
    url = tracking.uri + "/api/2.0/mlflow/runs/log-batch"
    headers = {"Authorization": f"Bearer {tracking.tokens['owner']}"}
    too_many = [{"key": "m", "value": 1, "timestamp": 1, "step": i} for i in range(1001)]
    response = requests.post(url, json={"run_id": run_id, "metrics": too_many}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    client.log_param(run_id, "p", "1")
    body = {
        "run_id": run_id,
        "params": [{"key": "p", "value": "2"}],
        "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}],
    }
    response = requests.post(url, json=body, headers=headers)
    assert response.status_code == 400
    assert client.get_metric_history(run_id, "m") == []  # nothing of the batch landed


def test_history_pages_as_the_client_pages(tracking, monkeypatch):
    import mlflow.tracking._tracking_service.client as service_client

    monkeypatch.setattr(service_client, "GET_METRIC_HISTORY_MAX_RESULTS", 7)
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("paged")).info.run_id
    metrics = [Metric("loss", float(i), 1000 + i, i) for i in range(50)]
    client.log_batch(run_id, metrics=list(reversed(metrics)))
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(50))


def test_bulk_interval_samples_and_keeps_extremes(tracking):
    import requests

    client = mlflow.MlflowClient()
    exp = client.create_experiment("bulk")
    run_ids = []
    for _ in range(3):
        run_id = client.create_run(exp).info.run_id
        values = [float(i % 10) for i in range(1000)]
        values[500] = 1e6  # a spike the sampling must keep
        client.log_batch(run_id, metrics=[Metric("loss", v, 5, i) for i, v in enumerate(values)])
        run_ids.append(run_id)
    url = tracking.uri + "/api/2.0/mlflow/metrics/get-history-bulk-interval"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}
    response = requests.get(
        url, params={"run_ids": run_ids, "metric_key": "loss", "max_results": 100}, headers=headers
    )
    assert response.status_code == 200, response.text
    metrics = response.json()["metrics"]
    for run_id in run_ids:
        points = [m for m in metrics if m["run_id"] == run_id]
        assert len(points) <= 102
        steps = [p["step"] for p in points]
        assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 999
        assert max(p["value"] for p in points) == 1e6
    ranged = requests.get(
        url,
        params={"run_ids": run_ids[0], "metric_key": "loss", "start_step": 10, "end_step": 19},
        headers=headers,
    ).json()["metrics"]
    assert [m["step"] for m in ranged] == list(range(10, 20))


def test_log_input_datasets(tracking):
    import pandas as pd

    mlflow.set_experiment("datasets")
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, name="train-set", targets="y")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    got = mlflow.get_run(run.info.run_id)
    inputs = got.inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "train-set"
    assert inputs[0].dataset.digest == dataset.digest
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"


def test_status_values(tracking):
    client = mlflow.MlflowClient()
    run = client.create_run(client.create_experiment("status"))
    for status in ("SCHEDULED", "RUNNING", "FINISHED"):
        client.update_run(run.info.run_id, status=status)
        assert client.get_run(run.info.run_id).info.status == status
    assert RunStatus.is_terminated(RunStatus.from_string("FINISHED"))


def test_search_runs_across_experiments_with_the_client(tracking):
    client = mlflow.MlflowClient()
    exps = [client.create_experiment("search-a"), client.create_experiment("search-b")]
    expected = []
    for i in range(12):
        run = client.create_run(exps[i % 2], run_name=f"run-{i:02d}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", i / 10, 1, 0)],
            params=[Param("model", "a" if i % 3 else "b")],
            tags=[RunTag("team", "vision")],
        )
        if i / 10 > 0.3 and i % 3:
            expected.append(run.info.run_id)
    found = client.search_runs(
        exps,
        "metrics.acc > 0.3 and params.model = 'a' and tags.team LIKE 'vis%'",
        order_by=["metrics.acc DESC"],
        max_results=3,
    )
    ids = [r.info.run_id for r in found]
    while found.token:
        found = client.search_runs(
            exps,
            "metrics.acc > 0.3 and params.model = 'a' and tags.team LIKE 'vis%'",
            order_by=["metrics.acc DESC"],
            max_results=3,
            page_token=found.token,
        )
        ids += [r.info.run_id for r in found]
    assert ids == list(reversed(expected))
    frame = mlflow.search_runs(exps, filter_string="attributes.run_name ILIKE 'RUN-0%'")
    assert len(frame) == 10 and "metrics.acc" in frame.columns
    deleted = client.search_runs(exps, run_view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert len(deleted) == 0


def test_history_pages_continue_past_infinite_values(tracking):
    import requests

    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("inf-pages")).info.run_id
    values = [1.0, float("inf"), float("-inf"), 2.0, float("inf")]
    client.log_batch(run_id, metrics=[Metric("m", v, 7, i) for i, v in enumerate(values)])
    url = tracking.uri + "/api/2.0/mlflow/metrics/get-history"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}
    steps, token = [], None
    while True:
        params = {"run_id": run_id, "metric_key": "m", "max_results": 1}
        if token:
            params["page_token"] = token
        response = requests.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        steps += [m["step"] for m in body["metrics"]]
        token = body.get("next_page_token")
        if not token:
            break
    # Each page ends on one point; a page ending on ±inf must hand out a token that works.
    assert steps == [0, 1, 2, 3, 4]


def test_history_bulk_as_mlflow_server_answers(tracking, cast, monkeypatch):
    """The UI's legacy bulk history: points of all the runs asked for, by run id, then
    timestamp, step and value; max_results caps them all together; ids of no run here
    (another workspace's included) are passed over."""
    import requests

    client = mlflow.MlflowClient()
    exp = client.create_experiment("bulk-history")
    run_ids = [client.create_run(exp).info.run_id for _ in range(3)]
    logged = {}
    for n, run_id in enumerate(run_ids):
        points = [
            Metric("loss", float(i + n), 2000 - i * 10, i) for i in range(5)
        ]  # later steps, earlier timestamps: the order is by timestamp
        points += [Metric("loss", 7.0, 2000, 0), Metric("loss", -1.0, 2000, 0)]  # ties: by value
        points.append(Metric("loss", math.nan, 5000, 9))
        client.log_batch(run_id, metrics=points)
        client.log_metric(run_id, "other", 1.0)
        logged[run_id] = points
    url = tracking.uri + "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}

    def get(**params):
        return requests.get(url, params=params, headers=headers, timeout=60)

    answer = get(run_id=[run_ids[2], "no-such-run", run_ids[0], run_ids[1]], metric_key="loss")
    assert answer.status_code == 200, answer.text
    expected = sorted(
        (
            {
                "key": "loss",
                "value": "NaN" if math.isnan(m.value) else m.value,
                "timestamp": m.timestamp,
                "step": m.step,
                "run_id": run_id,
            }
            for run_id, points in logged.items()
            for m in points
        ),
        key=lambda m: (
            m["run_id"],
            m["timestamp"],
            m["step"],
            0 if m["value"] == "NaN" else m["value"],
        ),
    )
    assert answer.json() == {"metrics": expected}
    capped = get(run_id=run_ids, metric_key="loss", max_results=10).json()["metrics"]
    assert capped == expected[:10]
    assert get(run_id=run_ids, metric_key="loss", max_results=0).json() == {"metrics": []}
    assert get(run_id=run_ids[0], metric_key="absent").json() == {"metrics": []}

    def refused(**params) -> tuple:
        response = get(**params)
        return response.status_code, response.json()["error_code"], response.json()["message"]

    invalid = (400, "INVALID_PARAMETER_VALUE")
    assert refused(metric_key="loss") == (
        *invalid,
        "GetMetricHistoryBulk request must specify at least one run_id.",
    )
    assert refused(run_id=[f"r{i}" for i in range(101)], metric_key="loss") == (
        *invalid,
        "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids.",
    )
    assert refused(run_id=run_ids[0]) == (
        *invalid,
        "GetMetricHistoryBulk request must specify a metric_key.",
    )
    assert refused(run_id=run_ids[0], metric_key="loss", max_results=-1)[:2] == invalid
    assert refused(run_id=run_ids[0], metric_key="loss", max_results="ten")[:2] == invalid
    # mlflow server serves it under ajax-api/ only.
    under_api = requests.get(
        url.replace("/ajax-api/", "/api/"),
        params={"run_id": run_ids[0], "metric_key": "loss"},
        headers=headers,
        timeout=60,
    )
    assert (under_api.status_code, under_api.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    # Another workspace's run, named through ours, gives nothing.
    other_uri = tracking.uri_for(cast.other_workspace)
    outsider = tracking.client("outsider", monkeypatch, uri=other_uri)
    foreign = outsider.create_run(outsider.create_experiment("foreign")).info.run_id
    outsider.log_metric(foreign, "loss", 1.0)
    assert get(run_id=[foreign, run_ids[0]], metric_key="loss").json()["metrics"] == [
        m for m in expected if m["run_id"] == run_ids[0]
    ]


def test_search_datasets_summarises_the_inputs_of_experiments(tracking, cast, monkeypatch):
    """The UI's `experiments/search-datasets`: one summary per (experiment, name, digest,
    context) the runs logged, without a context where none was given."""
    import pandas as pd
    import requests

    train = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2], "y": [0, 1]}), name="train")
    test = mlflow.data.from_pandas(pd.DataFrame({"x": [3], "y": [1]}), name="test")
    first = mlflow.set_experiment("datasets-a").experiment_id
    for _ in range(2):  # the same input twice: one summary
        with mlflow.start_run():
            mlflow.log_input(train, context="training")
    with mlflow.start_run():
        mlflow.log_input(train, context="eval")
        mlflow.log_input(test)
    second = mlflow.set_experiment("datasets-b").experiment_id
    with mlflow.start_run():
        mlflow.log_input(test, context="testing")
    mlflow.set_experiment("datasets-none")

    url = tracking.uri + "/ajax-api/2.0/mlflow/experiments/search-datasets"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}

    def search(experiment_ids, prefix_url=url):
        return requests.post(
            prefix_url, json={"experiment_ids": experiment_ids}, headers=headers, timeout=60
        )

    answer = search([first, second])
    assert answer.status_code == 200, answer.text
    summaries = answer.json()["dataset_summaries"]

    def summary(experiment_id, dataset, context=None):
        found = {"experiment_id": experiment_id, "name": dataset.name, "digest": dataset.digest}
        return {**found, "context": context} if context else found

    key = lambda s: sorted(s.items())  # noqa: E731
    assert sorted(summaries, key=key) == sorted(
        [
            summary(first, train, "training"),
            summary(first, train, "eval"),
            summary(first, test),
            summary(second, test, "testing"),
        ],
        key=key,
    )
    assert search([second]).json() == {"dataset_summaries": [summary(second, test, "testing")]}
    assert search(["0"]).json() == {}  # the default experiment, empty (or not made yet)

    def refused(experiment_ids) -> tuple:
        response = search(experiment_ids)
        return response.status_code, response.json()["error_code"], response.json()["message"]

    invalid = (400, "INVALID_PARAMETER_VALUE")
    assert refused([]) == (
        *invalid,
        "SearchDatasets request must specify at least one experiment_id.",
    )
    assert refused([str(i) for i in range(1, 22)]) == (
        *invalid,
        "SearchDatasets request cannot specify more than 20 experiment_ids. "
        "Received 21 experiment_ids.",
    )
    assert refused(["abc"]) == (
        *invalid,
        "Invalid experiment ID 'abc'. Experiment ID must be a valid integer.",
    )
    # mlflow server serves it under ajax-api/ only.
    under_api = search([first], url.replace("/ajax-api/", "/api/"))
    assert (under_api.status_code, under_api.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    # An experiment of another workspace, named through ours, gives nothing.
    outsider = tracking.client("outsider", monkeypatch, uri=tracking.uri_for(cast.other_workspace))
    foreign = outsider.create_experiment("foreign")
    with mlflow.start_run(experiment_id=foreign):
        mlflow.log_input(train, context="training")
    assert search([foreign]).json() == {}


def test_log_inputs_models_are_returned_with_the_run(tracking):
    """`runs/log-inputs` with `models` (LoggedModelInput): kept, and given back in
    `run.inputs.model_inputs` by get and search, as `mlflow server` does."""
    from mlflow.entities import LoggedModelInput

    client = mlflow.MlflowClient()
    used = client.create_logged_model(experiment_id="0", name="upstream")
    run = client.create_run("0")
    assert client.get_run(run.info.run_id).inputs.model_inputs == []
    client.log_inputs(
        run.info.run_id,
        models=[LoggedModelInput(used.model_id), LoggedModelInput("m-" + "b" * 32)],
    )
    client.log_inputs(run.info.run_id, models=[LoggedModelInput(used.model_id)])  # again
    got = client.get_run(run.info.run_id).inputs.model_inputs
    assert sorted(m.model_id for m in got) == sorted([used.model_id, "m-" + "b" * 32])
    searched = client.search_runs(["0"])[0].inputs.model_inputs
    assert sorted(m.model_id for m in searched) == sorted(m.model_id for m in got)
