"""/api/v1 environments: list (the latest of each name), register, get, versions."""

from __future__ import annotations

from typing import Any

from django.db.models import Max
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import selectors
from deployments.api.common import path_name, workspace_for
from deployments.api.serializers import (
    EnvironmentListSerializer,
    EnvironmentRegisterSerializer,
    EnvironmentSerializer,
)
from deployments.models import Environment
from deployments.services import environments as svc
from portal.errors import NotFound
from portal.models import Workspace
from tracking.api.common import errors

TAGS = ["environments"]


def environment_register(
    request: Request, workspace: Workspace, spec: dict[str, Any]
) -> tuple[Environment, bool]:
    """Register a validated spec (EnvironmentRegisterSerializer's) as the caller: (the
    version, whether it is new rather than the unchanged latest one)."""
    before = Environment.objects.filter(workspace=workspace, name=spec["name"]).aggregate(
        latest=Max("version")
    )["latest"]
    environment = svc.environment_register(actor=request.user, workspace=workspace, **spec)
    return environment, before is None or environment.version > before


def _environment(
    request: Request, kwargs: dict[str, Any], environment: str, version: str | None = None
) -> Environment:
    """The URL's environment: its latest version, or `version` (which must be a whole
    number from 1: anything else names no version)."""
    workspace = workspace_for(request, kwargs)
    name = path_name(environment, "environment")
    if version is None:
        return svc.environment_get(workspace=workspace, name=name)
    if not (version.isascii() and version.isdigit()) or not 0 < int(version) < 2**31:
        raise NotFound(f"No version {version[:20]!r} of environment '{name[:70]}'.")
    return svc.environment_get(workspace=workspace, name=name, version=int(version))


def _listed(environments: Any) -> Response:
    data = [selectors.environment_data(e) for e in environments]
    return Response(EnvironmentListSerializer({"environments": data}).data)


def _shown(environment: Environment, status: int = 200) -> Response:
    return Response(EnvironmentSerializer(selectors.environment_data(environment)).data, status)


class EnvironmentListView(APIView):
    @extend_schema(
        operation_id="environments_list",
        tags=TAGS,
        summary="List environments",
        description="The latest version of each environment, by name, the curated ones "
        "(`mlstudio-minimal`, `mlstudio-sklearn`) included.",
        responses={200: EnvironmentListSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        return _listed(selectors.environment_latest_list(workspace=workspace))

    @extend_schema(
        operation_id="environments_register",
        tags=TAGS,
        summary="Register an environment",
        description="Needs the contributor role. A spec that differs from the name's "
        "latest version becomes a new version (201); the same spec again answers that "
        "version (200), so registering before every submit is cheap. Names starting with "
        "`mlstudio-` are reserved (400).",
        request=EnvironmentRegisterSerializer,
        responses={
            200: OpenApiResponse(EnvironmentSerializer, "The spec is unchanged: that version."),
            201: OpenApiResponse(EnvironmentSerializer, "A new version."),
            **errors(400, 401, 403, 404),
        },
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        body = EnvironmentRegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        environment, new = environment_register(request, workspace, body.validated_data)
        return _shown(environment, 201 if new else 200)


class EnvironmentDetailView(APIView):
    @extend_schema(
        operation_id="environments_get",
        tags=TAGS,
        summary="Get an environment (its latest version)",
        responses={200: EnvironmentSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, environment: str, **kwargs: Any) -> Response:
        return _shown(_environment(request, kwargs, environment))


class EnvironmentVersionListView(APIView):
    @extend_schema(
        operation_id="environments_versions_list",
        tags=TAGS,
        summary="List an environment's versions",
        description="Newest first.",
        responses={200: EnvironmentListSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, environment: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        name = path_name(environment, "environment")
        return _listed(selectors.environment_versions(workspace=workspace, name=name))


class EnvironmentVersionView(APIView):
    @extend_schema(
        operation_id="environments_versions_get",
        tags=TAGS,
        summary="Get a version of an environment",
        responses={200: EnvironmentSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, environment: str, version: str, **kwargs: Any) -> Response:
        return _shown(_environment(request, kwargs, environment, version))
