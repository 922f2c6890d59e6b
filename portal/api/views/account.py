"""/api/v1 for the caller: login, who am I, personal tokens."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth import authenticate
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import selectors, services
from portal.api.access import request_token
from portal.api.pagination import NewestFirst
from portal.api.schema import error_responses
from portal.api.serializers import (
    CurrentUserSerializer,
    LoginRequestSerializer,
    LoginResponseSerializer,
    TokenCreatedSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)
from portal.api.throttles import LoginRateThrottle, TokenRateThrottle
from portal.errors import NotFound, PermissionDenied, Unauthenticated
from portal.models import ApiToken, TokenKind, TokenScope


def _no_tracking_tokens(request: Request) -> ApiToken | None:
    """The request's token; tracking tokens are for MLflow clients and manage nothing (a
    leaked one must not list, mint or revoke its user's personal tokens)."""
    token = request_token(request)
    if token is not None and token.kind == TokenKind.TRACKING:
        raise PermissionDenied("A tracking token cannot manage tokens.")
    return token


class LoginView(APIView):
    """Trade a user name and password for a personal token (what `mlstudio login` does)."""

    authentication_classes: list = []  # credentials are in the body; no CSRF, no session
    permission_classes = [AllowAny]
    throttle_classes = [TokenRateThrottle, LoginRateThrottle]

    @extend_schema(
        operation_id="login",
        summary="Sign in and get a token",
        description="What `mlstudio login` does. The answer holds the token's secret, shown "
        "this once; send it as `Authorization: Bearer <token>`. The token has full scope and "
        "does not expire unless `expires_in` (seconds, at most ten years) is given. Wrong "
        "credentials are a 401 with one message whether the user exists or not. Password "
        "attempts have their own, stricter rate limit per client address.",
        request=LoginRequestSerializer,
        responses={201: LoginResponseSerializer, **error_responses(400, 401, 429)},
        auth=[],
        tags=["account"],
    )
    def post(self, request: Request) -> Response:
        data = LoginRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None:
            # One message for unknown users and wrong passwords: names do not leak.
            raise Unauthenticated("Wrong user name or password.")
        name = data.validated_data.get("token_name") or f"cli: {timezone.now():%Y-%m-%d %H:%M} UTC"
        token, raw = services.token_create(
            user=user, name=name, expires_in=data.validated_data.get("expires_in")
        )
        body = {
            "token": raw,
            "id": token.id,
            "name": token.name,
            "username": user.get_username(),
            "expires_at": token.expires_at,
        }
        return Response(LoginResponseSerializer(body).data, status=201)


class CurrentUserView(APIView):
    @extend_schema(
        operation_id="user_get",
        summary="Who am I",
        description="The signed-in user, and the token of this request with its limits "
        "(`null` for a browser session).",
        responses=CurrentUserSerializer,
        tags=["account"],
    )
    def get(self, request: Request) -> Response:
        user = request.user
        token = request_token(request)
        body = {
            "username": user.get_username(),
            "email": user.email,
            "is_staff": user.is_staff,
            "token": token,
        }
        return Response(CurrentUserSerializer(body).data)


class TokenListView(GenericAPIView):
    pagination_class = NewestFirst
    serializer_class = TokenSerializer

    @extend_schema(
        operation_id="tokens_list",
        summary="List my tokens",
        description="Every personal token of the caller, newest first, including expired "
        "and revoked ones (see `status`); secrets are never shown again, only their "
        "`prefix`. Tracking tokens cannot call this (403).",
        responses={200: TokenSerializer(many=True), **error_responses(403)},
        tags=["account"],
    )
    def get(self, request: Request) -> Response:
        _no_tracking_tokens(request)
        page = self.paginate_queryset(selectors.tokens_for_user(request.user))
        return self.get_paginated_response(TokenSerializer(page, many=True).data)

    @extend_schema(
        operation_id="tokens_create",
        summary="Create a token",
        description="The answer holds the secret, shown this once. Leave out `scope` for "
        "full access, `workspace_id` for every workspace, `expires_in` for no expiry.\n\n"
        "**Limits when the request itself uses a token:** the new token inherits what it "
        "does not ask for and may not exceed its parent: no wider scope (read < write < "
        "full), no other workspace than a workspace-bound parent's, and no later expiry "
        "than the parent's (each a 403). Tracking tokens cannot create tokens.",
        request=TokenCreateSerializer,
        responses={201: TokenCreatedSerializer, **error_responses(403, 404)},
        tags=["account"],
    )
    def post(self, request: Request) -> Response:
        parent = _no_tracking_tokens(request)
        data = TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workspace = None
        if data.validated_data.get("workspace_id"):
            workspace = selectors.workspace_access_by_id(
                user=request.user, workspace_id=data.validated_data["workspace_id"], token=parent
            ).obj
        token, raw = services.token_create(
            user=request.user,
            name=data.validated_data["name"],
            scope=data.validated_data.get("scope"),
            workspace=workspace,
            expires_in=data.validated_data.get("expires_in"),
            parent=parent,
        )
        return Response({**TokenSerializer(token).data, "token": raw}, status=201)


class TokenDetailView(APIView):
    @extend_schema(
        operation_id="tokens_revoke",
        summary="Revoke a token",
        description="The token stops working at once; it stays listed with status "
        "`revoked`. Revoking a revoked token is a 204 too. A read-only token may revoke "
        "only itself (403 otherwise).",
        responses={204: None, **error_responses(403)},
        tags=["account"],
    )
    def delete(self, request: Request, token_id: UUID) -> Response:
        caller = _no_tracking_tokens(request)
        token = selectors.tokens_for_user(request.user).filter(pk=token_id).first()
        if token is None:
            raise NotFound("Token not found")
        if caller is not None and caller.scope == TokenScope.READ and caller.pk != token.pk:
            # A read-only token changes nothing, other tokens included; it may end itself.
            raise PermissionDenied("A read-only token can revoke only itself.")
        services.token_revoke(actor=request.user, token=token)
        return Response(status=204)
