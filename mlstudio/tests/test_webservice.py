"""Web services through the SDK and the CLI against a live server: deploy, look up, list,
keys, tokens, logs, update, delete, and a failed deployment followed to its error.

The deployment jobs are run in this process by portal's job machinery when a test needs
one to end (`run_jobs`): the real service layer and runtime, no worker process. The
whole path with a worker and a scoring server is tests/test_deploy_workflow.py."""

from __future__ import annotations

import json
import threading
import time

import pytest

from mlstudio import AuthorizationError, UserErrorException, Workspace
from mlstudio.exceptions import WebserviceException, WebserviceNotFound
from mlstudio.image import Image
from mlstudio.webservice import AciWebservice, AksWebservice, LocalWebservice, Webservice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def project(studio, sdk_env, monkeypatch):
    """config.json for the cast's workspace, the contributor's token, a built image row."""
    (sdk_env / "config.json").write_text(
        json.dumps(
            {
                "subscription_id": studio.subscription_id,
                "resource_group": "rg-main",
                "workspace_name": "ws-main",
                "server_url": studio.url,
            }
        )
    )
    monkeypatch.setenv("MLSTUDIO_TOKEN", studio.tokens["contributor"])
    built_image(studio.cast.workspace)
    return sdk_env


def built_image(workspace, version: int = 1):
    """An image row as a finished build leaves it, without its files: a deployment of it
    that reaches the runtime fails, which is what the failure test wants."""
    from deployments.models import Image as ImageRow

    return ImageRow.objects.create(
        workspace=workspace,
        name="sklearn-image",
        version=version,
        model_uri="models:/sklearn-model/1",
        model_name="sklearn-model",
        model_version=1,
        state=ImageRow.State.SUCCEEDED,
    )


def run_jobs(operation: str, timeout: float = 60) -> None:
    """Run the deployment jobs of `operation` here, as a worker would: wait for one to be
    queued, run every queued one, until none is left queued."""
    from deployments.models import DeploymentJob
    from portal.services.jobs import job_run

    jobs = DeploymentJob.objects.filter(operation=operation)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = list(jobs.filter(status="queued"))
        for job in queued:
            job_run(model_label=job._meta.label_lower, job_id=job.pk)
        if jobs.exists() and not jobs.filter(status="queued").exists():
            return
        time.sleep(0.2)
    raise AssertionError(f"no {operation} job was queued, or one stayed queued")


def deploy(ws, name: str = "diabetes-model-1", overwrite: bool = False) -> Webservice:
    config = AciWebservice.deploy_configuration(
        cpu_cores=1, memory_gb=1, tags={"method": "sklearn"}, description="Diabetes model"
    )
    return Webservice.deploy_from_image(
        workspace=ws,
        name=name,
        image=Image(ws, "sklearn-image"),
        deployment_config=config,
        overwrite=overwrite,
    )


def test_deploy_look_up_list_and_change_a_service(project, studio) -> None:
    from deployments.models import WebService
    from deployments.services.webservices import service_keys

    ws = Workspace.from_config()
    service = deploy(ws)
    assert isinstance(service, AciWebservice)
    assert (service.name, service.state, service.compute_type) == (
        "diabetes-model-1",
        "Transitioning",
        "ACI",
    )
    assert service.image_id == "sklearn-image:1" and service.image.version == 1
    assert service.tags == {"method": "sklearn"} and service.description == "Diabetes model"
    assert service.deployment["operation"] == "create"
    assert service.scoring_uri is None  # not healthy yet

    found = Webservice(ws, "diabetes-model-1")
    assert isinstance(found, AciWebservice) and found.serialize() == service.serialize()
    assert AciWebservice(ws, "diabetes-model-1").name == "diabetes-model-1"
    with pytest.raises(WebserviceException, match="of type ACI"):
        AksWebservice(ws, "diabetes-model-1")
    with pytest.raises(WebserviceNotFound):
        Webservice(ws, "nope")
    with pytest.raises(WebserviceException):  # the reference's except clause
        Webservice(ws, "nope")

    LocalWebservice  # noqa: B018 - a second kind, for the list filters
    Webservice.deploy_from_image(
        ws, "local-one", "sklearn-image:1", LocalWebservice.deploy_configuration(port=None)
    )
    assert [s.name for s in Webservice.list(ws)] == ["diabetes-model-1", "local-one"]
    assert [s.name for s in Webservice.list(ws, compute_type="ACI")] == ["diabetes-model-1"]
    assert [s.name for s in Webservice.list(ws, compute_type="Local")] == ["local-one"]
    assert [s.name for s in Webservice.list(ws, tags=[["method", "sklearn"]])] == [
        "diabetes-model-1"
    ]
    assert [s.name for s in Webservice.list(ws, image_name="sklearn-image")] == [
        "diabetes-model-1",
        "local-one",
    ]
    assert Webservice.list(ws, model_name="other") == []
    with pytest.raises(UserErrorException):
        Webservice.list(ws, compute_type="GPU")

    # Keys, as the studio keeps them; one replaced; a token.
    row = WebService.objects.get(name="diabetes-model-1")
    assert service.get_keys() == service_keys(service=row)
    primary, secondary = service.get_keys()
    service.regen_key("Primary")
    new_primary, same_secondary = service.get_keys()
    assert new_primary != primary and same_secondary == secondary
    with pytest.raises(UserErrorException):
        service.regen_key("Tertiary")
    token, refresh_by = service.get_token()
    assert token and refresh_by > time.time()
    assert isinstance(service.get_logs(num_lines=10), str)

    # Metadata changes at once, without a rollout.
    service.update(tags={"method": "sklearn", "stage": "prod"}, description="v1")
    assert service.tags == {"method": "sklearn", "stage": "prod"}
    again = Webservice(ws, "diabetes-model-1")
    assert again.description == "v1" and again.deployment["operation"] == "create"
    with pytest.raises(UserErrorException, match="does not take"):
        service.update(autoscale_max_replicas=3)
    with pytest.raises(UserErrorException, match="Nothing to update"):
        service.update()

    # A name that is taken, unless overwrite.
    from mlstudio import ConflictError

    with pytest.raises(ConflictError):
        deploy(ws)

    # Not while its create job runs; once that has ended (failed: the image row has no
    # files), overwrite rolls the new configuration out as an update.
    def overwrite() -> Webservice:
        return Webservice.deploy_from_image(
            ws,
            "diabetes-model-1",
            "sklearn-image:1",
            AciWebservice.deploy_configuration(cpu_cores=2, memory_gb=1),
            overwrite=True,
        )

    with pytest.raises(WebserviceException, match="in progress") as caught:
        overwrite()
    assert caught.value.status_code == 409
    run_jobs("create")
    overwritten = overwrite()
    assert overwritten.deployment_config["cpu_cores"] == 2
    assert overwritten.deployment["operation"] == "update"


def test_a_reader_sees_services_but_no_keys_or_tokens(project, studio) -> None:
    deploy(Workspace.from_config())
    reader_ws = studio.workspace("reader")
    service = Webservice(reader_ws, "diabetes-model-1")
    assert service.state == "Transitioning"
    assert [s.name for s in Webservice.list(reader_ws)] == ["diabetes-model-1"]
    assert isinstance(service.get_logs(), str)
    for call in (service.get_keys, service.get_token, lambda: service.regen_key("Primary")):
        with pytest.raises(AuthorizationError):
            call()
    with pytest.raises(AuthorizationError):
        service.update(description="mine now")
    with pytest.raises(AuthorizationError):
        deploy(reader_ws, name="readers-own")


def test_a_failed_deployment_raises_with_its_error(project, studio, capsys) -> None:
    ws = Workspace.from_config()
    service = deploy(ws)
    run_jobs("create")  # the image row has no files: the runtime cannot start it
    with pytest.raises(WebserviceException) as caught:
        service.wait_for_deployment(show_output=True, timeout_sec=60)
    assert service.state in {"Failed", "Unhealthy"}
    message = str(caught.value)
    assert f"current service state: {service.state}" in message
    assert service.error and service.error in message
    out = capsys.readouterr().out
    assert service.state in out


def test_wait_for_deployment_times_out_while_nothing_runs_the_job(project) -> None:
    service = deploy(Workspace.from_config())
    started = time.monotonic()
    with pytest.raises(WebserviceException, match="still Transitioning"):
        service.wait_for_deployment(timeout_sec=1.5)
    assert time.monotonic() - started < 10


def test_delete_waits_until_the_service_is_gone(project, monkeypatch) -> None:
    monkeypatch.setattr("mlstudio.webservice.DELETE_TIMEOUT", 60.0)
    ws = Workspace.from_config()
    service = deploy(ws)
    worker = threading.Thread(target=run_jobs, args=("delete",), daemon=True)
    worker.start()
    service.delete()
    worker.join(timeout=60)
    with pytest.raises(WebserviceNotFound):
        Webservice(ws, "diabetes-model-1")
    assert Webservice.list(ws) == []


# --- The CLI ----------------------------------------------------------------------------------


def test_the_service_commands(project, studio, cli, monkeypatch) -> None:
    from deployments.models import WebService
    from deployments.services.webservices import service_keys

    deploy(Workspace.from_config())
    listed = cli("service", "list")
    assert listed.code == 0, listed.err
    assert listed.out.split("\n")[0].split() == [
        "NAME",
        "TYPE",
        "STATE",
        "IMAGE",
        "SCORING",
        "URI",
        "UPDATED",
    ]
    assert "diabetes-model-1  ACI   Transitioning  sklearn-image:1" in listed.out
    assert cli("service", "list", "--compute-type", "AKS").out.count("\n") == 1
    as_json = cli("service", "list", "-o", "json").json
    assert [s["name"] for s in as_json] == ["diabetes-model-1"]

    shown = cli("service", "show", "diabetes-model-1")
    assert shown.code == 0 and "Transitioning" in shown.out and "sklearn-model:1" in shown.out
    assert cli("service", "show", "nope").code == 4

    keys = cli("service", "keys", "diabetes-model-1", "-o", "json")
    row = WebService.objects.get(name="diabetes-model-1")
    primary, secondary = service_keys(service=row)
    assert keys.json == {"primary_key": primary, "secondary_key": secondary}
    regen = cli("service", "keys", "diabetes-model-1", "--regenerate", "Secondary", "-o", "json")
    assert regen.json["primary_key"] == primary and regen.json["secondary_key"] != secondary

    logs = cli("service", "logs", "diabetes-model-1", "-n", "20")
    assert logs.code == 0, logs.err

    monkeypatch.setattr("mlstudio.webservice.DELETE_TIMEOUT", 60.0)
    refused = cli("service", "delete", "diabetes-model-1", stdin="wrong\n")
    assert refused.code == 5 and WebService.objects.filter(name="diabetes-model-1").exists()
    worker = threading.Thread(target=run_jobs, args=("delete",), daemon=True)
    worker.start()
    deleted = cli("service", "delete", "diabetes-model-1", "--yes")
    worker.join(timeout=60)
    assert deleted.code == 0, deleted.err
    assert "Deleted web service diabetes-model-1" in deleted.err
    assert not WebService.objects.exists()


def test_a_reader_cannot_see_keys_on_the_command_line(project, studio, cli, monkeypatch) -> None:
    deploy(Workspace.from_config())
    monkeypatch.setenv("MLSTUDIO_TOKEN", studio.tokens["reader"])
    result = cli("service", "keys", "diabetes-model-1")
    assert result.code == 3 and "mls_" not in result.out
    assert cli("service", "show", "diabetes-model-1").code == 0
