"""The OpenAPI schema of /api/v1 is valid, and the API keeps to it.

schemathesis generates requests for every operation of the schema (valid ones and
invalid ones) and sends them in-process to the WSGI application with the token of
an owner who is also staff. Every answer must be no server error, carry the declared
content type and status code, and match the declared body schema. Each example runs in
a savepoint that is rolled back, so every request meets the same workspace tree (a fuzzed
DELETE cannot empty it for the next one) and a seed gives the same run every time. The
test's transaction never commits, so deletion jobs are written but never sent to Celery
(transaction.on_commit): nothing waits for a worker.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.cache import cache
from django.core.management import call_command
from django.core.signals import request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deployments.services import jobs, workers
from deployments.services.compute import compute_target_create
from deployments.services.environments import environment_register
from deployments.tests.access_images import schema_scope as images_scope
from deployments.tests.drift_support import drift_scope
from deployments.tests.factories import make_zip, submit
from deployments.tests.monitoring_support import telemetry_body, telemetry_token_for
from portal import services
from portal.models import DeletionJob
from portal.tests.factories import PASSWORD, UserFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Snapshots are uploaded as raw zip bytes: sent as schemathesis sends any binary body.
schemathesis.serializer.alias("application/zip", "application/octet-stream")

# Generated cases per operation (valid and invalid mixed): enough to reach every branch
# of the serializers, few enough for the whole API to run in well under a minute on two
# CPUs.
MAX_EXAMPLES = 25


def test_schema_is_valid_openapi_without_warnings(tmp_path):
    # --fail-on-warn: an undocumented view or an unresolvable field fails here, not later.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    text = (tmp_path / "schema.yaml").read_text()
    assert "bearerAuth" in text and "scheme: bearer" in text


@pytest.fixture
def wsgi_app(settings) -> Iterator[object]:
    """The Django WSGI application, served in the test's own transaction."""
    from django.core.handlers.wsgi import WSGIHandler

    settings.API_THROTTLE_RATE = "100000/min"
    settings.API_LOGIN_THROTTLE_RATE = "100000/min"
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    cache.clear()
    # As django.test.Client does: a request must not close the connection that holds the
    # test's transaction.
    request_started.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        cache.clear()


@pytest.fixture
def scope(cast, settings, tmp_path) -> dict[str, str]:
    """Real values for path parameters, so most requests reach the views' logic rather
    than a 404; the cast's owner is staff, so POST subscriptions is reachable too."""
    from tracking.tests.factories import make_experiment, make_run

    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")
    cast.owner.is_staff = True
    cast.owner.save()
    doomed = services.workspace_create(
        actor=cast.owner, resource_group=cast.resource_group, name="doomed"
    )
    job = services.deletion_job_request(actor=cast.owner, target=doomed, confirm_name="doomed")
    DeletionJob.objects.filter(pk=job.pk).update(status=DeletionJob.Status.FAILED)
    other, _ = services.token_create(user=cast.owner, name="another")
    # Someone to change and remove at every scope, so member PUT/DELETE reach the service.
    uma = UserFactory(username="uma")
    for level in (cast.subscription, cast.resource_group, cast.workspace):
        services.membership_grant(actor=cast.owner, scope=level, user=uma, role="reader")
    experiment = make_experiment(cast.workspace, "exp")
    run = make_run(experiment, "run", params={"a": 1}, metrics={"loss": [0.5, 0.4]})
    # Remote runs: a target without jobs (so DELETE reaches the service), an environment,
    # a stored snapshot and a queued job (whose run names it).
    gpu = compute_target_create(actor=cast.owner, workspace=cast.workspace, name="gpu")
    environment_register(actor=cast.owner, workspace=cast.workspace, name="team-env")
    remote_job = submit(cast, actor=cast.owner)
    _, raw = services.token_create(user=cast.owner, name="schemathesis")
    # A remote run claimed by a worker of `local`: the worker side's operations are
    # called with that worker's token (a claim with the same key is answered again).
    remote = submit(cast, actor=cast.owner)
    jobs.remote_job_claim(job_id=remote.pk, worker_hostname="node", claim_key="fuzz-key")
    _, worker_raw = workers.worker_token_create(actor=None, target=None, name="fuzz")
    gpu_token, _ = workers.worker_token_create(actor=cast.owner, target=gpu, name="node")
    # Drift monitors: one on the workspace's service, a dataset to create more from.
    drift = drift_scope(cast.workspace, cast.owner)
    # Images: one to read, a registered model version to build from.
    images = images_scope(cast.workspace, cast.owner)
    # Its scoring server's side: telemetry is posted with the service's telemetry token.
    telemetry_token = telemetry_token_for(cast.workspace, drift["service"])
    return {
        "telemetry_token": telemetry_token,
        "worker_token_id": str(gpu_token.pk),
        "worker_token": worker_raw,
        "remote_job_id": str(remote.pk),
        "token": raw,
        "subscription_id": str(cast.subscription.id),
        "resource_group": cast.resource_group.name,
        "workspace": cast.workspace.name,
        "username": uma.username,
        "job_id": str(job.pk),
        "token_id": str(other.pk),
        "experiment_id": str(experiment.pk),
        "run_id": run.run_uuid,
        "compute": "gpu",
        "environment": "team-env",
        "version": "1",
        "sha256": remote_job.snapshot_hash,
        "job_run_id": remote_job.run.run_uuid,
        **drift,
        **images,
    }


def _strategies(operation, real: dict[str, str]) -> list[tuple[st.SearchStrategy, int]]:
    """(cases, how many) for one operation: the real scope in the path, valid and invalid
    data; fully generated ones (mostly 404s); and, where success needs a value nothing
    random will hit (the exact name that confirms a deletion, a password), a few cases
    with that value, run on their own so that success is always checked."""
    names = re.findall(r"{(\w+)}", operation.path)
    if "/jobs/{run_id}" in operation.path:  # a remote run is named by its run's id
        real = {**real, "run_id": real["job_run_id"]}
    fixed = {name: real[name] for name in names if name in real} or None
    fuzz = [
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed),
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed),
    ]
    if names:
        fuzz.append(operation.as_strategy(GenerationMode.POSITIVE))
    runs = [(st.one_of(fuzz), MAX_EXAMPLES)]
    method, last = operation.method.upper(), names[-1] if names else None
    known: dict[str, object] = {}
    if operation.path == "/api/v1/login":
        known["body"] = {"username": "olivia", "password": PASSWORD}
    elif method == "DELETE" and last in ("workspace", "resource_group"):
        known["query"] = {"confirm": real[last]}
    elif method == "PATCH" and last == "resource_group":
        known["body"] = {"tags": {"team": "ml"}}
    elif method == "PUT" and last == "sha256":  # the bytes that have the path's hash
        known.update(body=make_zip(), media_type="application/zip")
    elif method == "POST" and operation.path.endswith("/jobs"):
        known["body"] = {
            "experiment_name": "fuzzed",
            "script": "train.py",
            "environment": "mlstudio-minimal",
            "snapshot_hash": real["sha256"],
        }
    elif method == "POST" and operation.path.endswith("/drift-monitors"):
        known["body"] = {
            "name": "fuzzed",
            "baseline": {"kind": "dataset", "dataset_id": real["drift_dataset_id"]},
        }
        known["media_type"] = "application/json"
    elif method == "POST" and operation.path.endswith("/images"):
        known["body"] = {"model_uri": real["image_model_uri"], "image_name": "fuzzed-img"}
        known["media_type"] = "application/json"
    elif method == "POST" and operation.path.endswith("/services"):
        # drift_scope's service runs the image drift-image:1 (built, so a deploy is accepted).
        known["body"] = {"name": "fuzzed-svc", "image": "drift-image:1"}
        known["media_type"] = "application/json"
    elif method == "POST" and operation.path.endswith("/backfill"):
        known["body"] = {"start": "2026-11-02", "end": "2026-11-04"}
    elif operation.path == "/api/v1/service-telemetry":
        known.update(body=telemetry_body(), media_type="application/json")
    elif operation.path.startswith("/api/v1/compute/"):
        known.update(COMPUTE_KNOWN.get(operation.path.removeprefix("/api/v1/compute/"), {}))
    if known:
        params = {**(fixed or {}), **known.pop("path_parameters", {})}
        good = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=params, **known)
        runs.append((good, 3))
    return runs


# What the worker side's operations need to succeed: values random data will not hit.
COMPUTE_KNOWN: dict[str, dict] = {
    "jobs/{remote_job_id}/claim": {"body": {"hostname": "node", "claim_key": "fuzz-key"}},
    "jobs/{remote_job_id}/report": {"body": {"stage": "running"}},
    "jobs/{remote_job_id}/logs": {"body": {"offset": 0, "text": "a line\n"}},
    "worker/heartbeat": {"body": {"hostname": "node", "slots": 2, "version": "1"}},
    "jobs/{remote_job_id}/artifacts/{path}": {"path_parameters": {"path": "outputs/model.txt"}},
}


def _fuzz(operation, real: dict[str, str], answered: dict[str, set[int]]) -> None:
    """Run one operation's examples; raises what schemathesis found. The worker side
    (/api/v1/compute) is called with a worker token, the rest with the owner's."""
    token = real["worker_token" if operation.path.startswith("/api/v1/compute/") else "token"]
    if operation.path == "/api/v1/service-telemetry":  # a scoring server's token
        token = real["telemetry_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for strategy, examples in _strategies(operation, real):

        @given(case=strategy)
        @hypothesis_settings(
            max_examples=examples,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            savepoint = transaction.savepoint()
            try:
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                answered.setdefault(operation.label, set()).add(response.status_code)
            finally:
                transaction.savepoint_rollback(savepoint)
                cache.clear()

        check()


def test_api_conforms_to_its_schema(wsgi_app, scope):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    assert all(op.path.startswith("/api/v1/") for op in operations)
    failures: list[str] = []
    answered: dict[str, set[int]] = {}
    started = time.monotonic()
    for operation in operations:
        try:
            _fuzz(operation, scope, answered)
        except Exception as exc:  # collect them all: one run shows every broken operation
            failures.append(f"{operation.label}: {exc}")
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    # Reaching the views' success path, not only their 404s and 400s, for every operation
    # of the tenancy and remote-run halves (the tracking half is tried as thoroughly, but
    # its data is sparse).
    tenancy = [op.label for op in operations if not re.search(r"/(experiments|runs)\b", op.path)]
    unreached = [label for label in tenancy if not any(200 <= s < 300 for s in answered[label])]
    assert not unreached, unreached
    print(f"schemathesis: {len(operations)} operations in {elapsed:.0f}s")


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_schema_and_docs_are_served_without_login(client, path):
    response = client.get(path)
    assert response.status_code == 200
    if path == "/api/schema/":
        assert b"bearerAuth" in response.content
    else:
        # Swagger UI and Redoc come from our own static files (the sidecar package), and
        # those files are really served.
        assets = re.findall(
            rb'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', response.content
        )
        assert assets, response.content[:500]
        assert b"cdn" not in response.content.lower()
        for asset in assets:
            assert client.get(asset.decode()).status_code == 200
