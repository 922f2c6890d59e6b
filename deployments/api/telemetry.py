"""`POST /api/v1/service-telemetry`: where scoring servers send their batches (included by
portal.api.urls). Only a service's telemetry token (`Authorization: Bearer <token>`, from
the server's config file) is accepted here, and it is accepted nowhere else: it names the
service, so a server can only report for itself.

The body is read up to MONITORING_TELEMETRY_MAX_BYTES (413 past it, without reading the
rest), parsed with orjson (which refuses NaN, so nothing unstorable reaches PostgreSQL's
jsonb) and checked field by field (400 naming the field)."""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.urls import path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import authentication, exceptions, permissions, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.models import WebService
from deployments.services.monitoring import telemetry_ingest, telemetry_parse, telemetry_service
from portal.api.authentication import bearer_token
from portal.api.schema import error_responses
from portal.api.throttles import TokenRateThrottle
from portal.errors import InvalidParameter, StudioError

TAG = ["web service telemetry"]


class TelemetryTokenScheme(OpenApiAuthenticationExtension):
    target_class = "deployments.api.telemetry.TelemetryTokenAuthentication"
    name = "telemetryAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106 - the scheme name, not a secret
            bearer_format="a web service's telemetry token (its scoring server's config)",
        )


class TelemetryTokenAuthentication(authentication.BaseAuthentication):
    """A service's telemetry token; the request's user stays anonymous, its auth is the
    service."""

    def authenticate(self, request: Request) -> tuple[Any, WebService] | None:
        raw = bearer_token(request._request)
        if raw is None:
            return None
        service = telemetry_service(token=raw)
        if service is None:
            raise exceptions.AuthenticationFailed("The telemetry token names no web service.")
        return AnonymousUser(), service

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="mlstudio-telemetry"'


class IsScoringServer(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, WebService):
            raise exceptions.NotAuthenticated("A web service's telemetry token is required.")
        return True


class TelemetryRateThrottle(TokenRateThrottle):
    """The API's rate, per service (a server posts every few seconds)."""

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": "telemetry", "ident": f"s:{request.auth.pk}"}


class StreamParser(BaseParser):
    """Leaves the body unread: the view reads it up to its limit."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None):
        return stream


class TooLarge(StudioError):
    code = "REQUEST_LIMIT_EXCEEDED"
    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def _read_body(request: Request) -> bytes:
    limit = settings.MONITORING_TELEMETRY_MAX_BYTES
    too_large = TooLarge(f"A telemetry batch is at most {limit} bytes.")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    stream = request.stream
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise too_large
    return body


class TelemetryView(APIView):
    authentication_classes = [TelemetryTokenAuthentication]
    permission_classes = [IsScoringServer]
    throttle_classes = [TelemetryRateThrottle]
    parser_classes = [StreamParser]

    @extend_schema(
        tags=TAG,
        summary="Report a scoring server's telemetry",
        description="Called by a web service's scoring server every few seconds with what "
        "it served since its last batch: per-minute rollups (counts, sizes, a latency "
        "histogram over the server's fixed buckets) and sampled requests. Minutes are added "
        "to what is stored for them. 204 when stored; 400 names the first bad field; 413 "
        "past MONITORING_TELEMETRY_MAX_BYTES.",
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            204: OpenApiResponse(description="Stored."),
            **error_responses(400, 401, 413),
        },
        auth=[{"telemetryAuth": []}],
    )
    def post(self, request: Request) -> Response:
        body = _read_body(request)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidParameter("The body must be a JSON object.") from None
        batch = telemetry_parse(data)
        telemetry_ingest(service=request.auth, batch=batch)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("service-telemetry", TelemetryView.as_view(), name="api-service-telemetry"),
]
