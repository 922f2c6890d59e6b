"""Web services: deploy an image, update it without downtime, delete it; keys and tokens.

Writes follow the job machinery: `service_deploy`, `service_update` (when the image or the
configuration changes) and `service_delete` write the row and a DeploymentJob (kind
"deployment") in the caller's transaction; a Celery worker runs it (`deployment_run`),
which asks the service's runtime (deployments.runtimes.runtime_for) to deploy or stop and
records the outcome on the service: its state, error, scoring and swagger URIs. The
state is Transitioning while a job runs, Deleting once a delete was asked for.

Secrets: the primary and secondary keys, the token secret and the telemetry token are made
with portal.secrets.new_key and stored encrypted (they must be given back). The scoring
server gets sha256 hashes of the keys; the telemetry endpoint
(`POST /api/v1/service-telemetry`) finds a service by `telemetry_token_hash`, the sha256
(hex) of the bearer token its server sends.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from deployments.models import ComputeTarget, DeploymentJob, Image, WebService
from deployments.runtimes import runtime_for
from deployments.runtimes.base import RuntimeError_
from deployments.scoring.auth import mint_token
from portal import registry, secrets
from portal.errors import AlreadyExists, InvalidParameter, StudioError
from portal.models import Job, Workspace
from portal.services import audit_record, job_create

log = logging.getLogger(__name__)

KIND = "deployment"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
NAME_RULE = (
    "use 3 to 32 lowercase letters, digits and dashes, starting with a letter and not "
    "ending with a dash"
)
LOCAL_TYPES = (WebService.ComputeType.LOCAL, WebService.ComputeType.ACI)
KEY_NAMES = ("Primary", "Secondary")
TOKEN_TTL_S = 3600
# A token should be renewed this long before it expires (the reference's refresh_by).
TOKEN_REFRESH_MARGIN_S = 300
MAX_TAGS = 50
MAX_CPU_CORES = 64
MAX_MEMORY_GB = 1024
MAX_REPLICAS = 100
# What a configuration may hold, per compute type (the SDK's deploy_configuration keys).
LOCAL_CONFIG = {"cpu_cores", "memory_gb", "port"}
KUBERNETES_CONFIG = {
    "cpu_cores",
    "memory_gb",
    "autoscale_enabled",
    "autoscale_min_replicas",
    "autoscale_max_replicas",
    "autoscale_refresh_seconds",
    "autoscale_target_utilization",
    "num_replicas",
    "namespace",
    "ingress_host",
    "scoring_timeout_ms",
    "replica_max_concurrent_requests",
}


class ServiceBusy(StudioError):
    """The service has a deployment job running (or is being deleted)."""

    code = "RESOURCE_CONFLICT"
    http_status = 409


class PortTaken(StudioError):
    """The fixed port asked for is used by another service or program."""

    code = "RESOURCE_CONFLICT"
    http_status = 409


class DeploymentFailed(StudioError):
    """The runtime could not bring the service up (the message says why)."""

    code = "DEPLOYMENT_FAILED"
    http_status = 400


# --- Checks ---------------------------------------------------------------------------------


def check_service_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        shown = name[:40] if isinstance(name, str) else name
        raise InvalidParameter(f"Invalid service name {shown!r}: {NAME_RULE}.")
    return name


def _check_map(label: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_TAGS:
        raise InvalidParameter(f"{label} must be an object of at most {MAX_TAGS} strings.")
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 250:
            raise InvalidParameter(f"{label}: keys must be strings of 1 to 250 characters.")
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise InvalidParameter(f"{label}: the value of {key!r} must be a string.")
        out[key] = str(item)[:5000]
    return out


def _number(config: dict, key: str, low: float, high: float) -> None:
    value = config.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameter(f"config.{key} must be a number.")
    if not low < value <= high:
        raise InvalidParameter(f"config.{key} must be more than {low} and at most {high}.")


def _integer(config: dict, key: str, low: int, high: int) -> None:
    value = config.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameter(f"config.{key} must be a whole number from {low} to {high}.")


def check_config(compute_type: str, config: Any) -> dict:
    """The deploy configuration, checked for its compute type (None values dropped)."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidParameter("config must be an object.")
    config = {k: v for k, v in config.items() if v is not None}
    allowed = (
        KUBERNETES_CONFIG if compute_type == WebService.ComputeType.KUBERNETES else (LOCAL_CONFIG)
    )
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise InvalidParameter(
            f"config: {', '.join(unknown)} not known for a {compute_type} service "
            f"(known: {', '.join(sorted(allowed))})."
        )
    _number(config, "cpu_cores", 0, MAX_CPU_CORES)
    _number(config, "memory_gb", 0, MAX_MEMORY_GB)
    _integer(config, "port", 1, 65535)
    for key in ("autoscale_min_replicas", "autoscale_max_replicas", "num_replicas"):
        _integer(config, key, 1, MAX_REPLICAS)
    _integer(config, "autoscale_refresh_seconds", 1, 3600)
    _integer(config, "autoscale_target_utilization", 1, 100)
    low, high = config.get("autoscale_min_replicas"), config.get("autoscale_max_replicas")
    if low is not None and high is not None and low > high:
        raise InvalidParameter("config.autoscale_min_replicas is above autoscale_max_replicas.")
    if "autoscale_enabled" in config and not isinstance(config["autoscale_enabled"], bool):
        raise InvalidParameter("config.autoscale_enabled must be true or false.")
    return config


def _check_image(workspace: Workspace, image: Image) -> Image:
    if image.workspace_id != workspace.pk:
        raise InvalidParameter(f"No image {image.id_label} in this workspace.")
    if image.state != Image.State.SUCCEEDED:
        raise InvalidParameter(
            f"Image {image.id_label} is not built ({image.state}); wait for its build to succeed."
        )
    return image


def _check_target(
    workspace: Workspace, compute_type: str, target: ComputeTarget | None
) -> ComputeTarget | None:
    if compute_type not in WebService.ComputeType.values:
        raise InvalidParameter(
            f"compute_type must be one of {', '.join(WebService.ComputeType.values)}."
        )
    if compute_type == WebService.ComputeType.KUBERNETES:
        if target is None or target.kind != ComputeTarget.Kind.KUBERNETES:
            raise InvalidParameter(
                "A kubernetes service needs a compute target of kind kubernetes."
            )
        if target.workspace_id != workspace.pk:
            raise InvalidParameter("The compute target is not in this workspace.")
        return target
    if target is not None:
        raise InvalidParameter(f"A {compute_type} service runs on the studio: no compute target.")
    return None


def _check_port(config: dict, service_id: int | None = None) -> None:
    from deployments.runtimes.local import PortInUse, check_port

    port = config.get("port")
    if port is None:
        return
    if port < 1024:
        raise InvalidParameter("config.port must be from 1024 to 65535.")
    try:
        check_port(port, exclude_id=service_id)
    except PortInUse as exc:
        raise PortTaken(str(exc)) from None


def _busy(service: WebService) -> None:
    if service.state == WebService.State.DELETING:
        raise ServiceBusy(f"Web service {service.name!r} is being deleted.")
    if DeploymentJob.objects.filter(service=service, status__in=Job.UNFINISHED).exists():
        raise ServiceBusy(
            f"Web service {service.name!r} has a deployment in progress; wait for it to end."
        )


def _label(service: WebService) -> str:
    return f"{service.workspace.name} › {service.name}"


# --- Writes ---------------------------------------------------------------------------------


def _telemetry_token() -> tuple[str, str]:
    token = secrets.new_key()
    return secrets.encrypt(token), hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def service_deploy(
    *,
    actor: AbstractBaseUser | None,
    workspace: Workspace,
    name: str,
    image: Image,
    compute_type: str,
    compute_target: ComputeTarget | None = None,
    config: dict | None = None,
    description: str = "",
    tags: dict | None = None,
    properties: dict | None = None,
    auth_enabled: bool = True,
) -> WebService:
    """A new web service, Transitioning, and its create job (queued on commit). Its keys
    are made now (service_keys gives them back)."""
    name = check_service_name(name)
    target = _check_target(workspace, compute_type, compute_target)
    config = check_config(compute_type, config)
    _check_image(workspace, image)
    if WebService.objects.filter(workspace=workspace, name=name).exists():
        raise AlreadyExists(f"A web service named {name!r} exists in this workspace.")
    if compute_type in LOCAL_TYPES:
        _check_port(config)
    telemetry, telemetry_hash = _telemetry_token()
    service = WebService.objects.create(
        workspace=workspace,
        name=name,
        image=image,
        compute_type=compute_type,
        compute_target=target,
        config=config,
        description=(description or "")[:500],
        tags=_check_map("tags", tags),
        properties=_check_map("properties", properties),
        auth_enabled=bool(auth_enabled),
        primary_key=secrets.encrypt(secrets.new_key()),
        secondary_key=secrets.encrypt(secrets.new_key()),
        token_secret=secrets.encrypt(secrets.new_key()),
        telemetry_token=telemetry,
        telemetry_token_hash=telemetry_hash,
        state=WebService.State.TRANSITIONING,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    _job(actor, service, DeploymentJob.Operation.CREATE, image)
    audit_record(
        actor=actor,
        action="create",
        target=service,
        changes={"image": image.id_label, "compute_type": compute_type, "config": config},
    )
    return service


def _job(
    actor: AbstractBaseUser | None, service: WebService, operation: str, image: Image | None
) -> DeploymentJob:
    return job_create(
        DeploymentJob,
        kind=KIND,
        actor=actor if actor is not None and actor.is_authenticated else None,
        label=_label(service),
        service=service,
        workspace=service.workspace,
        operation=operation,
        image=image,
    )


@transaction.atomic
def service_update(
    *,
    actor: AbstractBaseUser | None,
    service: WebService,
    image: Image | None = None,
    description: str | None = None,
    tags: dict | None = None,
    properties: dict | None = None,
    config: dict | None = None,
    auth_enabled: bool | None = None,
) -> WebService:
    """Change a service. Description, tags, properties and auth apply at once (auth and
    keys reach the running server through its config file, no restart); a new image or
    configuration rolls out in an update job, the new instance healthy before the old
    one stops."""
    service = WebService.objects.select_for_update().select_related("workspace").get(pk=service.pk)
    if service.state == WebService.State.DELETING:
        raise ServiceBusy(f"Web service {service.name!r} is being deleted.")
    changes: dict[str, Any] = {}
    if description is not None and description != service.description:
        service.description = description[:500]
        changes["description"] = service.description
    if tags is not None:
        service.tags = _check_map("tags", tags)
        changes["tags"] = service.tags
    if properties is not None:
        service.properties = _check_map("properties", properties)
        changes["properties"] = service.properties
    auth_changed = auth_enabled is not None and bool(auth_enabled) != service.auth_enabled
    if auth_changed:
        service.auth_enabled = bool(auth_enabled)
        changes["auth_enabled"] = service.auth_enabled
    roll_image = None
    if image is not None and image.pk != service.image_id:
        roll_image = _check_image(service.workspace, image)
        changes["image"] = image.id_label
    if config is not None:
        config = check_config(service.compute_type, config)
        if config != service.config:
            if service.compute_type in LOCAL_TYPES and config.get("port") != service.config.get(
                "port"
            ):
                raise InvalidParameter(
                    "config.port cannot change: the scoring URI stays; deploy a new service."
                )
            service.config = config
            changes["config"] = config
            roll_image = roll_image or service.image
    if roll_image is not None:
        _busy(service)
        service.state = WebService.State.TRANSITIONING
        service.error = ""
        _job(actor, service, DeploymentJob.Operation.UPDATE, roll_image)
    if not changes:
        return service
    service.updated_at = timezone.now()
    service.save()
    audit_record(actor=actor, action="update", target=service, changes=changes)
    if auth_changed:
        transaction.on_commit(partial(_refresh_keys_of, service))
    return service


@transaction.atomic
def service_delete(*, actor: AbstractBaseUser | None, service: WebService) -> DeploymentJob:
    """Stop the service and remove it: state Deleting now, the row goes when its delete
    job has stopped every instance. Asking again answers the job already under way."""
    service = WebService.objects.select_for_update().select_related("workspace").get(pk=service.pk)
    running = DeploymentJob.objects.filter(
        service=service, operation=DeploymentJob.Operation.DELETE, status__in=Job.UNFINISHED
    ).first()
    if running is not None:
        return running
    service.state = WebService.State.DELETING
    service.updated_at = timezone.now()
    service.save(update_fields=["state", "updated_at"])
    job = _job(actor, service, DeploymentJob.Operation.DELETE, None)
    audit_record(actor=actor, action="delete", target=service)
    return job


def service_keys(*, service: WebService) -> tuple[str, str]:
    """The primary and secondary keys, decrypted."""
    return secrets.decrypt(service.primary_key), secrets.decrypt(service.secondary_key)


@transaction.atomic
def service_regen_key(
    *, actor: AbstractBaseUser | None, service: WebService, key: str
) -> WebService:
    """Replace the primary or secondary key with a new random one; the running server
    takes it from its config file within a second (no restart); the old key stops working."""
    if key not in KEY_NAMES:
        raise InvalidParameter("key must be 'Primary' or 'Secondary'.")
    service = WebService.objects.select_for_update().get(pk=service.pk)
    if service.state == WebService.State.DELETING:
        raise ServiceBusy(f"Web service {service.name!r} is being deleted.")
    field = "primary_key" if key == "Primary" else "secondary_key"
    setattr(service, field, secrets.encrypt(secrets.new_key()))
    service.updated_at = timezone.now()
    service.save(update_fields=[field, "updated_at"])
    audit_record(actor=actor, action="regen_key", target=service, changes={"key": key})
    transaction.on_commit(partial(_refresh_keys_of, service))
    return service


def _refresh_keys_of(service: WebService) -> None:
    """After the commit: the running instances take the new keys or auth setting (the
    local runtime's config files, a cluster's Secret)."""
    if service.compute_type in LOCAL_TYPES:
        _refresh_keys(service.pk)
    else:
        _refresh_remote_keys(service.pk)


def _refresh_keys(service_id: int) -> None:
    from deployments.runtimes.local import refresh_keys

    service = WebService.objects.filter(pk=service_id).first()
    if service is not None:
        refresh_keys(service)


def _refresh_remote_keys(service_id: int) -> None:
    """Other runtimes learn of new keys through their own hook, when they have one."""
    service = WebService.objects.filter(pk=service_id).first()
    if service is None:
        return
    runtime = runtime_for(service)
    refresh = getattr(runtime, "refresh_keys", None)
    if refresh is not None:
        try:
            refresh(service)
        except Exception:
            log.exception("Could not pass the new keys of service %s on", service_id)


def service_token(*, service: WebService) -> tuple[str, int]:
    """A short-lived token for the service (`Authorization: Bearer <token>`) and the epoch
    second by which to ask for a new one."""
    token, expires = mint_token(secrets.decrypt(service.token_secret), service.name, TOKEN_TTL_S)
    return token, expires - TOKEN_REFRESH_MARGIN_S


def service_logs(*, service: WebService, tail_lines: int = 5000) -> str:
    """The newest lines of the service's instances' output (paths blanked out)."""
    from portal.services.jobs import describe_text

    if isinstance(tail_lines, bool) or not isinstance(tail_lines, int) or tail_lines < 1:
        raise InvalidParameter("tail_lines must be a positive whole number.")
    try:
        text = runtime_for(service).logs(service, tail_lines=min(tail_lines, 50_000))
    except RuntimeError_ as exc:
        raise StudioError(f"The service's logs cannot be read: {exc}") from None
    return describe_text(text)


# --- The deployment job ---------------------------------------------------------------------


def deployment_units(job: Job) -> int:
    return 4


def deployment_run(job: Job, progress: registry.Progress) -> None:
    """Create, update or delete: what the job's operation says. Idempotent (a job whose
    worker died runs again: the runtime waits for the same generation)."""
    assert isinstance(job, DeploymentJob)
    service = (
        WebService.objects.select_related("workspace", "image").filter(pk=job.service_id).first()
    )
    if job.operation == DeploymentJob.Operation.DELETE:
        if service is not None:
            _delete(service, progress)
        return
    if service is None:
        raise StudioError("The web service was deleted meanwhile.")
    if service.state == WebService.State.DELETING:
        raise StudioError("The web service is being deleted.")
    image = job.image or service.image
    WebService.objects.filter(pk=service.pk).update(
        state=WebService.State.TRANSITIONING, updated_at=timezone.now()
    )
    try:
        endpoint = runtime_for(service).deploy(service, image, progress)
    except RuntimeError_ as exc:
        raise DeploymentFailed(str(exc)) from None
    WebService.objects.filter(pk=service.pk).exclude(state=WebService.State.DELETING).update(
        image=image,
        state=WebService.State.HEALTHY,
        error="",
        scoring_uri=endpoint.scoring_uri,
        swagger_uri=endpoint.swagger_uri,
        updated_at=timezone.now(),
    )


def _delete(service: WebService, progress: registry.Progress) -> None:
    progress(1, "Stopping the service's instances")
    try:
        runtime_for(service).stop(service)
    except RuntimeError_ as exc:
        raise DeploymentFailed(f"The service could not be stopped: {exc}") from None
    progress(1, "Removing the service")
    WebService.objects.filter(pk=service.pk).delete()


def deployment_failed(job: Job) -> None:
    """The job failed for good: the error goes on the service. A failed create leaves the
    service Failed; a failed update leaves it serving the previous image (its state as
    the runtime sees it)."""
    assert isinstance(job, DeploymentJob)
    service = WebService.objects.filter(pk=job.service_id).first()
    if service is None:
        return
    if job.operation == DeploymentJob.Operation.DELETE:
        WebService.objects.filter(pk=service.pk).update(
            error=f"Delete failed: {job.error}"[:5000], updated_at=timezone.now()
        )
        return
    if service.state == WebService.State.DELETING:
        return
    if job.operation == DeploymentJob.Operation.CREATE or not service.scoring_uri:
        state = WebService.State.FAILED
        error = job.error
    else:
        try:
            state = runtime_for(service).state(service)
        except Exception:
            state = WebService.State.UNHEALTHY
        if state == WebService.State.TRANSITIONING:
            state = WebService.State.UNHEALTHY
        image = job.image.id_label if job.image else "the new configuration"
        error = f"Update to {image} failed; the previous image still serves. {job.error}"
    WebService.objects.filter(pk=service.pk).exclude(state=WebService.State.DELETING).update(
        state=state, error=error[:5000], updated_at=timezone.now()
    )


# --- Workspace purge ------------------------------------------------------------------------


def services_stop(*, workspace: Workspace, progress: registry.Progress) -> None:
    """The purge step: stop every web service of the workspace and remove its rows, before
    images (a service uses its image) and tracking's rows and artifacts go. Unfinished
    deployment jobs end first, so no worker starts an instance afterwards. Idempotent."""
    now = timezone.now()
    DeploymentJob.objects.filter(workspace=workspace, status__in=Job.UNFINISHED).update(
        status=Job.Status.FAILED,
        error="Canceled: the workspace is being deleted",
        finished_at=now,
        updated_at=now,
    )
    for service in WebService.objects.filter(workspace=workspace).order_by("pk"):
        try:
            runtime_for(service).stop(service)
        except RuntimeError_ as exc:
            # A cluster that does not answer must not keep the workspace forever; what is
            # left there is named in the log (docs/deployments.md says how to clean up).
            log.warning("Service %s of workspace %s not stopped: %s", service, workspace.pk, exc)
        WebService.objects.filter(pk=service.pk).delete()
        progress(1, "Stopping web services")


def services_units(workspace: Workspace) -> int:
    return WebService.objects.filter(workspace=workspace).count()


def studio_service_host(*, studio_url: str) -> dict[str, tuple[list[str], dict[str, str] | None]]:
    """The "studio_processes" hook (called by `runstudio`): the service host, with the
    studio's own environment (it reads the database), telling scoring servers where to
    send telemetry."""
    import sys

    argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "service_host"]
    argv += ["--studio-url", studio_url]
    return {"service_host": (argv, None)}


def register() -> None:
    """Called from DeploymentsConfig.ready()."""
    registry.register_job_kind(
        registry.JobKind(
            name=KIND,
            label="Deployment",
            model=DeploymentJob,
            run=deployment_run,
            units=deployment_units,
            done_phase="Succeeded",
            max_attempts=2,
            retry_delays=(10,),
            # Longer than a deployment may wait for its instance (the job beats its heart
            # while waiting, so this only catches a dead worker).
            stale_after=timedelta(seconds=max(600, settings.SERVICE_DEPLOY_TIMEOUT * 2)),
            on_fail=deployment_failed,
        )
    )
    registry.register_hook("studio_processes", studio_service_host)
    # Before images (80) and tracking (100); after remote runs (50) end.
    registry.register_purge_step(
        registry.PurgeStep(
            name="deployments-web-services", order=60, run=services_stop, units=services_units
        )
    )


__all__ = [
    "KIND",
    "check_service_name",
    "service_delete",
    "service_deploy",
    "service_keys",
    "service_logs",
    "service_regen_key",
    "service_token",
    "service_update",
]
