"""Web-service services without running a service: the rules (names, configurations,
images, targets, ports), secrets at rest, tokens, updates and deletes as jobs, a job that
fails with no service host, failures recorded on the service, the registrations.

Real processes (scoring, updates under load, restarts, purge) are test_service_host.py."""

from __future__ import annotations

import hashlib
import socket
import time

import pytest

from deployments.models import ComputeTarget, DeploymentJob, Image, WebService
from deployments.runtimes import local, runtime_for
from deployments.runtimes.local import LocalRuntime
from deployments.scoring.auth import hash_key, verify_token
from deployments.selectors_services import webservice_get, webservice_list
from deployments.services import webservices as svc
from portal import registry, secrets
from portal.errors import AlreadyExists, InvalidParameter, NotFound
from portal.models import AuditEntry, Job
from portal.services.jobs import job_run


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path) -> None:
    settings.DATA_DIR = tmp_path / "data"


def make_image(cast, version: int = 1, state: str = Image.State.SUCCEEDED) -> Image:
    return Image.objects.create(
        workspace=cast.workspace,
        name="sklearn-image",
        version=version,
        model_uri="models:/sklearn-model/1",
        model_name="sklearn-model",
        model_version=1,
        state=state,
    )


def deploy(cast, name: str = "diabetes-1", **options) -> WebService:
    if "image" not in options:
        options["image"] = make_image(cast)
    options.setdefault("compute_type", "aci")
    options.setdefault("config", {"cpu_cores": 0.5, "memory_gb": 1})
    return svc.service_deploy(
        actor=cast.contributor, workspace=cast.workspace, name=name, **options
    )


def test_names_configurations_and_images_are_checked(cast):
    for bad in ("ab", "a" * 33, "1abc", "abc-", "Abc", "a_bc", "a bc", None, 5):
        with pytest.raises(InvalidParameter, match="Invalid service name"):
            svc.check_service_name(bad)
    for good in ("abc", "a-b-c", "diabetes-model-1", "x" * 32):
        assert svc.check_service_name(good) == good
    image = make_image(cast)
    bad_configs = [
        ({"cpu_cores": 0}, "cpu_cores"),
        ({"cpu_cores": "1"}, "cpu_cores"),
        ({"memory_gb": -1}, "memory_gb"),
        ({"memory_gb": float("nan")}, "memory_gb"),
        ({"port": 70000}, "port"),
        ({"port": True}, "port"),
        ({"autoscale_enabled": True}, "not known for a aci service"),
        ("cpu", "config must be an object"),
    ]
    for config, message in bad_configs:
        with pytest.raises(InvalidParameter, match=message):
            deploy(cast, image=image, config=config)
    with pytest.raises(InvalidParameter, match="compute_type"):
        deploy(cast, image=image, compute_type="gpu")
    with pytest.raises(InvalidParameter, match="compute target of kind kubernetes"):
        deploy(cast, image=image, compute_type="kubernetes", config={})
    local_target = ComputeTarget.objects.create(workspace=cast.workspace, name="cpu")
    with pytest.raises(InvalidParameter, match="no compute target"):
        deploy(cast, image=image, compute_target=local_target)
    building = make_image(cast, version=2, state=Image.State.RUNNING)
    with pytest.raises(InvalidParameter, match="is not built"):
        deploy(cast, image=building)
    with pytest.raises(InvalidParameter, match="tags"):
        deploy(cast, image=image, tags={"k": ["list"]})
    assert not WebService.objects.exists()

    k8s = svc.check_config("kubernetes", {"autoscale_enabled": True, "autoscale_max_replicas": 3})
    assert k8s == {"autoscale_enabled": True, "autoscale_max_replicas": 3}
    with pytest.raises(InvalidParameter, match="autoscale_min_replicas is above"):
        svc.check_config("kubernetes", {"autoscale_min_replicas": 4, "autoscale_max_replicas": 3})
    assert svc.check_config("local", {"port": 32100, "cpu_cores": None}) == {"port": 32100}


def test_deploy_makes_encrypted_keys_a_job_and_an_audit_entry(cast):
    service = deploy(cast, tags={"method": "sklearn"}, description="Diabetes")
    assert service.state == WebService.State.TRANSITIONING
    primary, secondary = svc.service_keys(service=service)
    assert primary and secondary and primary != secondary
    # At rest: encrypted, never the key itself.
    for stored, plain in ((service.primary_key, primary), (service.secondary_key, secondary)):
        assert plain not in stored and secrets.decrypt(stored) == plain
    telemetry = secrets.decrypt(service.telemetry_token)
    assert service.telemetry_token_hash == hashlib.sha256(telemetry.encode()).hexdigest()
    token, refresh_by = svc.service_token(service=service)
    assert verify_token(secrets.decrypt(service.token_secret), service.name, token)
    assert not verify_token(secrets.decrypt(service.token_secret), "other", token)
    assert time.time() < refresh_by < time.time() + svc.TOKEN_TTL_S
    job = DeploymentJob.objects.get(service=service)
    assert (job.kind, job.operation, job.image_id, job.status) == (
        "deployment",
        "create",
        service.image_id,
        Job.Status.QUEUED,
    )
    assert AuditEntry.objects.filter(action="create", target_id=str(service.pk)).exists()
    with pytest.raises(AlreadyExists):
        deploy(cast, image=service.image)
    # The selectors.
    assert list(webservice_list(cast.workspace)) == [service]
    assert webservice_get(cast.workspace, "diabetes-1") == service
    with pytest.raises(NotFound):
        webservice_get(cast.workspace, "nope")
    with pytest.raises(NotFound):
        webservice_get(cast.other_workspace, "diabetes-1")
    # The config file's key fields: hashes only.
    fields = local.key_fields(service)
    assert fields["key_hashes"] == [hash_key(primary), hash_key(secondary)]
    assert primary not in str(fields)


def test_a_fixed_port_that_is_taken_is_refused(cast):
    image = make_image(cast)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(svc.PortTaken, match=f"Port {port} is in use") as caught:
            deploy(cast, image=image, compute_type="local", config={"port": port})
        assert caught.value.http_status == 409
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    first = deploy(cast, image=image, compute_type="local", config={"port": free})
    with pytest.raises(svc.PortTaken, match="another web service"):
        deploy(cast, name="second", image=first.image, compute_type="local", config={"port": free})
    with pytest.raises(InvalidParameter, match="1024"):
        deploy(cast, name="third", image=first.image, compute_type="local", config={"port": 80})


def test_updates_deletes_and_key_regeneration(cast):
    service = deploy(cast)
    DeploymentJob.objects.filter(service=service).update(status=Job.Status.SUCCEEDED)
    WebService.objects.filter(pk=service.pk).update(state=WebService.State.HEALTHY)
    service.refresh_from_db()
    # Metadata changes at once, without a job.
    updated = svc.service_update(
        actor=cast.contributor, service=service, description="New", tags={"a": "b"}
    )
    assert (updated.description, updated.tags, updated.state) == ("New", {"a": "b"}, "Healthy")
    assert DeploymentJob.objects.filter(service=service).count() == 1
    # A new image rolls out in an update job; a second one waits for it.
    image2 = make_image(cast, version=2)
    updated = svc.service_update(actor=cast.contributor, service=service, image=image2)
    job = DeploymentJob.objects.filter(service=service, operation="update").get()
    assert job.image_id == image2.pk and updated.state == WebService.State.TRANSITIONING
    assert updated.image_id == service.image_id  # the old one serves until the new is healthy
    with pytest.raises(svc.ServiceBusy):
        svc.service_update(actor=cast.contributor, service=service, config={"cpu_cores": 2})
    with pytest.raises(InvalidParameter, match=r"config\.port cannot change"):
        svc.service_update(actor=cast.contributor, service=service, config={"port": 40000})
    # Keys: one replaced, the other kept; an audit entry; a bad name refused.
    before = svc.service_keys(service=service)
    svc.service_regen_key(actor=cast.contributor, service=service, key="Secondary")
    service.refresh_from_db()
    after = svc.service_keys(service=service)
    assert after[0] == before[0] and after[1] != before[1]
    with pytest.raises(InvalidParameter):
        svc.service_regen_key(actor=cast.contributor, service=service, key="Tertiary")
    # Delete: Deleting at once; asking again gives the same job.
    first = svc.service_delete(actor=cast.contributor, service=service)
    second = svc.service_delete(actor=cast.contributor, service=service)
    assert first.pk == second.pk and first.operation == "delete"
    service.refresh_from_db()
    assert service.state == WebService.State.DELETING
    with pytest.raises(svc.ServiceBusy):
        svc.service_update(actor=cast.contributor, service=service, image=image2)
    actions = set(
        AuditEntry.objects.filter(target_id=str(service.pk)).values_list("action", flat=True)
    )
    assert {"create", "update", "regen_key", "delete"} <= actions


def test_a_deployment_with_no_service_host_fails_on_the_service(cast, monkeypatch, settings):
    monkeypatch.setattr(local, "HOST_STALE_S", 0.5)
    service = deploy(cast)
    job = DeploymentJob.objects.get(service=service)
    job_run(model_label="deployments.deploymentjob", job_id=job.pk)
    job.refresh_from_db()
    service.refresh_from_db()
    assert job.status == Job.Status.FAILED and "No service host is running" in job.error
    assert job.attempts == 1  # a domain error: not retried
    assert service.state == WebService.State.FAILED and "service_host" in service.error
    assert str(settings.DATA_DIR) not in service.error
    assert "desired" not in service.runtime_state  # nothing asked of a host that is not there
    # Delete works without a host: nothing runs, the row goes.
    job = svc.service_delete(actor=cast.contributor, service=service)
    job_run(model_label="deployments.deploymentjob", job_id=job.pk)
    assert not WebService.objects.filter(pk=service.pk).exists()


def test_registrations(cast):
    names = [step.name for step in registry.purge_steps()]
    assert (
        names.index("deployments-remote-runs")
        < names.index("deployments-web-services")
        < names.index("deployments-images")
        < names.index("tracking")
    )
    kind = registry.job_kind("deployment")
    assert kind.model is DeploymentJob and kind.on_fail is svc.deployment_failed
    found: dict = {}
    for extra in registry.call_hook("studio_processes", studio_url="http://127.0.0.1:8000"):
        found.update(extra)
    argv, env = found["service_host"]
    assert argv[-3:] == ["service_host", "--studio-url", "http://127.0.0.1:8000"]
    assert env is None  # the studio's own environment: the host reads its database
    service = deploy(cast)
    assert isinstance(runtime_for(service), LocalRuntime)
    assert local.endpoint_for(31234).scoring_uri == "http://127.0.0.1:31234/score"
