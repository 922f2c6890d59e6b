"""Kubernetes compute targets through the REST API (the permission cast, the kubeconfig
kept encrypted and never given back, the refusals) and through the SDK
(`AksCompute.attach_configuration`, `ComputeTarget.attach`) against a live server."""

from __future__ import annotations

import json

import pytest
import yaml

from deployments.models import ComputeTarget, Image, WebService
from deployments.services.webservices import service_deploy
from portal import secrets
from portal.models import AuditEntry
from portal.tests.api import api, assert_error
from tracking.tests.api_v1 import isolate, send, url

TOKEN = "k8s-sa-token-7d41c0ffee"


def kubeconfig(token: str = TOKEN, **user) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "prod",
                    "cluster": {
                        "server": "https://k8s.example.com:6443",
                        "certificate-authority-data": "LS0tLS1CRUdJTi0tLS0t",
                    },
                }
            ],
            "users": [{"name": "deployer", "user": user or {"token": token}}],
            "contexts": [
                {
                    "name": "prod",
                    "context": {"cluster": "prod", "user": "deployer", "namespace": "ml"},
                }
            ],
            "current-context": "prod",
        }
    )


def attach_body(name: str = "aks-prod", **extra) -> dict:
    return {
        "name": name,
        "kind": "kubernetes",
        "kubeconfig": kubeconfig(),
        "config": {"namespace": "ml-services", "ingress_domain": "ml.example.com"},
        **extra,
    }


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path) -> None:
    isolate(settings, tmp_path)


@pytest.mark.django_db
def test_a_contributor_attaches_a_cluster_and_nobody_sees_its_kubeconfig(cast) -> None:
    response = send(api(cast, "contributor"), "post", url(cast, "api-computes"), attach_body())
    assert response.status_code == 201, response.content
    body = response.json()
    assert "kubeconfig" not in body and TOKEN not in response.content.decode()
    assert (body["kind"], body["has_kubeconfig"]) == ("kubernetes", True)
    assert body["config"] == {"namespace": "ml-services", "ingress_domain": "ml.example.com"}

    # Stored encrypted; it decrypts to what was attached.
    target = ComputeTarget.objects.get(workspace=cast.workspace, name="aks-prod")
    assert TOKEN not in target.secret and secrets.decrypt(target.secret) == kubeconfig()
    for who in ("owner", "contributor", "reader"):
        client = api(cast, who)
        for path in (url(cast, "api-computes"), url(cast, "api-compute", compute="aks-prod")):
            answer = client.get(path)
            assert answer.status_code == 200 and TOKEN not in answer.content.decode()
    entries = AuditEntry.objects.filter(action="create", target_repr="aks-prod")
    assert entries.exists() and TOKEN not in json.dumps(list(entries.values("changes")))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 201), ("contributor", 201), ("reader", 403), ("outsider", 404), ("anonymous", 401)],
)
def test_the_permission_cast_on_attaching(cast, who: str, status: int) -> None:
    response = send(api(cast, who), "post", url(cast, "api-computes"), attach_body())
    assert response.status_code == status, response.content
    assert TOKEN not in response.content.decode()


@pytest.mark.django_db
def test_changing_the_kubeconfig_needs_a_contributor(cast) -> None:
    send(api(cast, "owner"), "post", url(cast, "api-computes"), attach_body())
    path = url(cast, "api-compute", compute="aks-prod")
    new = {"kubeconfig": kubeconfig("rotated-token-99"), "config": {"namespace": "ml-two"}}
    assert_error(send(api(cast, "reader"), "patch", path, new), 403)
    assert_error(send(api(cast, "outsider"), "patch", path, new), 404)
    response = send(api(cast, "contributor"), "patch", path, new)
    assert response.status_code == 200, response.content
    assert response.json()["config"] == {"namespace": "ml-two"}
    assert "rotated-token-99" not in response.content.decode()
    target = ComputeTarget.objects.get(workspace=cast.workspace, name="aks-prod")
    assert secrets.decrypt(target.secret) == kubeconfig("rotated-token-99")
    entry = AuditEntry.objects.filter(action="update").latest("pk")
    assert entry.changes["kubeconfig"] == "replaced"
    assert "rotated-token-99" not in json.dumps(entry.changes)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            attach_body(kubeconfig=kubeconfig(exec={"command": "sh", "args": ["-c", "id"]})),
            "uses 'exec', which would run a program",
        ),
        (
            attach_body(kubeconfig=kubeconfig(**{"auth-provider": {"name": "oidc"}})),
            "uses 'auth-provider'",
        ),
        (attach_body(kubeconfig=kubeconfig(tokenFile="/etc/passwd")), "names a file ('tokenFile')"),
        (attach_body(kubeconfig="clusters: [unclosed"), "not valid YAML"),
        (attach_body(kubeconfig="just text"), "not a kubeconfig"),
        (attach_body(kubeconfig=None), "needs a kubeconfig"),
        (attach_body(config={"namespace": "Not_A_Name"}), "config.namespace must be a DNS label"),
        (attach_body(config={"registry": "x"}), "config: registry not known"),
        (attach_body(config={"service_type": "NodePort"}), "config.service_type must be one of"),
        (attach_body(config={"kubernetes_version": "1.12"}), "has no schemas here"),
        (attach_body(config={"context": "staging"}), "has no context 'staging'"),
        ({"name": "cpu", "kubeconfig": kubeconfig()}, "are for kubernetes compute targets"),
    ],
)
def test_what_cannot_be_attached_is_refused_with_a_reason(cast, body, words) -> None:
    body = {k: v for k, v in body.items() if v is not None}
    response = send(api(cast, "contributor"), "post", url(cast, "api-computes"), body)
    error = assert_error(response, 400)
    assert words in error["message"], error
    assert TOKEN not in error["message"] and "/etc/passwd" not in error["message"]
    assert not ComputeTarget.objects.filter(workspace=cast.workspace, name="aks-prod").exists()


@pytest.mark.django_db
def test_a_target_with_services_cannot_go(cast) -> None:
    send(api(cast, "owner"), "post", url(cast, "api-computes"), attach_body())
    target = ComputeTarget.objects.get(workspace=cast.workspace, name="aks-prod")
    image = Image.objects.create(
        workspace=cast.workspace,
        name="img",
        version=1,
        model_uri="models:/m/1",
        model_name="m",
        state=Image.State.SUCCEEDED,
        docker_tag="mlstudio/img:1",
    )
    service = service_deploy(
        actor=cast.owner,
        workspace=cast.workspace,
        name="on-aks",
        image=image,
        compute_type="kubernetes",
        compute_target=target,
        config={},
    )
    path = url(cast, "api-compute", compute="aks-prod")
    error = assert_error(send(api(cast, "owner"), "delete", path), 400)
    assert "has 1 web service" in error["message"]
    WebService.objects.filter(pk=service.pk).delete()
    assert send(api(cast, "owner"), "delete", path).status_code == 204


@pytest.mark.django_db
def test_remote_runs_are_not_sent_to_a_cluster(cast) -> None:
    # No worker consumes a Kubernetes target's queue: a run sent there would wait forever.
    from deployments.tests.factories import submit
    from portal.errors import InvalidParameter
    from tracking.models import Run

    send(api(cast, "owner"), "post", url(cast, "api-computes"), attach_body())
    runs = Run.objects.count()
    with pytest.raises(InvalidParameter, match="Kubernetes target"):
        submit(cast, compute_name="aks-prod")
    assert Run.objects.count() == runs


# --- The SDK ----------------------------------------------------------------------------------


def test_the_sdk_attaches_a_cluster(live_server, cast, tmp_path, monkeypatch) -> None:
    from mlstudio import TokenAuthentication, ValidationError, Workspace
    from mlstudio.compute import AksCompute, AmlCompute, ComputeTarget
    from portal import services

    _, raw = services.token_create(user=cast.contributor, name="sdk")
    ws = Workspace(
        str(cast.subscription.id),
        "rg-main",
        "ws-main",
        auth=TokenAuthentication(raw),
        server_url=live_server.url,
    )
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig())
    config = AksCompute.attach_configuration(
        kubeconfig=str(path),
        namespace="ml-services",
        service_type="LoadBalancer",
        resource_group="ignored",
        cluster_name="ignored",
    )
    assert TOKEN not in repr(config)
    aks = ComputeTarget.attach(ws, "aks-prod", config)
    assert isinstance(aks, AksCompute) and aks.type == "kubernetes"
    assert aks.namespace == "ml-services"
    assert aks.cluster_settings == {"namespace": "ml-services", "service_type": "LoadBalancer"}
    assert TOKEN not in json.dumps(aks.get_details(), default=str)
    again = ComputeTarget(ws, "aks-prod")
    assert isinstance(again, AksCompute) and not isinstance(ComputeTarget(ws, "local"), AksCompute)
    assert isinstance(ComputeTarget(ws, "local"), AmlCompute)

    # The kubectl file when none is named; a new one replaces the old.
    monkeypatch.setenv("KUBECONFIG", str(path))
    path.write_text(kubeconfig("second-token"))
    again.update(attach_configuration=AksCompute.attach_configuration(namespace="ml-two"))
    assert again.namespace == "ml-two"
    target = target_row(cast)
    assert secrets.decrypt(target.secret) == kubeconfig("second-token")
    with pytest.raises(ValidationError, match="would run a program"):
        ComputeTarget.attach(
            ws,
            "aks-bad",
            AksCompute.attach_configuration(kubeconfig=kubeconfig(exec={"command": "id"})),
        )


def target_row(cast) -> ComputeTarget:
    return ComputeTarget.objects.get(workspace=cast.workspace, name="aks-prod")
