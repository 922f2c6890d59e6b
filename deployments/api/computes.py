"""/api/v1 compute targets: list, create, get, change, delete."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import selectors
from deployments.api.common import path_name, workspace_for
from deployments.api.serializers import (
    ComputeTargetCreateSerializer,
    ComputeTargetListSerializer,
    ComputeTargetSerializer,
    ComputeTargetUpdateSerializer,
)
from deployments.models import ComputeTarget
from deployments.services import compute as svc
from portal.models import Workspace
from tracking.api.common import errors

TAGS = ["compute"]


def _target(workspace: Workspace, name: str) -> dict[str, Any]:
    """The target as the API shows it, with its counts and workers."""
    target = selectors.compute_target_detail(workspace=workspace, name=name)
    return ComputeTargetSerializer(selectors.compute_target_data(target)).data


def _named(workspace: Workspace, compute: str) -> ComputeTarget:
    return svc.compute_target_get(workspace=workspace, name=path_name(compute, "compute target"))


def _valid(serializer_class: type, request: Request) -> dict[str, Any]:
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


class ComputeListView(APIView):
    @extend_schema(
        operation_id="computes_list",
        tags=TAGS,
        summary="List compute targets",
        description="The workspace's compute targets by name, `local` (the studio's own "
        "worker) included, each with its queued and running jobs and its recent workers.",
        responses={200: ComputeTargetListSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        targets = selectors.compute_target_list(workspace=workspace)
        data = [selectors.compute_target_data(target) for target in targets]
        return Response(ComputeTargetListSerializer({"compute_targets": data}).data)

    @extend_schema(
        operation_id="computes_create",
        tags=TAGS,
        summary="Create a compute target",
        description="Needs the contributor role. Names are unique in the workspace in any "
        "case (400 `RESOURCE_ALREADY_EXISTS`). Its jobs go to a queue of its own: start "
        "workers for it with a worker token (`computes/{name}/worker-tokens`). Kind "
        "`kubernetes` attaches a cluster for web services: `kubeconfig` (its text, "
        "credentials inline; stored encrypted and never returned) and `config` (namespace, "
        "ingress, registry settings).",
        request=ComputeTargetCreateSerializer,
        responses={201: ComputeTargetSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        body = _valid(ComputeTargetCreateSerializer, request)
        target = svc.compute_target_create(actor=request.user, workspace=workspace, **body)
        return Response(_target(workspace, target.name), status=201)


class ComputeDetailView(APIView):
    @extend_schema(
        operation_id="computes_get",
        tags=TAGS,
        summary="Get a compute target",
        description="By name, in any case.",
        responses={200: ComputeTargetSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, compute: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        return Response(_target(workspace, path_name(compute, "compute target")))

    @extend_schema(
        operation_id="computes_update",
        tags=TAGS,
        summary="Change a compute target",
        description="Needs the contributor role. Fields left out keep their value. A lower "
        "`max_nodes` stops no running job; new ones wait until fewer run. A kubernetes "
        "target takes a new `kubeconfig` or `config` (used from the next deployment on).",
        request=ComputeTargetUpdateSerializer,
        responses={200: ComputeTargetSerializer, **errors(400, 401, 403, 404)},
    )
    def patch(self, request: Request, compute: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        target = _named(workspace, compute)
        body = _valid(ComputeTargetUpdateSerializer, request)
        svc.compute_target_update(actor=request.user, target=target, **body)
        return Response(_target(workspace, target.name))

    @extend_schema(
        operation_id="computes_delete",
        tags=TAGS,
        summary="Delete a compute target",
        description="Needs the contributor role. Refused (400) for `local` and for a target "
        "with queued or running jobs: cancel them or let them end first. Ended jobs keep "
        "the target's name.",
        responses={
            204: OpenApiResponse(description="Deleted."),
            **errors(400, 401, 403, 404),
        },
    )
    def delete(self, request: Request, compute: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        target = _named(workspace, compute)
        svc.compute_target_delete(actor=request.user, target=target)
        return Response(status=204)
