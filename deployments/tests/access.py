"""The permission cast's rows for deployments' routes (read by tests/test_route_access.py;
tests/access.py says how a row reads). The scene has a compute target `gpu` with a
worker token."""

from __future__ import annotations

import uuid

from portal.tests.test_permissions import ws_kw
from tests.access import Row, by_role, everyone


def _tokens(s) -> dict:
    return {**ws_kw(s), "compute_name": s.compute.name}


def _token(s) -> dict:
    return {**_tokens(s), "worker_token_id": s.worker_token.pk}


OWNERS_ONLY = by_role(200, 403, 403, 404, 401)

# Owners manage a target's worker tokens; nobody of the cast is a worker: the worker
# side answers every user's token (and no token) 401.
ROWS: list[Row] = [
    Row("api: worker tokens", "api-worker-tokens", "get", OWNERS_ONLY, kind="api", kwargs=_tokens),
    Row(
        "api: make a worker token",
        "api-worker-tokens",
        "post",
        {**OWNERS_ONLY, "owner": 201},
        kind="api",
        kwargs=_tokens,
        body={"name": "node-2"},
    ),
    Row(
        "api: revoke a worker token",
        "api-worker-token",
        "delete",
        {**OWNERS_ONLY, "owner": 204},
        kind="api",
        kwargs=_token,
    ),
]


def _job(s) -> dict:
    return {"remote_job_id": uuid.uuid4()}


for _label, _name, _method, _kwargs, _body in [
    ("worker: what it serves", "api-compute-worker", "get", None, None),
    ("worker: heartbeat", "api-compute-worker-heartbeat", "post", None, {"hostname": "h"}),
    ("worker: claim", "api-compute-job-claim", "post", _job, {"hostname": "h"}),
    ("worker: snapshot", "api-compute-job-snapshot", "get", _job, None),
    ("worker: job heartbeat", "api-compute-job-heartbeat", "post", _job, None),
    ("worker: report", "api-compute-job-report", "post", _job, {"stage": "running"}),
    ("worker: log", "api-compute-job-logs", "post", _job, {"offset": 0, "text": "x"}),
]:
    ROWS.append(
        Row(
            f"api: {_label}",
            _name,
            _method,
            everyone(401),
            kind="api",
            kwargs=_kwargs or (lambda s: {}),
            body=_body,
        )
    )
ROWS.append(
    Row(
        "api: worker: an output",
        "api-compute-job-artifact",
        "put",
        everyone(401),
        kind="api",
        kwargs=lambda s: {**_job(s), "path": "outputs/a.txt"},
        body=b"data",
    )
)
