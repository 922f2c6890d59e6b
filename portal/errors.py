"""The one domain error type, with MLflow-style error codes.

Services raise these; the MLflow protocol layer and /api/v1 each map them to
HTTP with one handler. NotFound and PermissionDenied also subclass Django's own
exceptions, so page views need no mapping at all: Django answers 404 and 403.
"""

from __future__ import annotations

import django.core.exceptions
from django.http import Http404


class StudioError(Exception):
    code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(StudioError):
    code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class AlreadyExists(StudioError):
    code = "RESOURCE_ALREADY_EXISTS"
    http_status = 400


class NotFound(StudioError, Http404):
    code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class Unauthenticated(StudioError):
    code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(StudioError, django.core.exceptions.PermissionDenied):
    code = "PERMISSION_DENIED"
    http_status = 403
