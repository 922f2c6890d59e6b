"""Metric history over the MLflow protocol: `get-history` paging and
`get-history-bulk-interval` arguments, checked as mlflow server 3.17.2 checks them and
refused in its words (its handlers `_get_metric_history` and
`get_metric_history_bulk_interval_handler`, and its SQL store's page tokens)."""

from __future__ import annotations

import base64
import json
import math

import mlflow
import pytest
import requests
from mlflow.entities import Metric

pytestmark = pytest.mark.django_db(transaction=True)

SEE_DOCS = " See the API docs for more information about request parameters."


def _token(body: dict) -> str:
    """A page token in mlflow's SQL store's shape: base64 of a JSON object."""
    return base64.b64encode(json.dumps(body).encode()).decode()


@pytest.fixture
def history(tracking):
    """A run with seven points of "loss" (steps 0-6); (tracking, run id, get)."""
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("history")).info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", float(i), 1000 + i, i) for i in range(7)])
    url = tracking.uri + "/api/2.0/mlflow/metrics/get-history"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}

    def get(**params) -> requests.Response:
        return requests.get(url, params={"metric_key": "loss", **params}, headers=headers)

    return tracking, run_id, get


def _steps(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [m["step"] for m in response.json().get("metrics", [])]


def _refusal(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error_code"], body["message"]


def test_pages_follow_next_page_token_to_the_end(history):
    _, run_id, get = history
    first = get(run_id=run_id, max_results=3)
    assert _steps(first) == [0, 1, 2]
    token = first.json()["next_page_token"]
    # mlflow's token shape, {"offset": n} in base64 (ours carries the last key too).
    assert json.loads(base64.b64decode(token))["offset"] == 3
    second = get(run_id=run_id, max_results=3, page_token=token)
    assert _steps(second) == [3, 4, 5]
    last = get(run_id=run_id, max_results=3, page_token=second.json()["next_page_token"])
    assert _steps(last) == [6]
    assert "next_page_token" not in last.json()
    # A page that ends exactly on the last point hands out no token.
    assert "next_page_token" not in get(run_id=run_id, max_results=7).json()
    assert "next_page_token" in get(run_id=run_id, max_results=6).json()


def test_the_clients_paged_store_call(history):
    """The client's REST store asks for pages itself (`max_results`, `page_token`)."""
    _, run_id, _ = history
    store = mlflow.MlflowClient()._tracking_client.store
    page = store.get_metric_history(run_id, "loss", max_results=4)
    assert [m.step for m in page] == [0, 1, 2, 3] and page.token
    rest = store.get_metric_history(run_id, "loss", max_results=4, page_token=page.token)
    assert [m.step for m in rest] == [4, 5, 6] and rest.token is None
    assert [m.step for m in mlflow.MlflowClient().get_metric_history(run_id, "loss")] == list(
        range(7)
    )


def test_a_token_in_mlflows_own_shape_skips_that_many_points(history):
    _, run_id, get = history
    assert _steps(get(run_id=run_id, max_results=2, page_token=_token({"offset": 2}))) == [2, 3]
    # With no max_results the rest of the history comes whole, without a token.
    rest = get(run_id=run_id, page_token=_token({"offset": 5}))
    assert _steps(rest) == [5, 6] and "next_page_token" not in rest.json()
    assert _steps(get(run_id=run_id, max_results=2, page_token=_token({"offset": 100}))) == []


def test_max_results_as_mlflow_server_reads_it(history):
    _, run_id, get = history
    for bad in (0, -1):
        assert _refusal(get(run_id=run_id, max_results=bad)) == (
            400,
            "INVALID_PARAMETER_VALUE",
            f"Invalid value {bad} for parameter 'max_results' supplied. "
            "It must be a positive integer.",
        )
    # mlflow server reads max_results into an int32 field: what does not fit is as absent,
    # and the whole history comes back.
    for unreadable in ("abc", "2.5", "", 99999999999, "-99999999999"):
        response = get(run_id=run_id, max_results=unreadable)
        assert _steps(response) == list(range(7)), unreadable
        assert "next_page_token" not in response.json()
    assert _steps(get(run_id=run_id, max_results="2")) == [0, 1]


def test_max_results_has_no_cap(tracking, monkeypatch):
    """mlflow server hands out a page of whatever size is asked, past the client's own
    25,000 too; ours streams it in chunks (made small here) and still ends it right."""
    from tracking.selectors import metrics as sel

    monkeypatch.setattr(sel, "STREAM_CHUNK", 4)
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("big-page")).info.run_id
    client.log_batch(run_id, metrics=[Metric("m", float(i), 5, i) for i in range(23)])
    url = tracking.uri + "/api/2.0/mlflow/metrics/get-history"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}

    def get(**params) -> requests.Response:
        return requests.get(
            url, params={"run_id": run_id, "metric_key": "m", **params}, headers=headers
        )

    page = get(max_results=10)
    assert _steps(page) == list(range(10))
    rest = get(max_results=30, page_token=page.json()["next_page_token"])
    assert _steps(rest) == list(range(10, 23)) and "next_page_token" not in rest.json()
    whole = get(max_results=23)
    assert _steps(whole) == list(range(23)) and "next_page_token" not in whole.json()
    assert _steps(get(max_results=22)) == list(range(22))
    assert _steps(get()) == list(range(23))


def test_max_results_past_the_clients_page_size(tracking):
    """25,001 points in one page when asked for (the cap this server had before)."""
    from tracking.models import Run
    from tracking.services import runs as svc

    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("huge-page")).info.run_id
    run = Run.objects.get(run_uuid=run_id)
    for start in range(0, 25_001, 1000):
        points = [
            svc.MetricIn("m", 1.0, False, 7, i) for i in range(start, min(start + 1000, 25_001))
        ]
        svc.run_log_batch(run=run, metrics=points)
    url = tracking.uri + "/api/2.0/mlflow/metrics/get-history"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}
    params = {"run_id": run_id, "metric_key": "m"}
    whole = requests.get(url, params={**params, "max_results": 25_001}, headers=headers).json()
    assert len(whole["metrics"]) == 25_001 and "next_page_token" not in whole
    page = requests.get(url, params={**params, "max_results": 25_000}, headers=headers).json()
    assert len(page["metrics"]) == 25_000 and "next_page_token" in page


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("garbage!", "Invalid page token, could not base64-decode"),
        ("abc", "Invalid page token, could not base64-decode"),
        (base64.b64encode(b"abc").decode(), "Invalid page token, decoded value=b'abc'"),
        (_token({}), "Invalid page token, parsed value={}"),
        (_token({"offset": 0}), "Invalid page token, parsed value={'offset': 0}"),
        (_token({"offset": "a"}), "Invalid page token, not stringable a"),
        # mlflow server fails with a server error on these; we refuse them.
        (_token([1]), "Invalid page token, parsed value=[1]"),
        (
            _token({"offset": 3, "after": "x"}),
            "Invalid page token, parsed value={'offset': 3, 'after': 'x'}",
        ),
    ],
)
def test_invalid_page_tokens_in_mlflows_words(history, token, message):
    _, run_id, get = history
    assert _refusal(get(run_id=run_id, max_results=2, page_token=token)) == (
        400,
        "INVALID_PARAMETER_VALUE",
        message,
    )


def test_pages_continue_past_nan_and_infinity(tracking):
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("odd-values")).info.run_id
    values = [math.nan, math.inf, -math.inf, 1.0]
    client.log_batch(run_id, metrics=[Metric("m", v, 3, i) for i, v in enumerate(values)])
    store = client._tracking_client.store
    steps, token = [], None
    while True:
        page = store.get_metric_history(run_id, "m", max_results=1, page_token=token)
        steps += [m.step for m in page]
        token = page.token
        if not token:
            break
    assert steps == [0, 1, 2, 3]


def test_required_arguments_and_unknown_ids(history):
    tracking, run_id, get = history
    url = tracking.uri + "/api/2.0/mlflow/metrics/get-history"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}
    assert _refusal(requests.get(url, params={"run_id": run_id}, headers=headers)) == (
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'metric_key'." + SEE_DOCS,
    )
    assert _refusal(get(run_id=run_id, metric_key="")) == (
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'metric_key'." + SEE_DOCS,
    )
    assert _refusal(get()) == (
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'run_id'." + SEE_DOCS,
    )
    assert _steps(get(run_uuid=run_id, max_results=1)) == [0]  # the older name
    assert _steps(get(run_id=run_id, metric_key="never-logged", max_results=5)) == []
    # On purpose: a run id of no run here is 404, as runs/get answers it (mlflow server
    # on its SQL store answers an empty history).
    assert _refusal(get(run_id="no-such-run")) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Run with id=no-such-run not found",
    )


# --- get-history-bulk-interval -----------------------------------------------------


def test_bulk_interval_passes_over_ids_of_no_run_here(tracking, cast, monkeypatch):
    other = tracking.client("outsider", monkeypatch, uri=tracking.uri_for(cast.other_workspace))
    foreign = other.create_run(other.create_experiment("foreign")).info.run_id
    other.log_metric(foreign, "loss", 42.0, step=0)
    client = tracking.client("owner", monkeypatch)
    run_id = client.create_run(client.create_experiment("bulk-ids")).info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", float(i), 9, i) for i in range(3)])
    url = tracking.uri + "/api/2.0/mlflow/metrics/get-history-bulk-interval"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}
    params = {"run_ids": ["no-such-run", run_id, foreign], "metric_key": "loss"}
    response = requests.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert [(m["run_id"], m["step"]) for m in response.json()["metrics"]] == [
        (run_id, 0),
        (run_id, 1),
        (run_id, 2),
    ]
    only_unknown = requests.get(
        url, params={"run_ids": ["no-such-run", foreign], "metric_key": "loss"}, headers=headers
    )
    assert only_unknown.status_code == 200 and only_unknown.json().get("metrics", []) == []


def test_bulk_interval_arguments_in_mlflows_words(history):
    tracking, run_id, _ = history
    url = tracking.uri + "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
    headers = {"Authorization": f"Bearer {tracking.tokens['reader']}"}

    def refused(**params) -> tuple[int, str, str]:
        return _refusal(requests.get(url, params=params, headers=headers))

    def invalid(message: str) -> tuple[int, str, str]:
        return 400, "INVALID_PARAMETER_VALUE", message

    def hint(name: str, value: str) -> tuple[int, str, str]:
        return invalid(
            f"Invalid value {json.dumps(value)} for parameter '{name}' supplied:  "
            "Hint: Value was of type 'str'." + SEE_DOCS
        )

    assert refused(metric_key="loss") == invalid(
        "Missing value for required parameter 'run_ids'." + SEE_DOCS
    )
    assert refused(run_ids=[f"id_{i}" for i in range(101)], metric_key="loss") == invalid(
        "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. "
        "Received 101 run_ids." + SEE_DOCS
    )
    # Past Django's 1,000-field form limit too: the handler's refusal, not a server error.
    assert refused(run_ids=[f"id_{i}" for i in range(1000)], metric_key="loss") == invalid(
        "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. "
        "Received 1000 run_ids." + SEE_DOCS
    )
    too_many = _refusal(requests.get(url + "?" + "&".join(["x"] * 10_001), headers=headers))
    assert too_many[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert "more than 10000 parameters" in too_many[2]
    assert refused(run_ids=run_id) == invalid(
        "Missing value for required parameter 'metric_key'." + SEE_DOCS
    )
    assert refused(run_ids=run_id, metric_key="") == invalid(
        "Missing value for required parameter 'metric_key'." + SEE_DOCS
    )
    between = invalid("max_results must be between 1 and 2500." + SEE_DOCS)
    for bad in (0, -5, 2501, 99999999999):
        assert refused(run_ids=run_id, metric_key="loss", max_results=bad) == between
    assert refused(run_ids=run_id, metric_key="loss", max_results="abc") == hint(
        "max_results", "abc"
    )
    assert refused(run_ids=run_id, metric_key="loss", max_results="") == hint("max_results", "")
    assert refused(run_ids=run_id, metric_key="loss", start_step="x", end_step=3) == hint(
        "start_step", "x"
    )
    assert refused(run_ids=run_id, metric_key="loss", start_step=0, end_step="") == hint(
        "end_step", ""
    )
    # The steps are checked before max_results, as there.
    assert refused(run_ids=run_id, metric_key="loss", start_step="x", max_results=0) == hint(
        "start_step", "x"
    )
    assert refused(run_ids=run_id, metric_key="loss", start_step=3) == invalid(
        "If either start step or end step are specified, both must be specified."
    )
    assert refused(run_ids=run_id, metric_key="loss", start_step=3, end_step=1) == invalid(
        "end_step must be greater than start_step. Found start_step=3 and end_step=1."
    )
    ranged = requests.get(
        url,
        params={"run_ids": run_id, "metric_key": "loss", "start_step": 1, "end_step": 3},
        headers=headers,
    )
    assert [m["step"] for m in ranged.json()["metrics"]] == [1, 2, 3]
    full = requests.get(
        url, params={"run_ids": run_id, "metric_key": "loss", "max_results": 2500}, headers=headers
    )
    assert [m["step"] for m in full.json()["metrics"]] == list(range(7))
