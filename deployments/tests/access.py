"""The access rows of the remote-run endpoints of /api/v1 (compute targets, environments,
snapshots, jobs), run with every other route's by tests/test_route_access.py
(tests/access.py says how rows are read) and with a read-scoped token by
deployments/tests/test_api_access.py.

The rule: readers see; contributors (and owners) create, change and delete targets,
register environments, upload snapshots, submit and cancel; an outsider finds no
workspace (404), a call without credentials is a 401. What a row names is made by its
`kwargs` before each call, and what a read would make on first use (the `local` target,
the curated environments) is made there too, so that a read changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid

from deployments.services.compute import (
    compute_target_create,
    compute_target_get,
    compute_target_local,
)
from deployments.services.environments import environment_get, environment_register
from deployments.services.workers import worker_token_create
from deployments.tests.factories import make_zip, stored_snapshot, submit
from portal.tests.test_permissions import ws_kw
from tests.access import Expect, Row, Scene, by_role, everyone

READ = by_role(200, 200, 200, 404, 401)


def writes(ok: int) -> Expect:
    return by_role(ok, ok, 403, 404, 401)


# The default zip of the factories (fixed dates: the same bytes every time) and its name.
ZIP = make_zip()
ZIP_HASH = hashlib.sha256(ZIP).hexdigest()


def _workspace(s: Scene) -> dict:
    """The workspace, with what its reads make on first use made already."""
    compute_target_local(workspace=s.workspace)
    environment_get(workspace=s.workspace, name="mlstudio-minimal")
    environment_get(workspace=s.workspace, name="mlstudio-sklearn")
    return ws_kw(s)


def _compute(s: Scene) -> dict:
    compute_target_create(actor=s.owner, workspace=s.workspace, name="gpu")
    return {**_workspace(s), "compute": "gpu"}


def _environment(s: Scene) -> dict:
    environment_register(actor=s.owner, workspace=s.workspace, name="team-env")
    return {**_workspace(s), "environment": "team-env"}


def _snapshot(s: Scene) -> dict:
    return {**_workspace(s), "sha256": stored_snapshot(s)}


def _new_snapshot(s: Scene) -> dict:
    return {**_workspace(s), "sha256": ZIP_HASH}


def _stored(s: Scene) -> dict:
    """The workspace with the default snapshot stored, for a submit."""
    stored_snapshot(s)
    return _workspace(s)


def _job(s: Scene) -> dict:
    return {**_workspace(s), "run_id": submit(s).run.run_uuid}


def _with_a_job(s: Scene) -> dict:
    submit(s)
    return _workspace(s)


SUBMIT = {
    "experiment_name": "access-remote",
    "script": "train.py",
    "compute": "local",
    "environment": "mlstudio-minimal",
    "snapshot_hash": ZIP_HASH,
}


def _row(label: str, name: str, method: str, expect: Expect, kwargs=_workspace, **extra) -> Row:
    return Row(
        f"remote runs api: {label}", name, method, expect, kind="api", kwargs=kwargs, **extra
    )


API: list[Row] = [
    _row("computes list", "api-computes", "get", READ),
    _row("compute create", "api-computes", "post", writes(201), body={"name": "cpu-2"}),
    _row("compute get", "api-compute", "get", READ, _compute),
    _row("compute update", "api-compute", "patch", writes(200), _compute, body={"max_nodes": 3}),
    _row("compute delete", "api-compute", "delete", writes(204), _compute),
    _row("environments list", "api-environments", "get", READ),
    _row(
        "environment register",
        "api-environments",
        "post",
        writes(201),
        body={"name": "new-env", "pip_packages": ["numpy"]},
    ),
    _row("environment get", "api-environment", "get", READ, _environment),
    _row("environment versions", "api-environment-versions", "get", READ, _environment),
    _row(
        "environment version",
        "api-environment-version",
        "get",
        READ,
        lambda s: {**_environment(s), "version": "1"},
    ),
    _row("snapshot upload", "api-snapshot", "put", writes(201), _new_snapshot, body=ZIP),
    _row("snapshot files", "api-snapshot", "get", READ, _snapshot),
    _row("jobs list", "api-remote-jobs", "get", READ, _with_a_job),
    _row("job submit", "api-remote-jobs", "post", writes(201), _stored, body=SUBMIT),
    _row("job get", "api-remote-job", "get", READ, _job),
    _row("job cancel", "api-remote-job-cancel", "post", writes(200), _job),
    _row("job logs", "api-remote-job-logs", "get", READ, _job, query="offset=0&limit=100"),
]


# --- Worker tokens (owners) and the worker side (nobody of the cast) -----------------------

OWNERS_ONLY = by_role(200, 403, 403, 404, 401)


def _worker_token(s: Scene) -> dict:
    kwargs = _compute(s)
    target = compute_target_get(workspace=s.workspace, name="gpu")
    token, _ = worker_token_create(actor=s.owner, target=target, name="node")
    return {**kwargs, "worker_token_id": token.pk}


def _remote_job(s: Scene) -> dict:
    return {"remote_job_id": uuid.uuid4()}


WORKER: list[Row] = [
    _row("worker tokens", "api-worker-tokens", "get", OWNERS_ONLY, _compute),
    _row(
        "worker token create",
        "api-worker-tokens",
        "post",
        {**OWNERS_ONLY, "owner": 201},
        _compute,
        body={"name": "node-2"},
    ),
    _row(
        "worker token revoke",
        "api-worker-token",
        "delete",
        {**OWNERS_ONLY, "owner": 204},
        _worker_token,
    ),
]
# The worker side answers every person's token (and no token) 401: only a worker token
# (mlsw_…) opens it.
for _label, _name, _method, _kwargs, _body in [
    ("what it serves", "api-compute-worker", "get", None, None),
    ("worker heartbeat", "api-compute-worker-heartbeat", "post", None, {"hostname": "h"}),
    ("claim", "api-compute-job-claim", "post", _remote_job, {"hostname": "h"}),
    ("snapshot", "api-compute-job-snapshot", "get", _remote_job, None),
    ("job heartbeat", "api-compute-job-heartbeat", "post", _remote_job, None),
    ("report", "api-compute-job-report", "post", _remote_job, {"stage": "running"}),
    ("log", "api-compute-job-logs", "post", _remote_job, {"offset": 0, "text": "x"}),
]:
    WORKER.append(
        _row(
            f"worker: {_label}",
            _name,
            _method,
            everyone(401),
            _kwargs or (lambda s: {}),
            body=_body,
        )
    )
WORKER.append(
    _row(
        "worker: an output",
        "api-compute-job-artifact",
        "put",
        everyone(401),
        lambda s: {**_remote_job(s), "path": "outputs/a.txt"},
        body=b"data",
    )
)

# A web service's drift monitors: their rows live next to their tests.
from deployments.tests.access_drift import API as DRIFT_API  # noqa: E402

API.extend(DRIFT_API)

# A web service's metrics and the scoring servers' telemetry route.
from deployments.tests.access_monitoring import API as MONITORING_API  # noqa: E402
from deployments.tests.access_monitoring import SCORING  # noqa: E402

API.extend(MONITORING_API)
WORKER.extend(SCORING)

# Web services (deploy, get, change, delete, keys, tokens, logs): rows next to their tests.
from deployments.tests.access_services import API as SERVICES_API  # noqa: E402

API.extend(SERVICES_API)

# Images (build_image): list, build, versions, one version; rows next to their tests.
from deployments.tests.access_images import API as IMAGES_API  # noqa: E402

API.extend(IMAGES_API)
