"""/api/v1 for the workspace tree: subscriptions, resource groups, workspaces, deletion."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import selectors, services
from portal.api.access import request_token, rg_access, sub_access, ws_access
from portal.api.deletion import deletion_requested
from portal.api.pagination import CursorPagination, NewestFirst
from portal.api.schema import error_responses
from portal.api.serializers import (
    DeletionJobSerializer,
    ResourceGroupSerializer,
    ResourceGroupUpdateSerializer,
    SubscriptionSerializer,
    SubscriptionUpdateSerializer,
    TrackingTokenSerializer,
    WorkspaceCreateSerializer,
    WorkspaceDetailsSerializer,
    WorkspaceUpdateSerializer,
)
from portal.errors import PermissionDenied
from portal.models import ResourceGroup, Role, Subscription, TokenKind, Workspace


def _confirm_param(example: str) -> OpenApiParameter:
    return OpenApiParameter(
        "confirm",
        str,
        required=True,
        description="The exact name of what is deleted (case and all), as a person would "
        "type it to confirm. Missing or different: 400, and nothing is deleted.",
        examples=[OpenApiExample("The name in the path", value=example)],
    )


# How a cascade deletion answers, for the DELETE operations of the tree.
CASCADE_DELETION = (
    "Answers **202** with a deletion job at once; the deleting happens in the background. "
    "Poll the job's `url` (`GET /api/v1/jobs/{{job_id}}`) until `is_finished`; a failed "
    "job can be retried. From the 202 on, the {what} is gone from every list and lookup, "
    "and its name stays taken until the job has finished.\n\n"
    "Needs the contributor role and `confirm` set to the {what}'s name."
)


class ByName(CursorPagination):
    ordering = ("name", "id")


def _valid(serializer_class: type, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _shown(
    serializer_class: type, obj: Subscription | ResourceGroup, role: str | None
) -> dict[str, Any]:
    """The object as the API shows it, with the caller's role on it."""
    obj.role = role
    return serializer_class(obj).data


def _role(request: Request, obj: Subscription | ResourceGroup | Workspace) -> str | None:
    """The caller's role on what it just made."""
    return selectors.role_for(request.user, obj, request_token(request))


def _details(request: Request, workspace: Workspace, role: str | None) -> dict[str, Any]:
    details = selectors.workspace_details(workspace, selectors.base_url(request))
    details["role"] = role
    return WorkspaceDetailsSerializer(details).data


class ScopeListView(GenericAPIView):
    """A page of the subscriptions, resource groups or workspaces the caller can see."""

    def role_page(
        self, request: Request, scopes: QuerySet, show: Callable[[Any, str | None], Any]
    ) -> Response:
        """The page, each item shown with the caller's role on it (one query for the
        roles of the whole page)."""
        roles = selectors.role_map(request.user, request_token(request))
        page = self.paginate_queryset(scopes)
        return self.get_paginated_response([show(obj, roles.role(obj)) for obj in page])


def _deletion_job(request: Request, target: Workspace | ResourceGroup) -> Response:
    return deletion_requested(request, target, confirm_name=request.query_params.get("confirm"))


# --- Subscriptions ------------------------------------------------------------------------


class SubscriptionListView(ScopeListView):
    pagination_class = ByName
    serializer_class = SubscriptionSerializer

    @extend_schema(
        operation_id="subscriptions_list",
        summary="List subscriptions",
        description="The subscriptions the caller can see, by name, each with the caller's "
        "`role` on it (`null` when they only see it because of a role further down).",
        responses=SubscriptionSerializer(many=True),
        tags=["subscriptions"],
    )
    def get(self, request: Request) -> Response:
        visible = selectors.visible_subscriptions(request.user, request_token(request))
        return self.role_page(request, visible, partial(_shown, SubscriptionSerializer))

    @extend_schema(
        operation_id="subscriptions_create",
        summary="Create a subscription",
        description="Administrators only (403 otherwise); the creator becomes its owner. "
        "Names are unique (400 `RESOURCE_ALREADY_EXISTS`).",
        request=SubscriptionSerializer,
        responses={201: SubscriptionSerializer, **error_responses(403)},
        tags=["subscriptions"],
    )
    def post(self, request: Request) -> Response:
        if not selectors.can_create_subscription(request.user, request_token(request)):
            raise PermissionDenied("Only administrators create subscriptions.")
        data = _valid(SubscriptionSerializer, request)
        sub = services.subscription_create(
            actor=request.user, name=data["name"], description=data.get("description", "")
        )
        return Response(_shown(SubscriptionSerializer, sub, _role(request, sub)), status=201)


class SubscriptionDetailView(APIView):
    @extend_schema(
        operation_id="subscriptions_get",
        summary="Get a subscription",
        description="With the caller's `role` on it.",
        responses=SubscriptionSerializer,
        tags=["subscriptions"],
    )
    def get(self, request: Request, subscription_id: UUID) -> Response:
        access = sub_access(request, subscription_id)
        return Response(_shown(SubscriptionSerializer, access.obj, access.role))

    @extend_schema(
        operation_id="subscriptions_update",
        summary="Rename a subscription or change its description",
        description="Owners only. Fields left out keep their value.",
        request=SubscriptionUpdateSerializer,
        responses={200: SubscriptionSerializer, **error_responses(403)},
        tags=["subscriptions"],
    )
    def patch(self, request: Request, subscription_id: UUID) -> Response:
        access = sub_access(request, subscription_id, Role.OWNER)
        data = _valid(SubscriptionUpdateSerializer, request)
        sub = services.subscription_update(
            actor=request.user,
            subscription=access.obj,
            name=data.get("name", access.obj.name),
            description=data.get("description", access.obj.description),
        )
        return Response(_shown(SubscriptionSerializer, sub, access.role))


# --- Resource groups ----------------------------------------------------------------------


class ResourceGroupListView(ScopeListView):
    pagination_class = ByName
    serializer_class = ResourceGroupSerializer

    @extend_schema(
        operation_id="resource_groups_list",
        summary="List a subscription's resource groups",
        description="The resource groups of the subscription that the caller can see, by "
        "name, each with the caller's `role` on it.",
        responses=ResourceGroupSerializer(many=True),
        tags=["resource groups"],
    )
    def get(self, request: Request, subscription_id: UUID) -> Response:
        access = sub_access(request, subscription_id)
        groups = selectors.visible_resource_groups(
            request.user, access.obj, access.role, request_token(request)
        )
        return self.role_page(request, groups, partial(_shown, ResourceGroupSerializer))

    @extend_schema(
        operation_id="resource_groups_create",
        summary="Create a resource group",
        description="Needs the contributor role on the subscription. Names are unique in "
        "the subscription (400 `RESOURCE_ALREADY_EXISTS`, also while a deleted group of the "
        "same name is still being removed).",
        request=ResourceGroupSerializer,
        responses={201: ResourceGroupSerializer, **error_responses(403)},
        tags=["resource groups"],
    )
    def post(self, request: Request, subscription_id: UUID) -> Response:
        access = sub_access(request, subscription_id, Role.CONTRIBUTOR)
        data = _valid(ResourceGroupSerializer, request)
        rg = services.resource_group_create(actor=request.user, subscription=access.obj, **data)
        return Response(_shown(ResourceGroupSerializer, rg, _role(request, rg)), status=201)


class ResourceGroupDetailView(APIView):
    @extend_schema(
        operation_id="resource_groups_get",
        summary="Get a resource group",
        description="With the caller's `role` on it.",
        responses=ResourceGroupSerializer,
        tags=["resource groups"],
    )
    def get(self, request: Request, subscription_id: UUID, resource_group: str) -> Response:
        access = rg_access(request, subscription_id, resource_group)
        return Response(_shown(ResourceGroupSerializer, access.obj, access.role))

    @extend_schema(
        operation_id="resource_groups_update",
        summary="Replace a resource group's tags",
        description="Needs the contributor role. `tags` replaces all the tags; send `{}` "
        "to remove them.",
        request=ResourceGroupUpdateSerializer,
        responses={200: ResourceGroupSerializer, **error_responses(403)},
        tags=["resource groups"],
    )
    def patch(self, request: Request, subscription_id: UUID, resource_group: str) -> Response:
        access = rg_access(request, subscription_id, resource_group, Role.CONTRIBUTOR)
        data = _valid(ResourceGroupUpdateSerializer, request)
        rg = services.resource_group_update(
            actor=request.user, resource_group=access.obj, tags=data["tags"]
        )
        return Response(_shown(ResourceGroupSerializer, rg, access.role))

    @extend_schema(
        operation_id="resource_groups_delete",
        summary="Delete a resource group and its workspaces (cascade job)",
        description=CASCADE_DELETION.format(what="resource group"),
        parameters=[_confirm_param("rg-vision")],
        responses={202: DeletionJobSerializer, **error_responses(400, 403)},
        tags=["resource groups"],
    )
    def delete(self, request: Request, subscription_id: UUID, resource_group: str) -> Response:
        access = rg_access(request, subscription_id, resource_group, Role.CONTRIBUTOR)
        return _deletion_job(request, access.obj)


# --- Workspaces ---------------------------------------------------------------------------


class WorkspaceListView(ScopeListView):
    """Every workspace the caller can see, anywhere in the tree."""

    pagination_class = NewestFirst
    serializer_class = WorkspaceDetailsSerializer

    @extend_schema(
        operation_id="workspaces_list",
        summary="List all my workspaces",
        description="Every workspace the caller can see, anywhere in the tree, newest "
        "first. For one resource group's, see `resource_group_workspaces_list`.",
        responses=WorkspaceDetailsSerializer(many=True),
        tags=["workspaces"],
    )
    def get(self, request: Request) -> Response:
        visible = selectors.visible_workspaces(request.user, request_token(request))
        return self.role_page(request, visible, partial(_details, request))


class ResourceGroupWorkspacesView(ScopeListView):
    pagination_class = ByName
    serializer_class = WorkspaceDetailsSerializer

    @extend_schema(
        operation_id="resource_group_workspaces_list",
        summary="List a resource group's workspaces",
        description="The workspaces of the resource group that the caller can see, by name.",
        responses=WorkspaceDetailsSerializer(many=True),
        tags=["workspaces"],
    )
    def get(self, request: Request, subscription_id: UUID, resource_group: str) -> Response:
        access = rg_access(request, subscription_id, resource_group)
        visible = selectors.visible_workspaces(request.user, request_token(request))
        workspaces = visible.filter(resource_group=access.obj)
        return self.role_page(request, workspaces, partial(_details, request))

    @extend_schema(
        operation_id="workspaces_create",
        summary="Create a workspace",
        description="Needs the contributor role on the resource group. Names are unique in "
        "the resource group (400 `RESOURCE_ALREADY_EXISTS`, also while a deleted workspace "
        "of the same name is still being removed). The answer has its `mlflowTrackingUri`.",
        request=WorkspaceCreateSerializer,
        responses={201: WorkspaceDetailsSerializer, **error_responses(403)},
        tags=["workspaces"],
    )
    def post(self, request: Request, subscription_id: UUID, resource_group: str) -> Response:
        access = rg_access(request, subscription_id, resource_group, Role.CONTRIBUTOR)
        data = _valid(WorkspaceCreateSerializer, request)
        ws = services.workspace_create(actor=request.user, resource_group=access.obj, **data)
        return Response(_details(request, ws, _role(request, ws)), status=201)


class WorkspaceDetailView(APIView):
    @extend_schema(
        operation_id="workspaces_get",
        summary="Get a workspace",
        description="Its details in the shape of `Workspace.get_details()` of the SDK, with "
        "the MLflow tracking URI and the caller's `role`.",
        responses=WorkspaceDetailsSerializer,
        tags=["workspaces"],
    )
    def get(
        self, request: Request, subscription_id: UUID, resource_group: str, workspace: str
    ) -> Response:
        access = ws_access(request, subscription_id, resource_group, workspace)
        return Response(_details(request, access.obj, access.role))

    @extend_schema(
        operation_id="workspaces_update",
        summary="Change a workspace's description, friendly name or tags",
        description="Needs the contributor role. Fields left out keep their value; `tags` "
        "replaces all the tags. A workspace cannot be renamed.",
        request=WorkspaceUpdateSerializer,
        responses={200: WorkspaceDetailsSerializer, **error_responses(403)},
        tags=["workspaces"],
    )
    def patch(
        self, request: Request, subscription_id: UUID, resource_group: str, workspace: str
    ) -> Response:
        access = ws_access(request, subscription_id, resource_group, workspace, Role.CONTRIBUTOR)
        data = _valid(WorkspaceUpdateSerializer, request)
        ws = access.obj
        ws = services.workspace_update(
            actor=request.user,
            workspace=ws,
            description=data.get("description", ws.description),
            friendly_name=data.get("friendly_name", ws.friendly_name),
            tags=data.get("tags", ws.tags),
        )
        return Response(_details(request, ws, access.role))

    @extend_schema(
        operation_id="workspaces_delete",
        summary="Delete a workspace (cascade job)",
        description=CASCADE_DELETION.format(what="workspace")
        + " Its experiments, runs, metrics and artifacts are deleted with it.",
        parameters=[_confirm_param("ws-detection")],
        responses={202: DeletionJobSerializer, **error_responses(400, 403)},
        tags=["workspaces"],
    )
    def delete(
        self, request: Request, subscription_id: UUID, resource_group: str, workspace: str
    ) -> Response:
        access = ws_access(request, subscription_id, resource_group, workspace, Role.CONTRIBUTOR)
        return _deletion_job(request, access.obj)


class TrackingTokenView(APIView):
    """Mint a short-lived token that works only in this workspace, for MLflow clients."""

    @extend_schema(
        operation_id="workspaces_tracking_token_create",
        summary="Mint a tracking token for MLflow clients",
        description="A short-lived token that works only in this workspace and only for "
        "tracking; set it as `MLFLOW_TRACKING_TOKEN` with `MLFLOW_TRACKING_URI` set to "
        "`tracking_uri`. Any role on the workspace may mint one.\n\n"
        "**Limits:** it lives for the server's tracking-token lifetime (an hour unless "
        "configured otherwise) and never longer than the token of this request. Its scope "
        "is write (the caller's role still decides what it may do), or read when the "
        "request's token is read-only. A tracking token cannot mint another "
        "(403), so one cannot renew itself forever.",
        request=None,
        responses={201: TrackingTokenSerializer, **error_responses(403)},
        tags=["workspaces"],
    )
    def post(
        self, request: Request, subscription_id: UUID, resource_group: str, workspace: str
    ) -> Response:
        token = request_token(request)
        if token is not None and token.kind == TokenKind.TRACKING:
            # Refused before the lookup, whatever the workspace (the service refuses too).
            raise PermissionDenied("A tracking token cannot mint tracking tokens.")
        access = ws_access(request, subscription_id, resource_group, workspace, Role.READER)
        minted, raw = services.tracking_token_mint(
            user=request.user, workspace=access.obj, parent=token
        )
        body = {
            "token": raw,
            "expires_at": minted.expires_at,
            "tracking_uri": selectors.tracking_uri(access.obj, selectors.base_url(request)),
        }
        return Response(TrackingTokenSerializer(body).data, status=201)
