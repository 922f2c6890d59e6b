"""REST API v1, tracking half: metric history (keyset pages, downsampling that keeps
spikes) and artifacts (listing, streamed downloads, traversal refused)."""

from __future__ import annotations

import math

import pytest

from portal.tests.api import api, assert_error
from tracking.models import Run
from tracking.tests.api_v1 import isolate, log_points, pages, url, write_artifact
from tracking.tests.factories import make_experiment, make_run

pytest_plugins = ["tracking.tests.azurite"]


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path) -> None:
    isolate(settings, tmp_path)


# --- Metric history ------------------------------------------------------------------------


def test_history_pages_in_step_order(cast) -> None:
    run = make_run(make_experiment(cast.workspace, "e"), "r")
    values = [float(i) for i in range(25)]
    # Each page ends on a point JSON cannot write as a number: the cursor must carry it.
    values[9], values[19] = float("inf"), float("nan")
    log_points(run, "loss", values)
    query = {"key": "loss", "page_size": 10}
    got = pages(
        api(cast, "reader"), url(cast, "api-run-metric-history", query, run_id=run.run_uuid)
    )
    assert [len(page) for page in got] == [10, 10, 5]
    points = [p for page in got for p in page]
    assert [p["step"] for p in points] == list(range(25))
    assert set(points[0]) == {"step", "timestamp", "value"}
    for point in points:
        value = values[point["step"]]
        if math.isnan(value):
            assert point["value"] == "NaN"
        elif math.isinf(value):
            assert point["value"] == "Infinity"
        else:
            assert point["value"] == value


def test_history_parameters(cast) -> None:
    run = make_run(make_experiment(cast.workspace, "e"), "r", metrics={"loss": [1, 2]})
    client = api(cast)

    def history(**query):
        return client.get(url(cast, "api-run-metric-history", query, run_id=run.run_uuid))

    assert history(key="other").json() == {"next": None, "previous": None, "results": []}
    for bad in (
        {},
        {"key": ""},
        {"key": "loss", "page_size": "-1"},
        {"key": "loss", "page_size": "25001"},
        {"key": "loss", "cursor": "x"},
    ):
        assert_error(history(**bad), 400, "INVALID_PARAMETER_VALUE")
    # A history page may be as large as an MLflow get-history page, unlike other lists.
    assert len(history(key="loss", page_size="25000").json()["results"]) == 2


def test_sampled_history_keeps_a_spike(cast) -> None:
    run = make_run(make_experiment(cast.workspace, "e"), "r")
    values = [1.0 + (i % 7) / 100 for i in range(5000)]
    values[3333] = 1000.0
    log_points(run, "loss", values)
    client = api(cast, "reader")
    path = url(
        cast, "api-run-metric-sampled", {"key": "loss", "max_points": 100}, run_id=run.run_uuid
    )
    body = client.get(path).json()
    assert body["key"] == "loss"
    steps = [p["step"] for p in body["points"]]
    assert len(steps) <= 100 and steps == sorted(steps)
    assert steps[0] == 0 and steps[-1] == 4999
    assert {"step": 3333, "timestamp": 1000 + 3333, "value": 1000.0} in body["points"]

    query = {"key": "loss", "start_step": 10, "end_step": 19}
    body = client.get(url(cast, "api-run-metric-sampled", query, run_id=run.run_uuid)).json()
    assert [p["step"] for p in body["points"]] == list(range(10, 20))
    query = {"key": "loss", "start_step": 4990}
    body = client.get(url(cast, "api-run-metric-sampled", query, run_id=run.run_uuid)).json()
    assert [p["step"] for p in body["points"]] == list(range(4990, 5000))
    default = client.get(url(cast, "api-run-metric-sampled", {"key": "loss"}, run_id=run.run_uuid))
    assert 100 < len(default.json()["points"]) <= 500
    missing = client.get(url(cast, "api-run-metric-sampled", {"key": "x"}, run_id=run.run_uuid))
    assert missing.json() == {"key": "x", "points": []}


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"key": "loss", "max_points": "1"},
        {"key": "loss", "max_points": "100001"},
        {"key": "loss", "max_points": "many"},
        {"key": "loss", "max_points": ""},
        {"key": "loss", "start_step": "5", "end_step": "4"},
        {"key": "loss", "start_step": str(2**63)},
    ],
)
def test_sampled_history_bad_parameters(cast, query) -> None:
    run = make_run(make_experiment(cast.workspace, "e"), "r", metrics={"loss": [1, 2]})
    response = api(cast).get(url(cast, "api-run-metric-sampled", query, run_id=run.run_uuid))
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


# --- Artifacts -----------------------------------------------------------------------------


@pytest.fixture
def stored(cast, backend) -> Run:
    run = make_run(make_experiment(cast.workspace, "e"), "r")
    write_artifact(run, "model/MLmodel", b"flavors: {}\n")
    write_artifact(run, "model/data/weights.bin", b"\x00\x01" * 100)
    write_artifact(run, "report.html", b"<script>alert(1)</script>")
    return run


def test_artifacts_list(cast, stored) -> None:
    client = api(cast, "reader")

    def listing(path: str | None = None) -> dict:
        query = {"path": path} if path is not None else None
        response = client.get(url(cast, "api-run-artifacts", query, run_id=stored.run_uuid))
        assert response.status_code == 200, response.content
        return response.json()

    assert listing() == {
        "path": "",
        "files": [
            {"path": "model", "is_dir": True, "file_size": None},
            {"path": "report.html", "is_dir": False, "file_size": 25},
        ],
    }
    assert listing("model/") == {
        "path": "model",
        "files": [
            {"path": "model/MLmodel", "is_dir": False, "file_size": 12},
            {"path": "model/data", "is_dir": True, "file_size": None},
        ],
    }
    assert listing("nothing-here")["files"] == []


def test_artifact_download_streams_an_attachment(cast, stored) -> None:
    client = api(cast, "reader")
    for path, data in (("model/data/weights.bin", b"\x00\x01" * 100), ("report.html", None)):
        response = client.get(
            url(cast, "api-run-artifact-download", {"path": path}, run_id=stored.run_uuid),
            HTTP_ACCEPT="text/html",
        )
        assert response.status_code == 200
        assert response.streaming
        body = b"".join(response.streaming_content)
        if data is not None:
            assert body == data
        assert response["Content-Type"] == "application/octet-stream"
        assert response["Content-Length"] == str(len(body))
        name = path.rsplit("/", 1)[-1]
        assert response["Content-Disposition"] == f'attachment; filename="{name}"'
        assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path, status",
    [
        ("../../../etc/passwd", 400),
        ("model/../../secret", 400),
        ("%2e%2e/%2e%2e/x", 400),
        ("/etc/passwd", 400),
        ("..\\x", 400),
        ("", 400),
        ("model", 400),  # a folder
        ("missing.txt", 404),
    ],
)
def test_artifact_download_refuses_traversal_and_leaks_no_path(
    cast, stored, settings, path, status
):
    query = {"path": path}
    response = api(cast).get(url(cast, "api-run-artifact-download", query, run_id=stored.run_uuid))
    body = assert_error(
        response, status, "INVALID_PARAMETER_VALUE" if status == 400 else "RESOURCE_DOES_NOT_EXIST"
    )
    assert settings.ARTIFACT_ROOT not in body["message"]
    assert stored.run_uuid not in body["message"]


@pytest.mark.parametrize("path", ["../x", "model/../..", "/abs"])
def test_artifact_list_refuses_traversal(cast, stored, path) -> None:
    response = api(cast).get(url(cast, "api-run-artifacts", {"path": path}, run_id=stored.run_uuid))
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")
