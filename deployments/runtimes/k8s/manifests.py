"""The Kubernetes objects a web service is made of, rendered from its row, and validated
offline against the Kubernetes JSON schemas (`kubernetes-validate`, strict: an unknown
field is an error too) before anything is sent to a cluster.

For a service `x` of a workspace whose id starts 41913f2e (`base` = `mls-x-41913f2e`,
unique in a namespace shared by several workspaces; below `mls-x-7` for short):

- Secret `mls-x-7-config`: the scoring server's config JSON (key hashes, token secret,
  telemetry URL and token), mounted at /etc/mlstudio/service.json. The server re-reads it
  when it changes, so a regenerated key needs no restart.
- Deployment `mls-x-7`: the image, `python -m mlstudio_scoring --config … --port 5001`,
  CPU and memory requests and limits from `cpu_cores`/`memory_gb`, startup, readiness and
  liveness probes on /health, a rolling update with maxUnavailable 0 and maxSurge 1 (a
  new pod is ready before an old one goes: an update has no downtime).
- Service `mls-x-7`: port 80 to the pods' 5001, ClusterIP or LoadBalancer (the target's
  `service_type`).
- HorizontalPodAutoscaler `mls-x-7` (autoscaling/v2) when `autoscale_enabled`: min/max
  replicas, target CPU utilization. The Deployment then leaves `replicas` to it.
- Ingress `mls-x-7` (networking.k8s.io/v1) when a host is known: the service's
  `ingress_host`, else `x-41913f2e.<ingress_domain>` of the target.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from deployments.images.context import CONTAINER_PORT
from deployments.runtimes.base import RuntimeError_
from deployments.runtimes.k8s.target import (
    DEFAULT_KUBERNETES_VERSION,
    DNS_LABEL,
    DNS_NAME,
    namespace_of,
)
from deployments.scoring.auth import hash_key
from portal import secrets

if TYPE_CHECKING:
    from deployments.models import ComputeTarget, Image, WebService

CONFIG_DIR = "/etc/mlstudio"
CONFIG_FILE = "service.json"
CONTAINER = "scoring"
SERVICE_PORT = 80
TELEMETRY_PATH = "/api/v1/service-telemetry"
FIELD_MANAGER = "mlstudio"
# The reference's AKS defaults (AksWebservice.deploy_configuration).
DEFAULT_CPU_CORES = 0.1
DEFAULT_MEMORY_GB = 0.5
DEFAULT_MIN_REPLICAS = 1
DEFAULT_MAX_REPLICAS = 10
DEFAULT_TARGET_UTILIZATION = 70
# Long enough for a large model to load; the readiness probe takes over after it.
STARTUP_PROBE_S = 300
LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")


class ManifestInvalid(RuntimeError_):
    """A rendered object does not match the Kubernetes schema (the message says where)."""


@dataclass
class Rendered:
    """What a service is on a cluster: where, under which names, and the objects."""

    namespace: str
    name: str
    selector: dict[str, str]
    manifests: list[dict[str, Any]] = field(default_factory=list)
    ingress_host: str | None = None
    ingress_tls: bool = False
    service_type: str = "ClusterIP"
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION

    def of_kind(self, kind: str) -> dict[str, Any] | None:
        return next((m for m in self.manifests if m["kind"] == kind), None)


def workspace_tag(service: WebService) -> str:
    """8 hex digits of the workspace's id: what tells apart services of the same name of
    two workspaces sharing a namespace or an ingress domain."""
    return str(service.workspace_id).replace("-", "")[:8]


def base_name(service: WebService) -> str:
    """The name of the service's objects: unique per namespace even when workspaces share
    one (service names are unique per workspace), a DNS label (at most 45 characters)."""
    return f"mls-{service.name}-{workspace_tag(service)}"


def selector_of(service: WebService) -> dict[str, str]:
    # Never changes for a service: a Deployment's selector is immutable.
    return {
        "app.kubernetes.io/instance": base_name(service),
        "app.kubernetes.io/managed-by": "mlstudio",
    }


def labels_of(service: WebService, image: Image | None = None) -> dict[str, str]:
    labels = {
        **selector_of(service),
        "app.kubernetes.io/name": "mlstudio-scoring",
        "app.kubernetes.io/component": "web-service",
        "mlstudio.io/service": service.name,
        "mlstudio.io/workspace": workspace_tag(service),
    }
    if image is not None:
        labels["app.kubernetes.io/version"] = LABEL_VALUE.sub(
            "-", image.id_label.replace(":", "-")
        )[:63].strip("-._")
    return labels


def _meta(service: WebService, namespace: str, name: str, image: Image | None = None) -> dict:
    return {"name": name, "namespace": namespace, "labels": labels_of(service, image)}


def telemetry_url(target: ComputeTarget) -> str | None:
    base = (
        (target.config or {}).get("studio_url") or getattr(settings, "SITE_URL", "") or ""
    ).rstrip("/")
    return f"{base}{TELEMETRY_PATH}" if base else None


def scoring_config(service: WebService, target: ComputeTarget) -> dict[str, Any]:
    """The scoring server's config file (the shared format), as the pods read it."""
    hashes = [
        hash_key(secrets.decrypt(stored))
        for stored in (service.primary_key, service.secondary_key)
        if stored
    ]
    url = telemetry_url(target)
    return {
        "service": service.name,
        "service_id": service.pk,
        "model_dir": "/app/model",
        "auth_enabled": bool(service.auth_enabled),
        "key_hashes": hashes,
        "token_secret": secrets.decrypt(service.token_secret),
        "telemetry_url": url,
        "telemetry_token": (secrets.decrypt(service.telemetry_token) or None) if url else None,
        "telemetry_interval_s": 5,
        "sample_rate": 1.0,
        "sample_max_rows": 100,
    }


def secret_manifest(service: WebService, target: ComputeTarget, namespace: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(service, namespace, f"{base_name(service)}-config"),
        "type": "Opaque",
        "stringData": {CONFIG_FILE: json.dumps(scoring_config(service, target))},
    }


def _quantities(config: dict) -> dict[str, str]:
    cpu = float(config.get("cpu_cores") or DEFAULT_CPU_CORES)
    memory = float(config.get("memory_gb") or DEFAULT_MEMORY_GB)
    return {"cpu": f"{max(1, round(cpu * 1000))}m", "memory": f"{max(1, round(memory * 1024))}Mi"}


def _probe(period: int, failures: int, timeout: int = 3) -> dict:
    return {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def image_reference(image: Image) -> str:
    """What the pods run: where the image was pushed (IMAGE_REGISTRY), else its local tag
    (a cluster sharing this machine's Docker engine, or one the image was loaded into)."""
    if not image.docker_tag:
        raise RuntimeError_(
            f"Image {image.id_label} has no container image (it was built where no Docker "
            "engine runs): build it with Docker and IMAGE_REGISTRY set so the cluster can "
            "pull it."
        )
    location = image.image_location or ""
    return location if location and " " not in location else image.docker_tag


def deployment_manifest(
    service: WebService, image: Image, namespace: str, target: ComputeTarget
) -> dict:
    config = service.config or {}
    name = base_name(service)
    quantities = _quantities(config)
    container = {
        "name": CONTAINER,
        "image": image_reference(image),
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "python",
            "-m",
            "mlstudio_scoring",
            "--config",
            f"{CONFIG_DIR}/{CONFIG_FILE}",
            "--host",
            "0.0.0.0",  # noqa: S104  (inside the pod: the Service reaches it on the pod's IP)
            "--port",
            str(CONTAINER_PORT),
        ],
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "resources": {"requests": dict(quantities), "limits": dict(quantities)},
        "startupProbe": _probe(5, STARTUP_PROBE_S // 5),
        "readinessProbe": _probe(5, 3),
        "livenessProbe": _probe(10, 3, timeout=5),
        # Endpoints are removed asynchronously: a pod told to stop keeps answering a few
        # seconds, so requests routed to it meanwhile do not fail.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": [
            {
                "name": "config",
                "secret": {"secretName": f"{name}-config", "defaultMode": 0o444},
            }
        ],
    }
    pull_secret = (target.config or {}).get("image_pull_secret")
    if pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": pull_secret}]
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_of(service)},
        "revisionHistoryLimit": 3,
        "progressDeadlineSeconds": max(60, int(settings.SERVICE_DEPLOY_TIMEOUT)),
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": labels_of(service, image),
                "annotations": {"mlstudio.io/image": image.id_label},
            },
            "spec": pod_spec,
        },
    }
    if not config.get("autoscale_enabled"):
        # With autoscaling the HorizontalPodAutoscaler owns the count: applying one here
        # would fight it on every update.
        spec["replicas"] = int(config.get("num_replicas") or 1)
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(service, namespace, name, image),
        "spec": spec,
    }
    manifest["metadata"]["annotations"] = {"mlstudio.io/image": image.id_label}
    return manifest


def service_manifest(service: WebService, namespace: str, service_type: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(service, namespace, base_name(service)),
        "spec": {
            "type": service_type,
            "selector": selector_of(service),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def autoscaler_manifest(service: WebService, namespace: str) -> dict:
    config = service.config or {}
    low = int(config.get("autoscale_min_replicas") or DEFAULT_MIN_REPLICAS)
    high = int(config.get("autoscale_max_replicas") or max(DEFAULT_MAX_REPLICAS, low))
    utilization = int(config.get("autoscale_target_utilization") or DEFAULT_TARGET_UTILIZATION)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(service, namespace, base_name(service)),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": base_name(service),
            },
            "minReplicas": low,
            "maxReplicas": max(high, low),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": utilization},
                    },
                }
            ],
        },
    }


def ingress_host_of(service: WebService, target: ComputeTarget) -> str | None:
    own = (service.config or {}).get("ingress_host")
    if own:
        return str(own).lower()
    domain = (target.config or {}).get("ingress_domain")
    return f"{service.name}-{workspace_tag(service)}.{domain}" if domain else None


def ingress_manifest(service: WebService, namespace: str, host: str, target: ComputeTarget) -> dict:
    settings_ = target.config or {}
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {"name": base_name(service), "port": {"name": "http"}}
                            },
                        }
                    ]
                },
            }
        ]
    }
    if settings_.get("ingress_class"):
        spec["ingressClassName"] = settings_["ingress_class"]
    if settings_.get("ingress_tls_secret"):
        spec["tls"] = [{"hosts": [host], "secretName": settings_["ingress_tls_secret"]}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(service, namespace, base_name(service)),
        "spec": spec,
    }


def render(service: WebService, image: Image, target: ComputeTarget) -> Rendered:
    """Every object of `service` running `image` on `target`, in the order they are
    applied (the Secret the pods mount first, the autoscaler after what it scales)."""
    namespace = namespace_of(target, service.config)
    if not DNS_LABEL.match(namespace):
        raise RuntimeError_(f"Namespace {namespace[:70]!r} is not a valid Kubernetes name.")
    host = ingress_host_of(service, target)
    if host is not None and not DNS_NAME.match(host):
        raise RuntimeError_(f"Ingress host {host[:100]!r} is not a valid DNS name.")
    settings_ = target.config or {}
    service_type = settings_.get("service_type") or "ClusterIP"
    rendered = Rendered(
        namespace=namespace,
        name=base_name(service),
        selector=selector_of(service),
        ingress_host=host,
        ingress_tls=bool(host and settings_.get("ingress_tls_secret")),
        service_type=service_type,
        kubernetes_version=settings_.get("kubernetes_version") or DEFAULT_KUBERNETES_VERSION,
    )
    rendered.manifests = [
        secret_manifest(service, target, namespace),
        deployment_manifest(service, image, namespace, target),
        service_manifest(service, namespace, service_type),
    ]
    if (service.config or {}).get("autoscale_enabled"):
        rendered.manifests.append(autoscaler_manifest(service, namespace))
    if host is not None:
        rendered.manifests.append(ingress_manifest(service, namespace, host, target))
    return rendered


def _where(error: Any) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    return path or "(top level)"


@functools.lru_cache(maxsize=64)
def _validator(version: str, kind: str, api_version: str) -> Any:
    """A strict JSON-schema validator of `kind` for Kubernetes `version`, from
    kubernetes-validate's schemas (what its `validate` builds on every call; kept here:
    the definitions file is megabytes of JSON)."""
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    known = [v for v in utils.all_versions() if utils.major_minor(v) <= version]
    if not known or version > utils.latest_version():
        raise ManifestInvalid(f"Kubernetes {version} has no schemas here.")
    schema_dir = f"kubernetes-json-schema/v{known[-1]}-local-strict"
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        raise ManifestInvalid(
            f"Kubernetes {version} has no {kind} of apiVersion {api_version}."
        ) from None
    definitions = utils.schema_contents(f"{schema_dir}/_definitions.json", version)
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate(manifests: list[dict], version: str = DEFAULT_KUBERNETES_VERSION) -> None:
    """Check every manifest against Kubernetes `version`'s schemas (strict: unknown fields
    are errors too); raises ManifestInvalid naming the object, the field and what is
    wrong. A Secret's error never shows the offending value (it may be secret)."""
    for manifest in manifests:
        kind = str(manifest.get("kind") or "?")
        name = (manifest.get("metadata") or {}).get("name", "?")
        try:
            validator = _validator(version, kind, str(manifest.get("apiVersion") or ""))
        except ManifestInvalid as exc:
            raise ManifestInvalid(f"{kind} {name}: {exc}") from None
        error = next(iter(sorted(validator.iter_errors(manifest), key=lambda e: e.path)), None)
        if error is not None:
            message = "does not match the schema" if kind == "Secret" else error.message[:300]
            raise ManifestInvalid(
                f"{kind} {name} is not valid for Kubernetes {version}: "
                f"at {_where(error)}: {message}"
            )
