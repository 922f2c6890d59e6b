"""REST API v1: compute targets and environments, through the real HTTP layer (Bearer
tokens, access rules, the error handler, the serializers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.models import ComputeTarget, ComputeWorker
from deployments.tests.factories import submit
from portal.models import AuditEntry
from portal.tests.api import api, assert_error
from tracking.tests.api_v1 import isolate, send, url

TARGET_KEYS = {
    "name",
    "kind",
    "description",
    "max_nodes",
    "is_local",
    "queue",
    "queued",
    "running",
    "workers",
    "created_at",
    "created_by",
    "config",
    "has_kubeconfig",
}
ENVIRONMENT_KEYS = {
    "name",
    "version",
    "python_version",
    "pip_packages",
    "env_vars",
    "description",
    "spec_hash",
    "curated",
    "created_at",
    "created_by",
}


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path) -> None:
    isolate(settings, tmp_path)


# --- Compute targets ----------------------------------------------------------------------


def test_the_list_has_local_from_the_start(cast, settings) -> None:
    settings.COMPUTE_LOCAL_QUEUE = "celery"
    response = api(cast, "reader").get(url(cast, "api-computes"))
    assert response.status_code == 200
    (local,) = response.json()["compute_targets"]
    assert set(local) == TARGET_KEYS
    assert local == {
        **local,
        "name": "local",
        "kind": "celery",
        "is_local": True,
        "queue": "celery",
        "queued": 0,
        "running": 0,
        "workers": [],
        "created_by": None,
    }


def test_a_contributor_creates_changes_and_deletes_a_target(cast) -> None:
    client = api(cast, "contributor")
    body = {"name": "gpu-1", "max_nodes": 4, "description": "Two A100s"}
    response = send(client, "post", url(cast, "api-computes"), body)
    assert response.status_code == 201, response.content
    target = ComputeTarget.objects.get(name="gpu-1")
    assert response.json() == {
        **response.json(),
        "name": "gpu-1",
        "max_nodes": 4,
        "description": "Two A100s",
        "is_local": False,
        "queue": f"compute-{target.pk}",
        "created_by": "carlos",
    }
    names = [t["name"] for t in client.get(url(cast, "api-computes")).json()["compute_targets"]]
    assert names == ["gpu-1", "local"]
    # By name in any case; fields left out keep their value.
    response = send(client, "patch", url(cast, "api-compute", compute="GPU-1"), {"max_nodes": 2})
    assert response.status_code == 200
    assert (response.json()["max_nodes"], response.json()["description"]) == (2, "Two A100s")
    response = send(client, "patch", url(cast, "api-compute", compute="gpu-1"), {"description": ""})
    assert (response.json()["max_nodes"], response.json()["description"]) == (2, "")
    assert client.delete(url(cast, "api-compute", compute="gpu-1")).status_code == 204
    assert_error(client.get(url(cast, "api-compute", compute="gpu-1")), 404)
    # Audited by the services, as the caller: create, two updates, delete.
    actions = AuditEntry.objects.filter(actor_name="carlos", target_repr="gpu-1")
    assert sorted(actions.values_list("action", flat=True)) == [
        "create",
        "delete",
        "update",
        "update",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "name: This field is required."),
        ({"name": "9lives"}, "starting with a letter"),
        ({"name": "a"}, "2 to 24 characters"),
        ({"name": "has space"}, "letters, digits and hyphens"),
        ({"name": 5}, "name:"),
        ({"name": "gpu", "max_nodes": 0}, "max_nodes:"),
        ({"name": "gpu", "max_nodes": 101}, "max_nodes:"),
        ({"name": "gpu", "max_nodes": "many"}, "max_nodes:"),
        ({"name": "gpu", "description": "x" * 501}, "description:"),
    ],
)
def test_a_bad_target_is_a_clear_400(cast, body, message) -> None:
    response = send(api(cast), "post", url(cast, "api-computes"), body)
    assert message in assert_error(response, 400, "INVALID_PARAMETER_VALUE")["message"]
    assert not ComputeTarget.objects.exclude(name="local").exists()


def test_target_names_are_unique_in_any_case(cast) -> None:
    client = api(cast)
    assert send(client, "post", url(cast, "api-computes"), {"name": "gpu"}).status_code == 201
    for name in ("GPU", "Local"):
        response = send(client, "post", url(cast, "api-computes"), {"name": name})
        assert_error(response, 400, "RESOURCE_ALREADY_EXISTS")


def test_a_bad_change_is_a_400_and_changes_nothing(cast) -> None:
    client = api(cast)
    send(client, "post", url(cast, "api-computes"), {"name": "gpu", "max_nodes": 3})
    for body in ({"max_nodes": 0}, {"max_nodes": True}, {"description": 7}):
        response = send(client, "patch", url(cast, "api-compute", compute="gpu"), body)
        assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert ComputeTarget.objects.get(name="gpu").max_nodes == 3


def test_local_and_a_busy_target_cannot_be_deleted(cast) -> None:
    client = api(cast)
    send(client, "post", url(cast, "api-computes"), {"name": "gpu"})
    submit(cast, compute_name="gpu")
    response = client.delete(url(cast, "api-compute", compute="local"))
    assert "cannot be deleted" in assert_error(response, 400)["message"]
    response = client.delete(url(cast, "api-compute", compute="gpu"))
    assert "1 unfinished job" in assert_error(response, 400)["message"]
    assert ComputeTarget.objects.filter(name="gpu").exists()
    target = client.get(url(cast, "api-compute", compute="gpu")).json()
    assert (target["queued"], target["running"]) == (1, 0)


def test_unknown_names_are_404(cast) -> None:
    client = api(cast)
    for name in ("nowhere", "nul\x00name"):
        for method in ("get", "patch", "delete"):
            response = getattr(client, method)(url(cast, "api-compute", compute=name))
            assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_recent_workers_are_listed_with_whether_they_are_alive(cast) -> None:
    client = api(cast)
    send(client, "post", url(cast, "api-computes"), {"name": "gpu"})
    target = ComputeTarget.objects.get(name="gpu")
    now = timezone.now()
    for hostname, ago in (("fresh", 5), ("quiet", 90), ("gone", 3600)):
        ComputeWorker.objects.create(
            target=target,
            hostname=hostname,
            slots=2,
            version="0.1",
            last_seen=now - timedelta(seconds=ago),
        )
    workers = client.get(url(cast, "api-compute", compute="gpu")).json()["workers"]
    assert [(w["hostname"], w["slots"], w["version"], w["alive"]) for w in workers] == [
        ("fresh", 2, "0.1", True),
        ("quiet", 2, "0.1", False),
    ]


# --- Environments -------------------------------------------------------------------------


def _register(client, cast, **body):
    return send(client, "post", url(cast, "api-environments"), body)


def test_the_curated_environments_are_listed_from_the_start(cast) -> None:
    import mlflow

    response = api(cast, "reader").get(url(cast, "api-environments"))
    assert response.status_code == 200
    environments = response.json()["environments"]
    assert [e["name"] for e in environments] == ["mlstudio-minimal", "mlstudio-sklearn"]
    minimal = environments[0]
    assert set(minimal) == ENVIRONMENT_KEYS
    assert minimal == {
        **minimal,
        "version": 1,
        "python_version": None,
        "pip_packages": [f"mlflow=={mlflow.__version__}"],
        "env_vars": {},
        "curated": True,
        "created_by": None,
    }


def test_registering_makes_a_version_only_when_the_spec_changes(cast) -> None:
    client = api(cast, "contributor")
    spec = {
        "name": "team-env",
        "python_version": "3.11",
        "pip_packages": ["scikit-learn>=1.4", "mlflow"],
        "env_vars": {"OMP_NUM_THREADS": "1"},
        "description": "Ours",
    }
    first = _register(client, cast, **spec)
    assert first.status_code == 201, first.content
    assert set(first.json()) == ENVIRONMENT_KEYS
    assert first.json() == {
        **first.json(),
        "name": "team-env",
        "version": 1,
        "python_version": "3.11",
        "env_vars": {"OMP_NUM_THREADS": "1"},
        "curated": False,
        "created_by": "carlos",
    }
    again = _register(client, cast, **spec)
    assert again.status_code == 200 and again.json() == first.json()
    changed = _register(client, cast, **{**spec, "pip_packages": ["scikit-learn>=1.5"]})
    assert changed.status_code == 201 and changed.json()["version"] == 2
    listed = client.get(url(cast, "api-environments")).json()["environments"]
    assert [(e["name"], e["version"]) for e in listed] == [
        ("mlstudio-minimal", 1),
        ("mlstudio-sklearn", 1),
        ("team-env", 2),
    ]
    latest = client.get(url(cast, "api-environment", environment="team-env")).json()
    assert latest == changed.json()
    versions = client.get(url(cast, "api-environment-versions", environment="team-env"))
    assert [e["version"] for e in versions.json()["environments"]] == [2, 1]
    one = client.get(url(cast, "api-environment-version", environment="team-env", version="1"))
    assert one.json() == first.json()


def test_a_curated_environment_is_read_like_any_other(cast) -> None:
    client = api(cast, "reader")
    got = client.get(url(cast, "api-environment", environment="mlstudio-sklearn")).json()
    assert got["curated"] and any(p.startswith("scikit-learn") for p in got["pip_packages"])
    versions = client.get(url(cast, "api-environment-versions", environment="mlstudio-sklearn"))
    assert [e["version"] for e in versions.json()["environments"]] == [1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "name: This field is required."),
        ({"name": "mlstudio-mine"}, "reserved"),
        ({"name": "-dash"}, "starting with a letter or digit"),
        ({"name": "e", "pip_packages": "numpy"}, "pip_packages:"),
        ({"name": "e", "pip_packages": ["--index-url=http://x"]}, "Invalid environment"),
        ({"name": "e", "pip_packages": ["numpy", 3]}, "pip_packages:"),
        ({"name": "e", "python_version": "python3"}, "not a Python version"),
        ({"name": "e", "env_vars": {"A": 1}}, "env_vars:"),
        ({"name": "e", "env_vars": {"1BAD": "x"}}, "not an environment variable name"),
        ({"name": "e", "env_vars": ["A"]}, "env_vars:"),
    ],
)
def test_a_bad_environment_is_a_clear_400(cast, body, message) -> None:
    response = _register(api(cast), cast, **body)
    assert message in assert_error(response, 400, "INVALID_PARAMETER_VALUE")["message"]


def test_unknown_environments_and_versions_are_404(cast) -> None:
    client = api(cast)
    _register(client, cast, name="team-env")
    for name, kwargs in (
        ("api-environment", {"environment": "nope"}),
        ("api-environment", {"environment": "nul\x00"}),
        ("api-environment-versions", {"environment": "nope"}),
        ("api-environment-version", {"environment": "team-env", "version": "2"}),
        ("api-environment-version", {"environment": "team-env", "version": "0"}),
        ("api-environment-version", {"environment": "team-env", "version": "x"}),
        ("api-environment-version", {"environment": "team-env", "version": "\u0661"}),
        ("api-environment-version", {"environment": "team-env", "version": "9" * 30}),
    ):
        assert_error(client.get(url(cast, name, **kwargs)), 404, "RESOURCE_DOES_NOT_EXIST")
