"""REST API v1, remote runs: who may do what beyond the permission cast's table (which is
deployments/tests/access.py, run by tests/test_route_access.py): read-scoped tokens,
tracking tokens (a run's own MLFLOW_TRACKING_TOKEN), browser sessions, and names of
another workspace."""

from __future__ import annotations

import pytest
from django.test import Client

from deployments.models import ComputeTarget, Environment, RemoteJob
from deployments.services.compute import compute_target_create
from deployments.services.environments import environment_register
from deployments.tests.access import API
from deployments.tests.factories import make_zip, submit
from portal import services
from portal.models import TokenScope
from portal.tests.api import api, assert_error, bearer
from tests.access import Row, send, target
from tracking.tests.api_v1 import isolate, url


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path) -> None:
    isolate(settings, tmp_path)


def _call(client: Client, cast, row: Row):
    return send(client, row, target(cast, row), cast)


@pytest.mark.parametrize("row", API, ids=lambda r: r.label)
def test_a_read_scoped_token_reads_but_never_writes(cast, row: Row) -> None:
    response = _call(api(cast, "owner", scope=TokenScope.READ), cast, row)
    if row.expect["reader"] == 403:
        assert_error(response, 403, "PERMISSION_DENIED")
    else:
        assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize("row", API, ids=lambda r: r.label)
def test_a_tracking_token_reads_but_never_writes(cast, row: Row) -> None:
    """The token a remote run's script gets (its user's role, this workspace only) must
    not submit jobs, nor touch targets, environments or snapshots; it reads what the
    tracking API lets it read."""
    _, raw = services.tracking_token_mint(user=cast.owner, workspace=cast.workspace)
    path = target(cast, row)
    before = _rows()
    response = send(bearer(raw), row, path, cast)
    if row.expect["reader"] == 403:
        body = assert_error(response, 403, "PERMISSION_DENIED")
        assert "tracking token" in body["message"]
        assert _rows() == before
    else:
        assert response.status_code == 200, response.content[:300]


def _rows() -> list:
    return [
        list(model.objects.order_by("pk").values())
        for model in (ComputeTarget, Environment, RemoteJob)
    ]


def test_a_tracking_token_of_another_workspace_finds_nothing(cast) -> None:
    services.membership_grant(
        actor=cast.outsider, scope=cast.other_workspace, user=cast.owner, role="owner"
    )
    _, raw = services.tracking_token_mint(user=cast.owner, workspace=cast.other_workspace)
    response = bearer(raw).get(url(cast, "api-computes"))
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_a_browser_session_works(cast) -> None:
    client = Client()
    client.force_login(cast.reader)
    response = client.get(url(cast, "api-environments"))
    assert response.status_code == 200
    assert {"mlstudio-minimal", "mlstudio-sklearn"} <= {
        e["name"] for e in response.json()["environments"]
    }


def test_names_of_another_workspace_are_404(cast) -> None:
    """The owner of both workspaces still cannot reach one's targets, environments,
    snapshots or jobs through the other's URL."""
    services.membership_grant(
        actor=cast.outsider, scope=cast.other_workspace, user=cast.owner, role="owner"
    )
    theirs = cast.other_workspace
    compute_target_create(actor=cast.owner, workspace=theirs, name="theirs")
    environment_register(actor=cast.owner, workspace=theirs, name="their-env")
    job = submit(cast, workspace=theirs, actor=cast.owner, snapshot_hash=_stored_in(cast, theirs))
    client = api(cast)
    run_id = job.run.run_uuid
    for method, name, kwargs in (
        ("get", "api-compute", {"compute": "theirs"}),
        ("patch", "api-compute", {"compute": "theirs"}),
        ("delete", "api-compute", {"compute": "theirs"}),
        ("get", "api-environment", {"environment": "their-env"}),
        ("get", "api-environment-versions", {"environment": "their-env"}),
        ("get", "api-environment-version", {"environment": "their-env", "version": "1"}),
        ("get", "api-snapshot", {"sha256": job.snapshot_hash}),
        ("get", "api-remote-job", {"run_id": run_id}),
        ("post", "api-remote-job-cancel", {"run_id": run_id}),
        ("get", "api-remote-job-logs", {"run_id": run_id}),
    ):
        response = getattr(client, method)(url(cast, name, **kwargs))
        assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert client.head(url(cast, "api-snapshot", sha256=job.snapshot_hash)).status_code == 404
    assert client.get(url(cast, "api-remote-jobs")).json()["results"] == []
    # Submitting with their snapshot from here: not found in this workspace.
    body = {
        "experiment_name": "e",
        "script": "train.py",
        "environment": "mlstudio-minimal",
        "snapshot_hash": job.snapshot_hash,
    }
    response = client.post(url(cast, "api-remote-jobs"), body, content_type="application/json")
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    job.refresh_from_db()
    assert job.stage == "queued" and ComputeTarget.objects.filter(name="theirs").exists()


def _stored_in(cast, workspace) -> str:
    from deployments.services.snapshots import snapshot_store

    return snapshot_store(actor=cast.owner, workspace=workspace, source=make_zip())["hash"]
