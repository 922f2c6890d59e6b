"""/api/v1 role assignments at the three scopes (one set of views for all three)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import selectors, services
from portal.api.access import rg_access, sub_access, ws_access
from portal.api.pagination import CursorPagination
from portal.api.schema import AutoSchema, error_responses
from portal.api.serializers import MembershipSerializer, MembershipUpdateSerializer
from portal.errors import NotFound
from portal.models import ResourceGroup, Role, Subscription
from portal.selectors import Access


class OldestFirst(CursorPagination):
    ordering = ("id",)


class MemberSchema(AutoSchema):
    """One view serves three paths: name and describe operations after the scope of the
    path (workspace_members_list, "List the members of a resource group", …)."""

    verbs = {"GET": "list", "PUT": "set", "DELETE": "remove"}
    summaries = {
        "GET": "List the members of a {scope}",
        "PUT": "Give a user a role on a {scope}",
        "DELETE": "Remove a user's role on a {scope}",
    }

    def _scope_kind(self) -> str:
        if "{workspace}" in self.path:
            return "workspace"
        return "resource_group" if "{resource_group}" in self.path else "subscription"

    def get_operation_id(self) -> str:
        return f"{self._scope_kind()}_members_{self.verbs[self.method]}"

    def get_summary(self) -> str:
        return self.summaries[self.method].format(scope=self._scope_kind().replace("_", " "))

    def get_description(self) -> str:
        scope = self._scope_kind()
        if self.method == "GET":
            above = {
                "subscription": "",
                "resource_group": " and those inherited from its subscription (`inherited: true`)",
                "workspace": " and those inherited from its resource group and subscription "
                "(`inherited: true`)",
            }[scope]
            return (
                f"Who holds a role here: the grants made on this {scope.replace('_', ' ')}"
                f"{above}, oldest first. Needs a role here."
            )
        if self.method == "PUT":
            text = (
                "Grants the role here, or changes the role the user already has here"
                + ("" if scope == "workspace" else "; it holds on everything below too")
                + ". Owners only; the user must exist (404 otherwise)."
            )
        else:
            text = (
                "Removes the grant made here (404 when the user has none here; a role "
                "inherited from above is removed where it was granted). Owners only."
            )
        if scope == "subscription":
            text += " A subscription keeps at least one owner: taking the last one away is a 400."
        return text


def _scope(request: Request, min_role: str, kwargs: dict[str, Any]) -> Access:
    """The subscription, resource group or workspace the path names, checked."""
    sub_id = kwargs["subscription_id"]
    if "workspace" in kwargs:
        return ws_access(request, sub_id, kwargs["resource_group"], kwargs["workspace"], min_role)
    if "resource_group" in kwargs:
        return rg_access(request, sub_id, kwargs["resource_group"], min_role)
    return sub_access(request, sub_id, min_role)


def _context(access: Access) -> dict[str, str]:
    """What MembershipSerializer needs to tell inherited grants from direct ones."""
    if isinstance(access.obj, Subscription):
        return {"scope_kind": "subscription"}
    if isinstance(access.obj, ResourceGroup):
        return {"scope_kind": "resource_group"}
    return {"scope_kind": "workspace"}


class MemberListView(GenericAPIView):
    """Who holds a role here: grants made here and those inherited from above."""

    pagination_class = OldestFirst
    serializer_class = MembershipSerializer
    schema = MemberSchema()

    @extend_schema(
        responses={200: MembershipSerializer(many=True), **error_responses(403)},
        tags=["members"],
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        # As on the members page: listed to those with a role here.
        access = _scope(request, Role.READER, kwargs)
        page = self.paginate_queryset(selectors.scope_memberships(access.obj))
        data = MembershipSerializer(page, many=True, context=_context(access)).data
        return self.get_paginated_response(data)


class MemberDetailView(APIView):
    schema = MemberSchema()

    @extend_schema(
        request=MembershipUpdateSerializer,
        responses={200: MembershipSerializer, **error_responses(403)},
        tags=["members"],
    )
    def put(self, request: Request, username: str, **kwargs: Any) -> Response:
        access = _scope(request, Role.OWNER, kwargs)
        data = MembershipUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = selectors.active_user(username)
        if user is None:
            raise NotFound("User not found")
        membership = services.membership_grant(
            actor=request.user, scope=access.obj, user=user, role=data.validated_data["role"]
        )
        return Response(MembershipSerializer(membership, context=_context(access)).data)

    @extend_schema(
        responses={204: None, **error_responses(400, 403)},
        tags=["members"],
    )
    def delete(self, request: Request, username: str, **kwargs: Any) -> Response:
        access = _scope(request, Role.OWNER, kwargs)
        membership = selectors.direct_membership(access.obj, username)
        if membership is None:
            raise NotFound("Membership not found")
        # The service refuses to remove a subscription's last owner (400).
        services.membership_revoke(actor=request.user, membership=membership)
        return Response(status=204)
