"""The `kubernetes` runtime: manifests rendered and validated offline (kubernetes-validate),
then applied with the official client to kmock's API-server emulator over HTTP, whose
Deployments the test's `Controllers` roll out as a cluster would (kube_emulator.py)."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid

import pytest

from deployments.models import ComputeTarget, DeploymentJob, Image, WebService
from deployments.runtimes import kubernetes as kube_runtime
from deployments.runtimes import runtime_for
from deployments.runtimes.base import RuntimeError_
from deployments.runtimes.k8s import manifests
from deployments.runtimes.kubernetes import KubernetesRuntime
from deployments.scoring.auth import hash_key
from deployments.services.compute import compute_target_create
from deployments.services.webservices import (
    service_deploy,
    service_keys,
    service_regen_key,
    service_update,
)
from deployments.tests.kube_emulator import TOKEN, Controllers, Emulator
from portal import secrets
from portal.models import Job
from portal.services.jobs import job_run


@pytest.fixture
def cluster():
    """A cluster of its own per test (starting one takes milliseconds)."""
    emulator = Emulator()
    controllers = Controllers(emulator.kubeconfig())
    controllers.start()
    emulator.controllers = controllers
    yield emulator
    controllers.stop()
    emulator.close()


@pytest.fixture(autouse=True)
def _fast(monkeypatch, settings) -> None:
    # Rollouts are read every 50 ms here (2 s against a real cluster).
    monkeypatch.setattr(kube_runtime, "POLL_S", 0.05)
    settings.SITE_URL = "http://studio.example.com"


@pytest.fixture
def namespace() -> str:
    return f"ml-{uuid.uuid4().hex[:8]}"


def make_target(cast, cluster, namespace: str, name: str = "aks-prod", **config) -> ComputeTarget:
    return compute_target_create(
        actor=cast.owner,
        workspace=cast.workspace,
        name=name,
        kind="kubernetes",
        kubeconfig=cluster.kubeconfig(),
        config={"namespace": namespace, **config},
    )


def pushed_image(cast, version: int = 1) -> Image:
    """An image row as a build with Docker and IMAGE_REGISTRY leaves it."""
    tag = f"mlstudio/ws-main-{cast.workspace.pk}-sklearn-image:{version}"
    return Image.objects.create(
        workspace=cast.workspace,
        name="sklearn-image",
        version=version,
        model_uri="models:/sklearn-model/1",
        model_name="sklearn-model",
        model_version=1,
        state=Image.State.SUCCEEDED,
        docker_tag=tag,
        image_location=f"registry.example.com/{tag}",
    )


def deploy_row(cast, target, image, name: str = "diabetes-aks", **config) -> WebService:
    return service_deploy(
        actor=cast.owner,
        workspace=cast.workspace,
        name=name,
        image=image,
        compute_type="kubernetes",
        compute_target=target,
        config=config,
    )


def ws_tag(cast) -> str:
    return cast.workspace.pk.hex[:8]


def run_jobs(service: WebService) -> DeploymentJob:
    """Run the service's unfinished deployment jobs as a worker would; the last one."""
    job = None
    for job in DeploymentJob.objects.filter(service=service, status__in=Job.UNFINISHED):
        job_run(model_label="deployments.deploymentjob", job_id=job.pk)
        job.refresh_from_db()
    assert job is not None
    return job


class Progress:
    def __init__(self) -> None:
        self.phases: list[str] = []
        self.units = 0

    def __call__(self, units: int, phase: str) -> None:
        self.units += units
        self.phases.append(phase)


# --- Manifests ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_manifests_with_autoscale_and_ingress_are_valid(cast, cluster, namespace) -> None:
    target = make_target(
        cast,
        cluster,
        namespace,
        service_type="LoadBalancer",
        ingress_class="nginx",
        ingress_domain="ml.example.com",
        ingress_tls_secret="wildcard-tls",
        image_pull_secret="registry-creds",
    )
    service = deploy_row(
        cast,
        target,
        pushed_image(cast),
        cpu_cores=0.5,
        memory_gb=1.5,
        autoscale_enabled=True,
        autoscale_min_replicas=2,
        autoscale_max_replicas=6,
        autoscale_target_utilization=60,
    )
    rendered = manifests.render(service, service.image, target)
    assert [m["kind"] for m in rendered.manifests] == [
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "Ingress",
    ]
    manifests.validate(rendered.manifests, "1.30")
    manifests.validate(rendered.manifests, "1.37")
    name = f"mls-diabetes-aks-{ws_tag(cast)}"
    assert rendered.name == name and rendered.namespace == namespace

    deployment = rendered.of_kind("Deployment")
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == service.image.image_location
    assert container["command"] == [
        "python",
        "-m",
        "mlstudio_scoring",
        "--config",
        "/etc/mlstudio/service.json",
        "--host",
        "0.0.0.0",  # noqa: S104
        "--port",
        "5001",
    ]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1536Mi"},
        "limits": {"cpu": "500m", "memory": "1536Mi"},
    }
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert pod["imagePullSecrets"] == [{"name": "registry-creds"}]
    assert pod["volumes"][0]["secret"]["secretName"] == f"{name}-config"

    hpa = rendered.of_kind("HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert rendered.of_kind("Service")["spec"]["type"] == "LoadBalancer"
    ingress = rendered.of_kind("Ingress")["spec"]
    host = f"diabetes-aks-{ws_tag(cast)}.ml.example.com"
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["rules"][0]["host"] == host
    assert ingress["tls"] == [{"hosts": [host], "secretName": "wildcard-tls"}]

    # The scoring server's config: hashes of the keys, never the keys.
    config = json.loads(rendered.of_kind("Secret")["stringData"]["service.json"])
    primary, secondary = service_keys(service=service)
    assert config["key_hashes"] == [hash_key(primary), hash_key(secondary)]
    assert primary not in json.dumps(rendered.manifests)
    assert config["telemetry_url"] == "http://studio.example.com/api/v1/service-telemetry"
    assert config["model_dir"] == "/app/model" and config["auth_enabled"] is True


@pytest.mark.django_db
def test_manifests_without_autoscale_or_ingress(cast, cluster, namespace) -> None:
    target = make_target(cast, cluster, namespace)
    service = deploy_row(cast, target, pushed_image(cast), num_replicas=3)
    rendered = manifests.render(service, service.image, target)
    assert [m["kind"] for m in rendered.manifests] == ["Secret", "Deployment", "Service"]
    manifests.validate(rendered.manifests)
    deployment = rendered.of_kind("Deployment")
    assert deployment["spec"]["replicas"] == 3
    # The reference's AKS defaults: 0.1 CPU, 0.5 GB.
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "100m",
        "memory": "512Mi",
    }
    assert rendered.of_kind("Service")["spec"]["type"] == "ClusterIP"


@pytest.mark.django_db
def test_a_broken_manifest_is_rejected_with_a_readable_message(cast, cluster, namespace) -> None:
    target = make_target(cast, cluster, namespace)
    service = deploy_row(cast, target, pushed_image(cast))
    rendered = manifests.render(service, service.image, target)

    unknown = copy.deepcopy(rendered.manifests)
    unknown[1]["spec"]["template"]["spec"]["containers"][0]["port"] = 5001  # strict: no such
    with pytest.raises(manifests.ManifestInvalid) as caught:
        manifests.validate(unknown)
    message = str(caught.value)
    assert message.startswith(f"Deployment {rendered.name} is not valid for Kubernetes 1.30")
    assert "spec.template.spec.containers.0" in message and "'port'" in message

    wrong_type = copy.deepcopy(rendered.manifests)
    wrong_type[3 - 1]["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(manifests.ManifestInvalid, match=r"Service .* at spec\.ports\.0\.port"):
        manifests.validate(wrong_type)

    # A Secret's error does not show the offending value.
    secret = copy.deepcopy(rendered.manifests)
    secret[0]["stringData"]["service.json"] = {"token_secret": "s3cr3t-value"}
    with pytest.raises(manifests.ManifestInvalid) as caught:
        manifests.validate(secret)
    assert "s3cr3t-value" not in str(caught.value)
    assert "Secret" in str(caught.value) and "stringData" in str(caught.value)

    unknown_kind = [{"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}]
    with pytest.raises(manifests.ManifestInvalid, match=r"Kubernetes 1\.30 has no Gadget"):
        manifests.validate(unknown_kind)


@pytest.mark.django_db
def test_an_image_without_a_container_image_is_refused_before_the_cluster(
    cast, cluster, namespace
) -> None:
    target = make_target(cast, cluster, namespace)
    image = pushed_image(cast)
    Image.objects.filter(pk=image.pk).update(docker_tag="", image_location="local environment ab")
    image.refresh_from_db()
    service = deploy_row(cast, target, image)
    with pytest.raises(RuntimeError_, match="has no container image"):
        KubernetesRuntime().deploy(service, image, Progress())
    assert cluster.objects("deployments", namespace) == {}


# --- Deploy, watch, update, stop ------------------------------------------------------------


@pytest.mark.django_db
def test_deploy_applies_every_object_and_waits_for_the_rollout(cast, cluster, namespace) -> None:
    target = make_target(cast, cluster, namespace)
    service = deploy_row(
        cast,
        target,
        pushed_image(cast),
        cpu_cores=1,
        memory_gb=2,
        autoscale_enabled=True,
        autoscale_min_replicas=1,
        autoscale_max_replicas=4,
    )
    name = manifests.base_name(service)
    assert isinstance(runtime_for(service), KubernetesRuntime)
    progress = Progress()
    endpoint = runtime_for(service).deploy(service, service.image, progress)

    assert endpoint.scoring_uri == f"http://{name}.{namespace}.svc.cluster.local/score"
    assert endpoint.swagger_uri == f"http://{name}.{namespace}.svc.cluster.local/swagger.json"
    assert progress.units == 4  # what deployment_units promises
    assert any(
        "Secret, Deployment, Service, HorizontalPodAutoscaler valid" in p for p in progress.phases
    )

    secrets_ = cluster.objects("secrets", namespace)
    config = json.loads(secrets_[f"{name}-config"]["stringData"]["service.json"])
    assert config["service"] == "diabetes-aks" and config["service_id"] == service.pk
    assert config["telemetry_token"] == secrets.decrypt(service.telemetry_token)

    deployment = cluster.objects("deployments", namespace)[name]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == service.image.image_location
    assert container["resources"]["requests"] == {"cpu": "1000m", "memory": "2048Mi"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert deployment["status"]["availableReplicas"] == 1
    assert deployment["metadata"]["labels"]["mlstudio.io/service"] == "diabetes-aks"

    (svc,) = cluster.objects("services", namespace).values()
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    hpa = cluster.objects("horizontalpodautoscalers", namespace)[name]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert cluster.objects("ingresses", namespace) == {}

    # What was applied is remembered: where, and the Deployment a failed update goes back to.
    service.refresh_from_db()
    state = service.runtime_state["kubernetes"]
    assert (state["namespace"], state["name"]) == (namespace, name)
    assert runtime_for(service).state(service) == WebService.State.HEALTHY

    logs = runtime_for(service).logs(service, tail_lines=100)
    assert f"=== pod {name}-g1-0 ===" in logs
    assert f"{name}-g1-0: Listening on 0.0.0.0:5001" in logs


@pytest.mark.django_db
def test_the_rollout_is_watched_until_the_cluster_reports_it_ready(
    cast, cluster, namespace
) -> None:
    target = make_target(cast, cluster, namespace)
    service = deploy_row(cast, target, pushed_image(cast), num_replicas=2)
    name = manifests.base_name(service)
    cluster.controllers.modes[name] = "hold"
    progress = Progress()
    seen: list[str] = []

    done = threading.Event()

    def phase_is(prefix: str) -> bool:
        deadline = time.monotonic() + 10
        while not (progress.phases and progress.phases[-1].startswith(prefix)):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return not done.is_set()

    def the_cluster() -> None:
        """The controllers' part, by hand: the new spec seen, then 2 of 2 available."""
        seen.append(phase_is("Waiting for the cluster to see the new spec"))
        apps = cluster.controllers.apps
        body = {"status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2}}
        apps.patch_namespaced_deployment_status(name, namespace, body, _preload_content=False)
        seen.append(phase_is("0 of 2 new pods available"))
        time.sleep(0.2)
        seen.append(not done.is_set())  # still waiting
        body["status"]["availableReplicas"] = 2
        apps.patch_namespaced_deployment_status(name, namespace, body, _preload_content=False)

    thread = threading.Thread(target=the_cluster, daemon=True)
    thread.start()
    KubernetesRuntime().deploy(service, service.image, progress)
    done.set()
    thread.join(5)
    assert seen == [True, True, True]
    assert progress.phases[-2:] == [
        "Every pod of the new version is available",
        f"Serving at http://{name}.{namespace}.svc.cluster.local/score",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_deployment_job_makes_the_service_healthy(cast, cluster, namespace) -> None:
    target = make_target(cast, cluster, namespace, name="aks-jobs")
    service = deploy_row(cast, target, pushed_image(cast), name="job-svc")
    job = run_jobs(service)
    service.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert service.state == WebService.State.HEALTHY
    assert service.scoring_uri.endswith(f".{namespace}.svc.cluster.local/score")


@pytest.mark.django_db
def test_an_update_rolls_the_new_image_out_with_no_downtime(cast, cluster, namespace) -> None:
    target = make_target(cast, cluster, namespace, ingress_domain="ml.example.com")
    first, second = pushed_image(cast, 1), pushed_image(cast, 2)
    service = deploy_row(cast, target, first, num_replicas=2, autoscale_enabled=True)
    name = manifests.base_name(service)
    assert run_jobs(service).status == Job.Status.SUCCEEDED
    service.refresh_from_db()
    assert service.scoring_uri == f"http://diabetes-aks-{ws_tag(cast)}.ml.example.com/score"
    assert set(cluster.objects("horizontalpodautoscalers", namespace)) == {name}
    assert set(cluster.objects("ingresses", namespace)) == {name}
    old_pods = set(cluster.objects("pods", namespace))

    # The new image, and no more autoscaling: the autoscaler goes, replicas come back.
    service = service_update(
        actor=cast.owner, service=service, image=second, config={"num_replicas": 2}
    )
    started = time.monotonic()
    job = run_jobs(service)
    assert (job.operation, job.status) == ("update", Job.Status.SUCCEEDED), job.error
    service.refresh_from_db()
    assert (service.image, service.state) == (second, WebService.State.HEALTHY)
    deployment = cluster.objects("deployments", namespace)[name]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == second.image_location
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deployment["spec"]["replicas"] == 2 and deployment["metadata"]["generation"] == 2
    assert cluster.objects("horizontalpodautoscalers", namespace) == {}
    # The deploy returned only after the surge step: old pods served until new ones did.
    rolled = [s for t, n, s in cluster.controllers.statuses if n == name and t >= started]
    assert rolled[0]["updatedReplicas"] == 1 and rolled[0]["availableReplicas"] >= 2
    assert all(s["availableReplicas"] >= 2 for s in rolled)
    assert set(cluster.objects("pods", namespace)).isdisjoint(old_pods)


@pytest.mark.django_db
def test_a_crash_looping_update_fails_and_the_previous_spec_comes_back(
    cast, cluster, namespace
) -> None:
    target = make_target(cast, cluster, namespace)
    first, second = pushed_image(cast, 1), pushed_image(cast, 2)
    service = deploy_row(cast, target, first)
    name = manifests.base_name(service)
    runtime = KubernetesRuntime()
    runtime.deploy(service, first, Progress())
    DeploymentJob.objects.filter(service=service).update(status=Job.Status.SUCCEEDED)

    cluster.controllers.modes[name] = "crash"
    service = service_update(actor=cast.owner, service=service, image=second)
    with pytest.raises(RuntimeError_) as caught:
        runtime.deploy(service, second, Progress())
    message = str(caught.value)
    assert f"pod {name}-g2-0: CrashLoopBackOff" in message
    assert "last exit: Error, code 1" in message
    assert "ValueError: no model" in message  # the previous run's log lines
    deployment = cluster.objects("deployments", namespace)[name]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == first.image_location
    cluster.controllers.modes[name] = "ready"


@pytest.mark.django_db
def test_a_rollout_that_never_ends_times_out(cast, cluster, namespace, settings) -> None:
    settings.SERVICE_DEPLOY_TIMEOUT = 1
    target = make_target(cast, cluster, namespace)
    service = deploy_row(cast, target, pushed_image(cast))
    cluster.controllers.modes[manifests.base_name(service)] = "hold"
    with pytest.raises(RuntimeError_, match="The rollout was not done after 1 s"):
        KubernetesRuntime().deploy(service, service.image, Progress())


@pytest.mark.django_db
def test_state_follows_the_deployment_status(cast, cluster, namespace) -> None:
    target = make_target(cast, cluster, namespace)
    service = deploy_row(cast, target, pushed_image(cast))
    name = manifests.base_name(service)
    runtime = KubernetesRuntime()
    runtime.deploy(service, service.image, Progress())
    assert runtime.state(service) == WebService.State.HEALTHY
    apps = cluster.controllers.apps
    apps.patch_namespaced_deployment_status(
        name, namespace, {"status": {"availableReplicas": 0}}, _preload_content=False
    )
    assert runtime.state(service) == WebService.State.UNHEALTHY
    apps.patch_namespaced_deployment_status(
        name,
        namespace,
        {
            "status": {
                "conditions": [
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                ]
            }
        },
        _preload_content=False,
    )
    assert runtime.state(service) == WebService.State.FAILED


@pytest.mark.django_db
def test_a_regenerated_key_reaches_the_secret(cast, cluster, namespace) -> None:
    target = make_target(cast, cluster, namespace)
    service = deploy_row(cast, target, pushed_image(cast))
    KubernetesRuntime().deploy(service, service.image, Progress())
    service = service_regen_key(actor=cast.owner, service=service, key="Primary")
    KubernetesRuntime().refresh_keys(service)  # what the on-commit hook calls
    secret = cluster.objects("secrets", namespace)[f"{manifests.base_name(service)}-config"]
    config = json.loads(secret["stringData"]["service.json"])
    assert config["key_hashes"][0] == hash_key(service_keys(service=service)[0])


@pytest.mark.django_db
def test_switching_auth_off_reaches_the_secret(
    cast, cluster, namespace, django_capture_on_commit_callbacks
) -> None:
    target = make_target(cast, cluster, namespace)
    service = deploy_row(cast, target, pushed_image(cast))
    KubernetesRuntime().deploy(service, service.image, Progress())
    with django_capture_on_commit_callbacks(execute=True):  # the hook service_update adds
        service_update(actor=cast.owner, service=service, auth_enabled=False)
    secret = cluster.objects("secrets", namespace)[f"{manifests.base_name(service)}-config"]
    assert json.loads(secret["stringData"]["service.json"])["auth_enabled"] is False


@pytest.mark.django_db
def test_stop_deletes_everything(cast, cluster, namespace) -> None:
    target = make_target(cast, cluster, namespace, ingress_domain="ml.example.com")
    service = deploy_row(cast, target, pushed_image(cast), autoscale_enabled=True)
    runtime = KubernetesRuntime()
    runtime.deploy(service, service.image, Progress())
    kinds = ("secrets", "deployments", "services", "horizontalpodautoscalers", "ingresses")
    assert all(cluster.objects(kind, namespace) for kind in kinds)
    service.refresh_from_db()
    runtime.stop(service)
    assert [cluster.objects(kind, namespace) for kind in kinds] == [{}] * 5
    runtime.stop(service)  # again: nothing left, no error


@pytest.mark.django_db
def test_a_cluster_that_does_not_answer_is_a_readable_error(cast, cluster, namespace) -> None:
    target = make_target(cast, cluster, namespace)
    dead = cluster.kubeconfig().replace(cluster.url, "http://127.0.0.1:9")
    ComputeTarget.objects.filter(pk=target.pk).update(secret=secrets.encrypt(dead))
    service = deploy_row(cast, target, pushed_image(cast))
    service.compute_target.refresh_from_db()
    with pytest.raises(RuntimeError_, match="the cluster did not answer"):
        KubernetesRuntime().deploy(service, service.image, Progress())
    assert TOKEN not in str(service.runtime_state)
