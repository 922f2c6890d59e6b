"""/api/v1 endpoints of the tenancy app (the rest of the API grows in later issues)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import selectors, services
from portal.errors import PermissionDenied
from portal.models import ApiToken, Role


def _token(request: Request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


class CurrentUserView(APIView):
    def get(self, request: Request) -> Response:
        user = request.user
        token = _token(request)
        return Response(
            {
                "username": user.get_username(),
                "email": user.email,
                "is_staff": user.is_staff,
                "token": (
                    {
                        "name": token.name,
                        "scope": token.scope,
                        "workspace_id": str(token.workspace_id) if token.workspace_id else None,
                        "expires_at": token.expires_at,
                    }
                    if token
                    else None
                ),
            }
        )


class WorkspaceListView(APIView):
    def get(self, request: Request) -> Response:
        base = selectors.base_url(request)
        workspaces = selectors.visible_workspaces(request.user, _token(request))
        return Response(
            {"workspaces": [selectors.workspace_details(ws, base) for ws in workspaces]}
        )


class WorkspaceDetailView(APIView):
    def get(
        self, request: Request, subscription_id, resource_group: str, workspace: str
    ) -> Response:
        access = selectors.workspace_access(
            user=request.user,
            token=_token(request),
            subscription_id=subscription_id,
            resource_group=resource_group,
            workspace=workspace,
        )
        details = selectors.workspace_details(access.obj, selectors.base_url(request))
        details["role"] = access.role
        return Response(details)


class TrackingTokenView(APIView):
    """Mint a short-lived token that works only in this workspace, for MLflow clients."""

    def post(
        self, request: Request, subscription_id, resource_group: str, workspace: str
    ) -> Response:
        token = _token(request)
        if token is not None and token.kind == "tracking":
            # A tracking token renewing itself would make it immortal.
            raise PermissionDenied("A tracking token cannot mint tracking tokens.")
        access = selectors.workspace_access(
            user=request.user,
            token=token,
            subscription_id=subscription_id,
            resource_group=resource_group,
            workspace=workspace,
            min_role=Role.READER,
        )
        minted, raw = services.tracking_token_mint(user=request.user, workspace=access.obj)
        return Response(
            {
                "token": raw,
                "expires_at": minted.expires_at,
                "tracking_uri": selectors.tracking_uri(access.obj, selectors.base_url(request)),
            },
            status=201,
        )
