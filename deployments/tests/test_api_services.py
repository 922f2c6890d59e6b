"""REST API v1: web services through the real HTTP layer (Bearer tokens, access rules,
the error handler, the serializers) and the real service layer. The deployment jobs are
queued on commit, which these tests never reach: what a job does is tested with the
runtimes, and the whole path in tests/test_deploy_workflow.py."""

from __future__ import annotations

import pytest

from deployments.models import DeploymentJob, Image, WebService
from deployments.scoring.auth import verify_token
from deployments.services.webservices import service_deploy, service_keys
from portal import secrets, services
from portal.models import AuditEntry, TokenScope
from portal.services.jobs import job_run
from portal.tests.api import api, assert_error, bearer
from tracking.tests.api_v1 import isolate, send, url

SERVICE_KEYS = {
    "name",
    "compute_type",
    "compute_target",
    "image",
    "image_name",
    "image_version",
    "model",
    "state",
    "error",
    "scoring_uri",
    "swagger_uri",
    "auth_enabled",
    "description",
    "tags",
    "properties",
    "config",
    "deployment",
    "created_at",
    "created_by",
    "updated_at",
}
DEPLOY = {
    "name": "diabetes-model-1",
    "image": "sklearn-image:1",
    "compute_type": "aci",
    "config": {"cpu_cores": 1, "memory_gb": 1},
    "tags": {"method": "sklearn"},
    "description": "Diabetes model",
}


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path) -> None:
    isolate(settings, tmp_path)


def built_image(workspace, name: str = "sklearn-image", version: int = 1) -> Image:
    """An image row as a finished build leaves it (the build itself is the images tests')."""
    return Image.objects.create(
        workspace=workspace,
        name=name,
        version=version,
        model_uri="models:/sklearn-model/1",
        model_name="sklearn-model",
        model_version=version,
        state=Image.State.SUCCEEDED,
    )


def deployed(cast, name: str = "svc-one", **kwargs) -> WebService:
    image = kwargs.pop("image", None) or Image.objects.filter(workspace=cast.workspace).first()
    image = image or built_image(cast.workspace)
    return service_deploy(
        actor=cast.owner,
        workspace=cast.workspace,
        name=name,
        image=image,
        compute_type=kwargs.pop("compute_type", "aci"),
        config=kwargs.pop("config", {"cpu_cores": 0.5, "memory_gb": 0.5}),
        **kwargs,
    )


def svc_url(cast, service: str, suffix: str = "") -> str:
    name = f"api-service-{suffix}" if suffix else "api-service"
    return url(cast, name, service=service)


# --- Deploy, list, get ------------------------------------------------------------------------


def test_a_contributor_deploys_and_a_reader_sees_it_without_keys(cast) -> None:
    built_image(cast.workspace)
    response = send(api(cast, "contributor"), "post", url(cast, "api-services"), DEPLOY)
    assert response.status_code == 202, response.content[:500]
    body = response.json()
    assert set(body) == SERVICE_KEYS
    assert body == {
        **body,
        "name": "diabetes-model-1",
        "compute_type": "aci",
        "compute_target": None,
        "image": "sklearn-image:1",
        "image_name": "sklearn-image",
        "image_version": 1,
        "model": {"name": "sklearn-model", "version": 1},
        "state": "Transitioning",
        "auth_enabled": True,
        "description": "Diabetes model",
        "tags": {"method": "sklearn"},
        "created_by": "carlos",
    }
    assert body["config"]["cpu_cores"] == 1 and body["config"]["memory_gb"] == 1
    assert body["deployment"]["operation"] == "create"
    assert body["deployment"]["status"] in {"queued", "running"}
    service = WebService.objects.get(name="diabetes-model-1")
    assert DeploymentJob.objects.filter(service=service).count() == 1
    assert AuditEntry.objects.filter(actor=cast.contributor).exists()

    primary, secondary = service_keys(service=service)
    reader = api(cast, "reader")
    for response in (
        reader.get(url(cast, "api-services")),
        reader.get(svc_url(cast, "diabetes-model-1")),
        reader.get(svc_url(cast, "diabetes-model-1", "logs")),
    ):
        assert response.status_code == 200, response.content[:300]
        text = response.content.decode()
        # No key, no token secret, no runtime internals in anything a reader gets.
        for secret in (primary, secondary, service.token_secret, service.telemetry_token):
            assert secret and secret not in text
    (listed,) = reader.get(url(cast, "api-services")).json()["services"]
    assert listed == reader.get(svc_url(cast, "diabetes-model-1")).json()


def test_deploy_refusals(cast) -> None:
    built_image(cast.workspace)
    client = api(cast, "contributor")
    cases = [
        ({**DEPLOY, "name": "Bad_Name"}, "name: A service name has 3 to 32"),
        ({**DEPLOY, "name": "ab"}, "name:"),
        ({**DEPLOY, "name": "ends-with-"}, "name:"),
        ({**DEPLOY, "image": "nope:1"}, "image:"),
        ({**DEPLOY, "image": "sklearn-image:x"}, "image:"),
        ({**DEPLOY, "compute_type": "gpu"}, "compute_type:"),
        ({**DEPLOY, "tags": {"a": 1}}, "tags"),
        ({**DEPLOY, "compute_type": "kubernetes"}, None),  # no compute target
        ({**DEPLOY, "compute_target": "nowhere"}, "compute_target:"),
    ]
    for body, words in cases:
        response = send(client, "post", url(cast, "api-services"), body)
        error = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
        if words:
            assert words in error["message"], (body, error)
    assert not WebService.objects.exists()

    assert send(client, "post", url(cast, "api-services"), DEPLOY).status_code == 202
    again = send(client, "post", url(cast, "api-services"), DEPLOY)
    assert_error(again, 400, "RESOURCE_ALREADY_EXISTS")


def test_an_image_by_name_is_its_newest_version(cast) -> None:
    built_image(cast.workspace, version=1)
    built_image(cast.workspace, version=2)
    body = {**DEPLOY, "image": "sklearn-image"}
    response = send(api(cast, "contributor"), "post", url(cast, "api-services"), body)
    assert response.status_code == 202, response.content[:300]
    assert response.json()["image"] == "sklearn-image:2"


def test_list_filters(cast) -> None:
    image = built_image(cast.workspace)
    other = built_image(cast.workspace, name="other-image")
    deployed(cast, "svc-a", image=image, tags={"stage": "prod"})
    deployed(cast, "svc-b", image=other, tags={"stage": "dev"}, compute_type="local", config={})
    client = api(cast, "reader")

    def names(**query) -> list[str]:
        response = client.get(url(cast, "api-services", query=query))
        assert response.status_code == 200, response.content[:300]
        return [s["name"] for s in response.json()["services"]]

    assert names() == ["svc-a", "svc-b"]
    assert names(compute_type="local") == ["svc-b"]
    assert names(image_name="other-image") == ["svc-b"]
    assert names(image="sklearn-image:1") == ["svc-a"]
    assert names(image="sklearn-image:2") == []
    assert names(tag="stage") == ["svc-a", "svc-b"]
    assert names(tag="stage=prod") == ["svc-a"]
    assert_error(client.get(url(cast, "api-services", query={"compute_type": "x"})), 400)


def test_a_missing_service_is_a_404_in_the_api_shape(cast) -> None:
    client = api(cast, "owner")
    for suffix, method in (("", "get"), ("", "patch"), ("", "delete"), ("keys", "get")):
        response = send(
            client, method, svc_url(cast, "nope", suffix), {} if method == "patch" else None
        )
        assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


# --- Keys and tokens: contributors only -----------------------------------------------------


def test_keys_are_for_contributors_only(cast) -> None:
    service = deployed(cast)
    primary, secondary = service_keys(service=service)
    assert primary != secondary
    for who in ("owner", "contributor"):
        response = api(cast, who).get(svc_url(cast, "svc-one", "keys"))
        assert response.json() == {"primary_key": primary, "secondary_key": secondary}
    assert_error(api(cast, "reader").get(svc_url(cast, "svc-one", "keys")), 403)
    assert_error(api(cast, "outsider").get(svc_url(cast, "svc-one", "keys")), 404)
    # The owner's own tokens, when they cannot write, see no keys either.
    read_scoped = api(cast, "owner", scope=TokenScope.READ)
    assert_error(read_scoped.get(svc_url(cast, "svc-one", "keys")), 403, "PERMISSION_DENIED")
    _, raw = services.tracking_token_mint(user=cast.owner, workspace=cast.workspace)
    tracking = bearer(raw)
    assert_error(tracking.get(svc_url(cast, "svc-one", "keys")), 403, "PERMISSION_DENIED")
    assert_error(tracking.post(svc_url(cast, "svc-one", "token")), 403, "PERMISSION_DENIED")
    assert tracking.get(svc_url(cast, "svc-one")).status_code == 200


def test_regen_key_replaces_one_key(cast) -> None:
    service = deployed(cast)
    primary, secondary = service_keys(service=service)
    client = api(cast, "contributor")
    response = send(client, "post", svc_url(cast, "svc-one", "regen-key"), {"key": "Primary"})
    assert response.status_code == 200, response.content[:300]
    keys = response.json()
    assert keys["primary_key"] != primary and keys["secondary_key"] == secondary
    service.refresh_from_db()
    assert service_keys(service=service) == (keys["primary_key"], secondary)
    response = send(client, "post", svc_url(cast, "svc-one", "regen-key"), {"key": "Secondary"})
    assert response.json()["secondary_key"] != secondary
    bad = send(client, "post", svc_url(cast, "svc-one", "regen-key"), {"key": "tertiary"})
    assert_error(bad, 400, "INVALID_PARAMETER_VALUE")
    reader = send(
        api(cast, "reader"), "post", svc_url(cast, "svc-one", "regen-key"), {"key": "Primary"}
    )
    assert_error(reader, 403)


def test_a_token_is_one_the_scoring_server_accepts(cast) -> None:
    service = deployed(cast)
    response = api(cast, "contributor").post(svc_url(cast, "svc-one", "token"))
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert set(body) == {"access_token", "token_type", "refresh_by"}
    assert body["token_type"] == "Bearer"
    secret = secrets.decrypt(WebService.objects.get(pk=service.pk).token_secret)
    assert verify_token(secret, "svc-one", body["access_token"])
    assert not verify_token(secret, "svc-two", body["access_token"])
    assert_error(api(cast, "reader").post(svc_url(cast, "svc-one", "token")), 403)


# --- Update, delete, logs ---------------------------------------------------------------------


def test_metadata_changes_at_once_and_an_image_rolls_out(cast) -> None:
    deployed(cast, tags={"a": "1"})
    client = api(cast, "contributor")
    jobs = DeploymentJob.objects.filter(service__name="svc-one")
    response = send(
        client, "patch", svc_url(cast, "svc-one"), {"tags": {"b": "2"}, "description": "v1"}
    )
    assert response.status_code == 200, response.content[:300]
    assert response.json()["tags"] == {"b": "2"} and response.json()["description"] == "v1"
    assert jobs.count() == 1

    built_image(cast.workspace, version=2)
    change = {"image": "sklearn-image:2"}
    # Not while its create job has not ended.
    busy = send(client, "patch", svc_url(cast, "svc-one"), change)
    assert_error(busy, 409, "RESOURCE_CONFLICT")
    # Its create job, run here, fails (the image row has no files): the service can be
    # mended with another image.
    created = job_run(model_label="deployments.deploymentjob", job_id=jobs.get().pk)
    assert created.status == "failed", created.error
    assert WebService.objects.get(name="svc-one").state == "Failed"
    failed = client.get(svc_url(cast, "svc-one")).json()
    assert failed["error"] and failed["deployment"]["error"]
    response = send(client, "patch", svc_url(cast, "svc-one"), change)
    assert response.status_code == 202, response.content[:300]
    body = response.json()
    assert body["deployment"]["operation"] == "update"
    assert body["deployment"]["image"] == "sklearn-image:2"
    assert jobs.count() == 2
    bad = send(client, "patch", svc_url(cast, "svc-one"), {"image": "missing:1"})
    assert_error(bad, 400, "INVALID_PARAMETER_VALUE")
    reader = send(api(cast, "reader"), "patch", svc_url(cast, "svc-one"), {"description": "x"})
    assert_error(reader, 403)


def test_delete_answers_the_service_deleting(cast) -> None:
    deployed(cast)
    assert_error(api(cast, "reader").delete(svc_url(cast, "svc-one")), 403)
    response = api(cast, "contributor").delete(svc_url(cast, "svc-one"))
    assert response.status_code == 202, response.content[:300]
    body = response.json()
    assert body["state"] == "Deleting" and body["deployment"]["operation"] == "delete"


def test_logs(cast) -> None:
    deployed(cast)
    client = api(cast, "reader")
    response = client.get(svc_url(cast, "svc-one", "logs"))
    assert response.status_code == 200, response.content[:300]
    assert isinstance(response.json()["logs"], str)
    for bad in ("0", "x", "50001"):
        response = client.get(svc_url(cast, "svc-one", "logs") + f"?num_lines={bad}")
        assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_names_of_another_workspace_are_404(cast) -> None:
    """The owner of both workspaces still cannot reach one's services through the other's
    URL."""
    services.membership_grant(
        actor=cast.outsider, scope=cast.other_workspace, user=cast.owner, role="owner"
    )
    theirs = built_image(cast.other_workspace)
    service_deploy(
        actor=cast.owner,
        workspace=cast.other_workspace,
        name="theirs",
        image=theirs,
        compute_type="aci",
        config={},
    )
    client = api(cast, "owner")
    for suffix in ("", "keys", "logs"):
        assert_error(client.get(svc_url(cast, "theirs", suffix)), 404)
    # Nor deploy their image from here.
    body = {**DEPLOY, "image": "sklearn-image:1"}
    assert_error(send(client, "post", url(cast, "api-services"), body), 400)
