"""API authentication: `Authorization: Bearer <token>` with an ML Studio token."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework import authentication, exceptions

from portal.models import ApiToken
from portal.services import token_authenticate


def bearer_token(request: HttpRequest) -> str | None:
    """The raw token of an `Authorization: Bearer` header, if there is one."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request) -> tuple | None:
        raw = bearer_token(request._request)
        if raw is None:
            return None
        token: ApiToken | None = token_authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("The token is invalid, expired or revoked.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="mlstudio"'
