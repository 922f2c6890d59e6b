"""Refusals of malformed MLflow protocol requests, in mlflow server 3.17.2's words and
codes: people and tools match on them. The requests are raw JSON as a client posts it;
the words come from mlflow's handlers (`_validate_param_against_schema`) and its
`mlflow.utils.validation` helpers, which the server calls."""

from __future__ import annotations

import json
from typing import Any

import mlflow
import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)

SEE_DOCS = " See the API docs for more information about request parameters."
NAMES = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), "
    "spaces ( ), colon(:) and slashes (/)."
)


def wrong_type(name: str, value: Any) -> str:
    """mlflow server's words for a value of the wrong type."""
    return (
        f"Invalid value {json.dumps(value)} for parameter '{name}' supplied:  "
        f"Hint: Value was of type '{type(value).__name__}'." + SEE_DOCS
    )


def missing(name: str) -> str:
    return f"Missing value for required parameter '{name}'." + SEE_DOCS


@pytest.fixture
def post(tracking):
    """post(path, body) -> (status, error code, message), as the owner."""
    headers = {"Authorization": f"Bearer {tracking.tokens['owner']}"}

    def send(path: str, body: dict) -> tuple[int, str, str]:
        response = requests.post(
            f"{tracking.uri}/api/2.0/mlflow/{path}", json=body, headers=headers
        )
        if response.status_code == 200:
            return 200, "", ""
        payload = response.json()
        return response.status_code, payload["error_code"], payload["message"]

    return send


@pytest.fixture
def run_id(tracking) -> str:
    client = mlflow.MlflowClient()
    return client.create_run(client.create_experiment("validation")).info.run_id


def bad(message: str) -> tuple[int, str, str]:
    return 400, "INVALID_PARAMETER_VALUE", message


def test_experiment_arguments(post, run_id):
    assert post("experiments/create", {"name": 123}) == bad(wrong_type("name", 123))
    assert post("experiments/create", {}) == bad(missing("name"))
    assert post("experiments/create", {"name": ""}) == bad(missing("name"))
    assert post("experiments/create", {"name": "a", "artifact_location": 9.0}) == bad(
        wrong_type("artifact_location", 9.0)
    )
    assert post("experiments/create", {"name": "b", "tags": "5"}) == bad(wrong_type("tags", "5"))
    assert post("experiments/create", {"name": "n" * 501}) == bad(
        "'name' exceeds the maximum length of 500 characters"
    )
    assert post("experiments/update", {"experiment_id": "0"}) == bad(missing("new_name"))
    assert post("experiments/update", {"experiment_id": 5, "new_name": "x"}) == bad(
        wrong_type("experiment_id", 5)
    )
    assert post("experiments/delete", {}) == bad(missing("experiment_id"))
    assert post("experiments/delete", {"experiment_id": "abc"}) == bad(
        "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
    )
    assert post("runs/create", {"experiment_id": "abc"}) == bad(
        "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
    )
    tag = {"experiment_id": "0", "key": "k", "value": 5}
    assert post("experiments/set-experiment-tag", tag) == bad(wrong_type("value", 5))
    assert post("experiments/set-experiment-tag", {"experiment_id": "0", "value": "v"}) == bad(
        missing("key")
    )
    assert post("experiments/search", {"max_results": "abc"}) == bad(
        wrong_type("max_results", "abc")
    )
    assert post("experiments/search", {"order_by": "name"}) == bad(wrong_type("order_by", "name"))


def test_experiment_get_by_query(tracking):
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}
    url = f"{tracking.uri}/api/2.0/mlflow/experiments/get"
    for params, message in [
        ({}, missing("experiment_id")),
        (
            {"experiment_id": "abc"},
            "Invalid experiment ID 'abc'. Experiment ID must be a valid integer.",
        ),
    ]:
        response = requests.get(url, params=params, headers=headers)
        assert (response.status_code, response.json()) == (
            400,
            {"error_code": "INVALID_PARAMETER_VALUE", "message": message},
        )


def test_log_metric_arguments(post, run_id):
    """The cases mlflow's own REST tests send, and its store's checks."""
    metric = {"run_id": run_id, "key": "foo", "value": 31, "timestamp": 59, "step": 41}
    assert post("runs/log-metric", {**metric, "run_id": 31}) == bad(wrong_type("run_id", 31))
    assert post("runs/log-metric", {**metric, "key": 31}) == bad(wrong_type("key", 31))
    assert post("runs/log-metric", {**metric, "step": "foo"}) == bad(wrong_type("step", "foo"))
    assert post("runs/log-metric", {**metric, "timestamp": "foo"}) == bad(
        wrong_type("timestamp", "foo")
    )
    assert post("runs/log-metric", {**metric, "value": "foo"}) == bad(wrong_type("value", "foo"))
    assert post("runs/log-metric", {**metric, "run_id": None}) == bad(missing("run_id"))
    assert post("runs/log-metric", {**metric, "key": None}) == bad(missing("key"))
    no_key = {k: v for k, v in metric.items() if k != "key"}
    assert post("runs/log-metric", no_key) == bad(missing("key"))
    no_time = {k: v for k, v in metric.items() if k != "timestamp"}
    assert post("runs/log-metric", no_time) == bad(missing("timestamp"))
    # Two wrong: run_id is checked first, as there.
    assert post("runs/log-metric", {**metric, "run_id": 31, "key": 31}) == bad(
        wrong_type("run_id", 31)
    )
    assert post("runs/log-metric", {**metric, "timestamp": -5}) == bad(
        "Invalid value -5 for parameter 'timestamp' supplied: metric 'foo' (value=31.0). "
        "Timestamp must be a nonnegative long (64-bit integer) "
    )
    assert post("runs/log-metric", {**metric, "key": "bad\x01"}) == bad(
        f"Invalid value \"bad\\u0001\" for parameter 'name' supplied: {NAMES}"
    )
    assert post("runs/log-metric", {**metric, "key": "k" * 251}) == bad(
        "'Metric name' exceeds the maximum length of 250 characters"
    )
    assert post("runs/log-metric", {**metric, "run_uuid": "zzz", "run_id": None}) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Run with id=zzz not found",
    )
    assert post("runs/log-metric", metric) == (200, "", "")


def test_log_param_and_set_tag_arguments(post, run_id):
    param = {"run_id": run_id, "key": "p", "value": "v"}
    assert post("runs/log-parameter", {**param, "run_id": 31}) == bad(wrong_type("run_id", 31))
    assert post("runs/log-parameter", {**param, "key": 31}) == bad(wrong_type("key", 31))
    assert post("runs/log-parameter", {**param, "value": 41}) == bad(wrong_type("value", 41))
    assert post("runs/log-parameter", {"run_id": run_id, "value": "v"}) == bad(missing("key"))
    assert post("runs/log-parameter", {**param, "key": "k" * 251}) == bad(
        "'Param key' exceeds the maximum length of 250 characters"
    )
    assert post("runs/log-parameter", {**param, "key": "bad\x01"}) == bad(
        f"Invalid value \"bad\\u0001\" for parameter 'key' supplied: {NAMES}"
    )
    assert post("runs/log-parameter", {**param, "value": None}) == (200, "", "")
    tag = {"run_id": run_id, "key": "t", "value": "v"}
    assert post("runs/set-tag", {**tag, "run_id": 31}) == bad(wrong_type("run_id", 31))
    assert post("runs/set-tag", {**tag, "value": 41}) == bad(wrong_type("value", 41))
    assert post("runs/set-tag", {"run_id": run_id, "value": "v"}) == bad(missing("key"))
    assert post("runs/set-tag", {**tag, "key": "k" * 251}) == bad(
        "'key' exceeds the maximum length of 250 characters"
    )
    assert post("runs/set-tag", {"run_uuid": run_id, "key": "k", "value": "v"}) == (200, "", "")
    assert post("runs/delete-tag", {"run_id": run_id}) == bad(missing("key"))
    assert post("runs/delete", {"run_id": 31}) == bad(wrong_type("run_id", 31))
    assert post("runs/update", {"run_id": run_id, "end_time": "x"}) == bad(
        wrong_type("end_time", "x")
    )


def test_log_batch_arguments(post, run_id):
    for name in ("metrics", "params", "tags"):
        assert post("runs/log-batch", {"run_id": run_id, name: "foo"}) == bad(
            wrong_type(name, "foo")
        )

    def batch(**body: Any) -> tuple[int, str, str]:
        return post("runs/log-batch", {"run_id": run_id, **body})

    assert batch(metrics=[{"key": "mae", "value": 2.5}]) == bad(missing("metrics[0].timestamp"))
    assert batch(metrics=[{"value": 2.5, "timestamp": 1}]) == bad(missing("metrics[0].key"))
    assert batch(metrics=[{"key": "a", "timestamp": 1}]) == bad(missing("metrics[0].value"))
    assert batch(params=[{"value": "x"}]) == bad(missing("params[0].key"))
    assert batch(tags=[{"key": "t", "value": "x"}, {"value": "x"}]) == bad(missing("tags[1].key"))
    assert batch(metrics=[{"key": "a", "value": 1, "timestamp": -1}]) == bad(
        "Invalid value -1 for parameter 'metrics[0].timestamp' supplied: metric 'a' "
        "(value=1.0). Timestamp must be a nonnegative long (64-bit integer) "
    )
    assert batch(metrics=[{"key": "bad\x01", "value": 1, "timestamp": 1}]) == bad(
        f"Invalid value \"bad\\u0001\" for parameter 'metrics[0].name' supplied: {NAMES}"
    )
    assert batch(metrics=[{"key": "k" * 251, "value": 1, "timestamp": 1}]) == bad(
        "'Metric name' exceeds the maximum length of 250 characters"
    )
    assert batch(params=[{"key": "k" * 251, "value": "x"}]) == bad(
        "'Param key' exceeds the maximum length of 250 characters"
    )
    assert batch(params=[{"key": "bad\x01", "value": "x"}]) == bad(
        f"Invalid value \"bad\\u0001\" for parameter 'params[0].key' supplied: {NAMES}"
    )
    assert batch(tags=[{"key": "k" * 251, "value": "x"}]) == bad(
        "'tags[0].key' exceeds the maximum length of 250 characters"
    )
    assert batch(params=[{"key": "d", "value": "x"}, {"key": "d", "value": "y"}]) == bad(
        "Duplicate parameter keys have been submitted: ['d']. Please ensure the request "
        "contains only one param value per param key."
    )
    assert post("runs/log-batch", {"metrics": []}) == bad(missing("run_id"))
    assert post("runs/log-batch", {"run_id": 31}) == bad(wrong_type("run_id", 31))
    assert post("runs/log-batch", {"run_id": "../x"}) == bad(
        "Invalid value \"../x\" for parameter 'run_id' supplied."
    )
    # Over-long values are cut to mlflow's limits, as mlflow server does by default.
    assert batch(params=[{"key": "long", "value": "v" * 6001}]) == (200, "", "")
    assert len(mlflow.MlflowClient().get_run(run_id).data.params["long"]) == 6000
    assert post("runs/log-inputs", {"datasets": []}) == bad(missing("run_id"))
    assert post("runs/log-inputs", {"run_id": run_id, "datasets": "x"}) == bad(
        wrong_type("datasets", "x")
    )


def test_search_runs_arguments(post, run_id):
    assert post("runs/search", {"experiment_ids": ["0"], "max_results": 50001}) == bad(
        wrong_type("max_results", 50001)
    )
    assert post("runs/search", {"experiment_ids": ["0"], "max_results": "abc"}) == bad(
        wrong_type("max_results", "abc")
    )
    assert post("runs/search", {"experiment_ids": "0"}) == bad(wrong_type("experiment_ids", "0"))
    assert post("runs/search", {"experiment_ids": ["0"], "order_by": [5]}) == bad(
        wrong_type("order_by", [5])
    )
    assert post("runs/search", {"experiment_ids": ["0"], "filter": 5}) == bad(
        wrong_type("filter", 5)
    )
    assert post("runs/search", {"experiment_ids": ["abc"]}) == bad(
        "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
    )
    assert post("runs/search", {"experiment_ids": ["0"], "page_token": "garbage!"}) == bad(
        "Invalid page token, could not base64-decode"
    )


def test_the_client_sees_the_words(tracking, run_id):
    """What the mlflow client raises carries the server's words and code."""
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    with pytest.raises(MlflowException) as err:
        client.log_param(run_id, "k" * 251, "v")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    # (the client adds the code in front and its advice on params after)
    assert "'Param key' exceeds the maximum length of 250 characters" in err.value.message
    with pytest.raises(MlflowException, match=r"Invalid experiment ID 'abc'\. Experiment ID"):
        client.get_experiment("abc")
