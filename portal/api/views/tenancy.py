"""/api/v1 for the workspace tree: subscriptions, resource groups, workspaces, deletion."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import selectors, services
from portal.api.common import (
    CursorPagination,
    deletion_requested,
    request_token,
    rg_access,
    sub_access,
    ws_access,
)
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

CONFIRM_PARAM = OpenApiParameter(
    "confirm",
    str,
    required=True,
    description="The exact name of what is deleted, as typed by a person; else 400 and "
    "nothing is deleted.",
)


class ByName(CursorPagination):
    ordering = ("name", "id")


class NewestFirst(CursorPagination):
    ordering = ("-created_at", "id")


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
        responses=SubscriptionSerializer(many=True),
        tags=["subscriptions"],
    )
    def get(self, request: Request) -> Response:
        visible = selectors.visible_subscriptions(request.user, request_token(request))
        return self.role_page(request, visible, partial(_shown, SubscriptionSerializer))

    @extend_schema(
        operation_id="subscriptions_create",
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
        operation_id="subscriptions_get", responses=SubscriptionSerializer, tags=["subscriptions"]
    )
    def get(self, request: Request, subscription_id: UUID) -> Response:
        access = sub_access(request, subscription_id)
        return Response(_shown(SubscriptionSerializer, access.obj, access.role))

    @extend_schema(
        operation_id="subscriptions_update",
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
        responses=ResourceGroupSerializer(many=True),
        tags=["resource groups"],
    )
    def get(self, request: Request, subscription_id: UUID) -> Response:
        access = sub_access(request, subscription_id)
        groups = selectors.visible_resource_groups(request.user, access.obj, request_token(request))
        return self.role_page(request, groups, partial(_shown, ResourceGroupSerializer))

    @extend_schema(
        operation_id="resource_groups_create",
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
        responses=ResourceGroupSerializer,
        tags=["resource groups"],
    )
    def get(self, request: Request, subscription_id: UUID, resource_group: str) -> Response:
        access = rg_access(request, subscription_id, resource_group)
        return Response(_shown(ResourceGroupSerializer, access.obj, access.role))

    @extend_schema(
        operation_id="resource_groups_update",
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
        parameters=[CONFIRM_PARAM],
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
        operation_id="resource_groups_workspaces_list",
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
        operation_id="workspaces_get", responses=WorkspaceDetailsSerializer, tags=["workspaces"]
    )
    def get(
        self, request: Request, subscription_id: UUID, resource_group: str, workspace: str
    ) -> Response:
        access = ws_access(request, subscription_id, resource_group, workspace)
        return Response(_details(request, access.obj, access.role))

    @extend_schema(
        operation_id="workspaces_update",
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
        parameters=[CONFIRM_PARAM],
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
        operation_id="workspaces_tracking_token",
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
