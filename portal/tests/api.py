"""Helpers for the /api/v1 tests (portal's and tracking's): clients with real Bearer
tokens for the permission cast, and the one error shape."""

from __future__ import annotations

from django.test import Client

from portal import services


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def api(cast, who: str = "owner", **token_args) -> Client:
    """A client for a cast member with a fresh token (token_create's arguments, e.g. a
    scope); no credentials at all for "anonymous"."""
    user = cast.user(who)
    if user is None:
        return Client()
    _, raw = services.token_create(user=user, name="test", **token_args)
    return bearer(raw)


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The API's error shape: an MLflow-style code and a message, nothing else."""
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"error_code", "message"} and body["message"], body
    if code:
        assert body["error_code"] == code, body
    return body
