"""One error shape for /api/v1: {"error_code": ..., "message": ...}."""

from __future__ import annotations

import logging

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.errors import StudioError

logger = logging.getLogger(__name__)

_DRF_CODES = {
    status.HTTP_400_BAD_REQUEST: "INVALID_PARAMETER_VALUE",
    status.HTTP_401_UNAUTHORIZED: "UNAUTHENTICATED",
    status.HTTP_403_FORBIDDEN: "PERMISSION_DENIED",
    status.HTTP_404_NOT_FOUND: "RESOURCE_DOES_NOT_EXIST",
    status.HTTP_405_METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
    status.HTTP_406_NOT_ACCEPTABLE: "NOT_ACCEPTABLE",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
    status.HTTP_429_TOO_MANY_REQUESTS: "REQUEST_LIMIT_EXCEEDED",
}


def _message(detail: object) -> str:
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            text = _message(value)
            parts.append(text if key in {"detail", "non_field_errors"} else f"{key}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return " ".join(_message(item) for item in detail)
    return str(detail)


def _encodable(text: str) -> str:
    # Messages may quote what the caller sent; a lone surrogate from a JSON "\ud800"
    # escape cannot be encoded as UTF-8 and would turn the 400 into a 500.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, StudioError):
        return Response(
            {"error_code": exc.code, "message": _encodable(exc.message)}, status=exc.http_status
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: log it with its stack, answer without one.
        logger.exception("Unhandled API error", exc_info=exc)
        return Response(
            {"error_code": "INTERNAL_ERROR", "message": "Internal server error."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    code = _DRF_CODES.get(response.status_code, "INTERNAL_ERROR")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code = "UNAUTHENTICATED"
    response.data = {"error_code": code, "message": _encodable(_message(response.data))}
    return response
