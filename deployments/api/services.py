"""/api/v1 web services: deploy, list, get, update, delete; keys, tokens, logs.

Readers list and read services and their logs; contributors deploy, change and delete
them, and are the only ones who see keys and tokens (a read-scoped or tracking token
never does: those routes check the contributor role). A service's shape carries no
secret (service_serializers.ServiceSerializer)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import selectors_services
from deployments.api.common import path_name, workspace_for
from deployments.api.service_serializers import (
    MAX_LOG_LINES,
    RegenKeySerializer,
    ServiceDeploySerializer,
    ServiceKeysSerializer,
    ServiceListSerializer,
    ServiceLogsSerializer,
    ServiceSerializer,
    ServiceTokenSerializer,
    ServiceUpdateSerializer,
)
from deployments.models import ComputeTarget, DeploymentJob, Image, WebService
from deployments.services import images
from deployments.services import webservices as svc
from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from tracking.api.common import errors, query_int, query_list, query_text

TAGS = ["web services"]
SERVICE_PARAM = OpenApiParameter("service", str, OpenApiParameter.PATH, description="Its name.")


# --- Reading --------------------------------------------------------------------------------


def service_get(workspace: Workspace, name: str) -> WebService:
    """The workspace's service of that name (404 otherwise)."""
    return selectors_services.webservice_get(workspace, path_name(name, "web service"))


def _latest_jobs(services: list[WebService]) -> dict[int, DeploymentJob]:
    return selectors_services.webservice_latest_jobs(services)


def _deployment(job: DeploymentJob | None) -> dict[str, Any] | None:
    if job is None:
        return None
    return {
        "id": job.id,
        "operation": job.operation,
        "status": job.status,
        "phase": job.phase,
        "percent": job.percent,
        "error": job.error,
        "image": job.image.id_label if job.image else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def service_data(service: WebService, job: DeploymentJob | None) -> dict[str, Any]:
    """A service as the API shows it: never its keys, token secret or runtime internals."""
    image = service.image
    return {
        "name": service.name,
        "compute_type": service.compute_type,
        "compute_target": service.compute_target.name if service.compute_target else None,
        "image": image.id_label,
        "image_name": image.name,
        "image_version": image.version,
        "model": {"name": image.model_name, "version": image.model_version},
        "state": service.state,
        "error": service.error,
        "scoring_uri": service.scoring_uri or None,
        "swagger_uri": service.swagger_uri or None,
        "auth_enabled": service.auth_enabled,
        "description": service.description,
        "tags": service.tags or {},
        "properties": service.properties or {},
        "config": service.config or {},
        "deployment": _deployment(job),
        "created_at": service.created_at,
        "created_by": service.created_by.username if service.created_by else None,
        "updated_at": service.updated_at,
    }


def _shown(service: WebService) -> dict[str, Any]:
    service = service_get(service.workspace, service.name)
    return ServiceSerializer(service_data(service, _latest_jobs([service]).get(service.pk))).data


def _image(workspace: Workspace, ref: str) -> Image:
    """The image `name:version`, or the newest version of `name`; one that is not there
    is a bad value of the body (400), not a missing route."""
    name, _, version = ref.partition(":")
    if version and not version.isdigit():
        raise InvalidParameter(f"image: {ref[:100]!r} is not name or name:version.")
    try:
        return images.image_get(
            workspace=workspace, name=name, version=int(version) if version else None
        )
    except NotFound as exc:
        raise InvalidParameter(f"image: {exc.message}") from None


def _compute_target(workspace: Workspace, name: str | None) -> ComputeTarget | None:
    if not name:
        return None
    target = ComputeTarget.objects.filter(workspace=workspace, name__iexact=name).first()
    if target is None:
        raise InvalidParameter(f"compute_target: no compute target {name!r} in this workspace.")
    return target


def _valid(serializer_class: type, request: Request) -> dict[str, Any]:
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _tag_filters(request: Request) -> list[tuple[str, str | None]]:
    pairs = []
    for value in query_list(request, "tag"):
        key, sep, rest = value.partition("=")
        pairs.append((key, rest if sep else None))
    return pairs


# --- Views ----------------------------------------------------------------------------------


class ServiceListView(APIView):
    @extend_schema(
        operation_id="services_list",
        tags=TAGS,
        summary="List web services",
        description="The workspace's web services by name, each with its state, URIs and "
        "latest deployment job; never its keys. Filter with `compute_type`, `image_name`, "
        "`image` (name:version) and `tag` (`key` or `key=value`, repeatable: all must match).",
        parameters=[
            OpenApiParameter("compute_type", str, enum=list(WebService.ComputeType.values)),
            OpenApiParameter("image_name", str),
            OpenApiParameter("image", str, description="name:version"),
            OpenApiParameter("tag", str, many=True, description="`key` or `key=value`"),
        ],
        responses={200: ServiceListSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        services = selectors_services.webservice_list(workspace)
        compute_type = query_text(request, "compute_type")
        if compute_type:
            if compute_type not in WebService.ComputeType.values:
                raise InvalidParameter(
                    f"compute_type: one of {', '.join(WebService.ComputeType.values)}."
                )
            services = services.filter(compute_type=compute_type)
        if image_name := query_text(request, "image_name"):
            services = services.filter(image__name=image_name)
        if image := query_text(request, "image"):
            name, _, version = image.partition(":")
            services = services.filter(image__name=name)
            if version:
                services = services.filter(image__version=int(version) if version.isdigit() else -1)
        tags = _tag_filters(request)
        found = [
            s
            for s in services
            if all(k in (s.tags or {}) and (v is None or s.tags[k] == v) for k, v in tags)
        ]
        latest = _latest_jobs(found)
        data = [service_data(s, latest.get(s.pk)) for s in found]
        return Response(ServiceListSerializer({"services": data}).data)

    @extend_schema(
        operation_id="services_deploy",
        tags=TAGS,
        summary="Deploy an image as a web service",
        description="Needs the contributor role. Answers 202 with the service `Transitioning` "
        "and its deployment job; poll `GET services/{name}` until the job has ended and the "
        "state is `Healthy` (or `Failed`, with `error`). The image must have built "
        "(`Succeeded`). Keys are made now: `GET services/{name}/keys`. Names are unique in "
        "the workspace (400 `RESOURCE_ALREADY_EXISTS`).",
        request=ServiceDeploySerializer,
        responses={
            202: OpenApiResponse(
                ServiceSerializer, "Accepted: the service, Transitioning, and its create job."
            ),
            **errors(400, 401, 403, 404, 409),
        },
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        body = _valid(ServiceDeploySerializer, request)
        service = svc.service_deploy(
            actor=request.user,
            workspace=workspace,
            name=body["name"],
            image=_image(workspace, body["image"]),
            compute_type=body["compute_type"],
            compute_target=_compute_target(workspace, body.get("compute_target")),
            config=body["config"],
            description=body["description"],
            tags=body["tags"],
            properties=body["properties"],
            auth_enabled=body["auth_enabled"],
        )
        return Response(_shown(service), status=202)


class ServiceDetailView(APIView):
    @extend_schema(
        operation_id="services_get",
        tags=TAGS,
        summary="Get a web service",
        description="Its state, scoring and swagger URIs, configuration and latest "
        "deployment job (poll this while it is `Transitioning`). No keys here.",
        parameters=[SERVICE_PARAM],
        responses={200: ServiceSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, service: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        return Response(_shown(service_get(workspace, service)))

    @extend_schema(
        operation_id="services_update",
        tags=TAGS,
        summary="Change a web service",
        description="Needs the contributor role. Fields left out keep their value. A new "
        "`image` or `config` rolls out as a new deployment job, without downtime: the new "
        "instance answers `/health` before the old one stops (answered 202; poll as after "
        "a deploy). Description, tags, properties and `auth_enabled` change at once (200). "
        "409 `RESOURCE_CONFLICT` while another deployment of it runs or it is being deleted.",
        parameters=[SERVICE_PARAM],
        request=ServiceUpdateSerializer,
        responses={
            200: OpenApiResponse(ServiceSerializer, "Changed; nothing to roll out."),
            202: OpenApiResponse(
                ServiceSerializer, "Accepted: the service, Transitioning, and its update job."
            ),
            **errors(400, 401, 403, 404, 409),
        },
    )
    def patch(self, request: Request, service: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        found = service_get(workspace, service)
        body = _valid(ServiceUpdateSerializer, request)
        before = _latest_jobs([found]).get(found.pk)
        if "image" in body:
            body["image"] = _image(workspace, body["image"])
        updated = svc.service_update(actor=request.user, service=found, **body)
        after = _latest_jobs([updated]).get(updated.pk)
        rolling = after is not None and (before is None or after.pk != before.pk)
        return Response(_shown(updated), status=202 if rolling else 200)

    @extend_schema(
        operation_id="services_delete",
        tags=TAGS,
        summary="Delete a web service",
        description="Needs the contributor role. Answers 202 with the service `Deleting` and "
        "its delete job: its instances stop and its keys stop working; once the job has "
        "ended, `GET services/{name}` is a 404 and the name is free again.",
        parameters=[SERVICE_PARAM],
        responses={
            202: OpenApiResponse(
                ServiceSerializer, "Accepted: the service, Deleting, and its delete job."
            ),
            **errors(401, 403, 404),
        },
    )
    def delete(self, request: Request, service: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        found = service_get(workspace, service)
        job = svc.service_delete(actor=request.user, service=found)
        try:
            return Response(_shown(found), status=202)
        except NotFound:  # the job has run and removed it already
            job.refresh_from_db()
            data = service_data(found, job)
            data["state"] = WebService.State.DELETING
            return Response(ServiceSerializer(data).data, status=202)


class ServiceKeysView(APIView):
    @extend_schema(
        operation_id="services_keys",
        tags=TAGS,
        summary="Get a web service's keys",
        description="Needs the contributor role: readers, read-scoped tokens and a run's "
        "tracking token never see keys. Score with `Authorization: Bearer <key>`; either key "
        "works.",
        parameters=[SERVICE_PARAM],
        responses={200: ServiceKeysSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, service: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        primary, secondary = svc.service_keys(service=service_get(workspace, service))
        return Response(
            ServiceKeysSerializer({"primary_key": primary, "secondary_key": secondary}).data
        )


class ServiceRegenKeyView(APIView):
    @extend_schema(
        operation_id="services_regen_key",
        tags=TAGS,
        summary="Regenerate a web service's key",
        description="Needs the contributor role. Replaces the `Primary` or `Secondary` key "
        "with a new random one; the service takes it within seconds, without a restart, and "
        "the old key stops working. Answers both keys.",
        parameters=[SERVICE_PARAM],
        request=RegenKeySerializer,
        responses={200: ServiceKeysSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, service: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        found = service_get(workspace, service)
        body = _valid(RegenKeySerializer, request)
        updated = svc.service_regen_key(actor=request.user, service=found, key=body["key"])
        primary, secondary = svc.service_keys(service=updated)
        return Response(
            ServiceKeysSerializer({"primary_key": primary, "secondary_key": secondary}).data
        )


class ServiceTokenView(APIView):
    @extend_schema(
        operation_id="services_token",
        tags=TAGS,
        summary="Get a short-lived scoring token",
        description="Needs the contributor role. A token the service accepts as it does a "
        "key (`Authorization: Bearer <token>`) until `refresh_by`; ask for a new one before.",
        parameters=[SERVICE_PARAM],
        request=None,
        responses={200: ServiceTokenSerializer, **errors(401, 403, 404)},
    )
    def post(self, request: Request, service: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        token, refresh_by = svc.service_token(service=service_get(workspace, service))
        data = {"access_token": token, "token_type": "Bearer", "refresh_by": refresh_by}
        return Response(ServiceTokenSerializer(data).data)


class ServiceLogsView(APIView):
    @extend_schema(
        operation_id="services_logs",
        tags=TAGS,
        summary="Read a web service's logs",
        description="The newest `num_lines` lines (default 5000) of the service's output: "
        "the scoring server's own and its runtime's (starts, health checks, restarts).",
        parameters=[
            SERVICE_PARAM,
            OpenApiParameter("num_lines", int, description=f"1 to {MAX_LOG_LINES}."),
        ],
        responses={200: ServiceLogsSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, service: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        lines = query_int(request, "num_lines", default=5000, minimum=1, maximum=MAX_LOG_LINES)
        text = svc.service_logs(service=service_get(workspace, service), tail_lines=lines)
        return Response(ServiceLogsSerializer({"logs": text}).data)
