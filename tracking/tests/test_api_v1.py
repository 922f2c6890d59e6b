"""REST API v1, tracking half: every endpoint tried by each member of the permission cast
(outsiders 404, anonymous 401, readers 403 on writes: the table is here, run by
tests/test_route_access.py), read-scoped tokens, sessions, and ids of another workspace.

Requests go through Django's test client with real Bearer tokens, so authentication,
the access rules, the error handler and the serializers are the real ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from portal import services
from portal.models import TokenScope
from portal.tests.api import api, assert_error
from tracking.models import Run, RunStatus
from tracking.services.experiments import experiment_delete
from tracking.services.runs import run_delete
from tracking.tests.api_v1 import isolate, run_names, send, url, write_artifact
from tracking.tests.factories import make_experiment, make_run

READ = dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=401)


def writes(ok: int) -> dict[str, int]:
    return dict(owner=ok, contributor=ok, reader=403, outsider=404, anonymous=401)


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path) -> None:
    isolate(settings, tmp_path)


# --- Every endpoint, every cast member ----------------------------------------------------


def _experiment(cast) -> dict:
    return {"experiment_id": str(make_experiment(cast.workspace, "exp").pk)}


def _deleted_experiment(cast) -> dict:
    experiment = make_experiment(cast.workspace, "gone")
    experiment_delete(experiment=experiment, actor=None)
    return {"experiment_id": str(experiment.pk)}


def _run(cast, status: str = RunStatus.FINISHED) -> Run:
    experiment = make_experiment(cast.workspace, "exp")
    run = make_run(experiment, "r", metrics={"loss": [3, 2, 1]}, params={"lr": 0.1}, status=status)
    write_artifact(run, "hello.txt", b"hello")
    return run


def _run_kw(cast) -> dict:
    return {"run_id": _run(cast).run_uuid}


def _deleted_run_kw(cast) -> dict:
    run = _run(cast)
    run_delete(run=run, actor=None)
    return {"run_id": run.run_uuid}


def _running_run_kw(cast) -> dict:
    return {"run_id": _run(cast, RunStatus.RUNNING).run_uuid}


def _none(cast) -> dict:
    return {}


def _some_run(cast) -> dict:
    _run(cast)
    return {}


# (label, method, url name, setup → url kwargs, query, body, status per cast member)
ENDPOINTS: list[tuple[str, str, str, Callable, dict | None, dict | None, dict]] = [
    ("experiments list", "get", "api-experiments", _none, None, None, READ),
    ("experiment create", "post", "api-experiments", _none, None, {"name": "new"}, writes(201)),
    ("experiment get", "get", "api-experiment", _experiment, None, None, READ),
    ("experiment rename", "patch", "api-experiment", _experiment, None, {"name": "b"}, writes(200)),
    ("experiment delete", "delete", "api-experiment", _experiment, None, None, writes(200)),
    (
        "experiment restore",
        "post",
        "api-experiment-restore",
        _deleted_experiment,
        None,
        None,
        writes(200),
    ),
    (
        "experiment purge",
        "post",
        "api-experiment-purge",
        _deleted_experiment,
        None,
        None,
        writes(202),
    ),
    ("runs list", "get", "api-runs", _some_run, None, None, READ),
    ("run get", "get", "api-run", _run_kw, None, None, READ),
    ("run update", "patch", "api-run", _run_kw, None, {"run_name": "x"}, writes(200)),
    ("run delete", "delete", "api-run", _run_kw, None, None, writes(200)),
    ("run restore", "post", "api-run-restore", _deleted_run_kw, None, None, writes(200)),
    ("run purge", "post", "api-run-purge", _deleted_run_kw, None, None, writes(204)),
    ("run cancel", "post", "api-run-cancel", _running_run_kw, None, None, writes(200)),
    ("latest metrics", "get", "api-run-metrics", _run_kw, None, None, READ),
    ("metric history", "get", "api-run-metric-history", _run_kw, {"key": "loss"}, None, READ),
    ("sampled history", "get", "api-run-metric-sampled", _run_kw, {"key": "loss"}, None, READ),
    ("artifacts list", "get", "api-run-artifacts", _run_kw, None, None, READ),
    (
        "artifact download",
        "get",
        "api-run-artifact-download",
        _run_kw,
        {"path": "hello.txt"},
        None,
        READ,
    ),
]


@pytest.mark.parametrize("label, method, name, setup, query, body, expected", ENDPOINTS)
def test_read_scoped_token_reads_but_never_writes(
    cast, label, method, name, setup, query, body, expected
) -> None:
    path = url(cast, name, query, **setup(cast))
    response = send(api(cast, "owner", scope=TokenScope.READ), method, path, body)
    if expected["reader"] == 403:
        assert_error(response, 403, "PERMISSION_DENIED")
    else:
        assert response.status_code == 200


def test_browser_session_works(cast) -> None:
    client = Client()
    client.force_login(cast.reader)
    make_experiment(cast.workspace, "exp")
    response = client.get(url(cast, "api-experiments"))
    assert [e["name"] for e in response.json()["results"]] == ["exp", "Default"]


# --- Workspace isolation -------------------------------------------------------------------


RUN_URLS = [
    ("get", "api-run", None, None),
    ("patch", "api-run", None, {"run_name": "mine"}),
    ("delete", "api-run", None, None),
    ("post", "api-run-restore", None, None),
    ("post", "api-run-purge", None, None),
    ("post", "api-run-cancel", None, None),
    ("get", "api-run-metrics", None, None),
    ("get", "api-run-metric-history", {"key": "loss"}, None),
    ("get", "api-run-metric-sampled", {"key": "loss"}, None),
    ("get", "api-run-artifacts", None, None),
    ("get", "api-run-artifact-download", {"path": "hello.txt"}, None),
]
EXPERIMENT_URLS = [
    ("get", "api-experiment", None),
    ("patch", "api-experiment", {"name": "mine"}),
    ("delete", "api-experiment", None),
    ("post", "api-experiment-restore", None),
    ("post", "api-experiment-purge", None),
]


def test_ids_of_another_workspace_are_404(cast) -> None:
    """The owner of both workspaces still cannot reach one's data through the other's URL."""
    services.membership_grant(
        actor=cast.outsider, scope=cast.other_workspace, user=cast.owner, role="owner"
    )
    theirs = make_experiment(cast.other_workspace, "theirs")
    run = make_run(theirs, "r", metrics={"loss": [1]}, status="RUNNING")
    write_artifact(run, "hello.txt", b"hi")
    client = api(cast)
    for method, name, query, body in RUN_URLS:
        response = send(client, method, url(cast, name, query, run_id=run.run_uuid), body)
        assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
        if method == "get":  # while through its own workspace, the run is there
            theirs_url = url(cast, name, query, workspace=cast.other_workspace, run_id=run.run_uuid)
            assert send(client, "get", theirs_url).status_code == 200
    for method, name, body in EXPERIMENT_URLS:
        response = send(client, method, url(cast, name, experiment_id=theirs.pk), body)
        assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    run.refresh_from_db()
    theirs.refresh_from_db()
    assert (run.status, run.name, run.lifecycle_stage) == ("RUNNING", "r", "active")
    assert (theirs.name, theirs.lifecycle_stage) == ("theirs", "active")
    assert run_names(client.get(url(cast, "api-runs"))) == []
