"""OpenAPI generation for /api/v1 (drf-spectacular): the Bearer scheme and the error
answers every operation shares, so clients (and schemathesis) know every status code.

settings.REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] points at AutoSchema below; importing
this module also registers the Bearer extension.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework.permissions import AllowAny

from portal.api.serializers import ErrorSerializer


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106 - the scheme name, not a secret
            bearer_format="mls_…",
        )


ERROR_DESCRIPTIONS = {
    400: "INVALID_PARAMETER_VALUE or RESOURCE_ALREADY_EXISTS: the request is not valid.",
    401: "UNAUTHENTICATED: no credentials, or a token that is invalid, expired or revoked.",
    403: "PERMISSION_DENIED: visible to the caller, but their role (or token) does not allow it.",
    404: "RESOURCE_DOES_NOT_EXIST: missing, or not visible to the caller.",
    413: "REQUEST_LIMIT_EXCEEDED: the body is larger than this operation accepts.",
    429: "REQUEST_LIMIT_EXCEEDED: too many requests; wait for Retry-After seconds.",
}

# One example body per error answer, so a reader sees the shape filled in.
ERROR_EXAMPLES = {
    400: ("INVALID_PARAMETER_VALUE", "page_size: must be between 1 and 1000."),
    401: ("UNAUTHENTICATED", "The token is invalid, expired or revoked."),
    403: ("PERMISSION_DENIED", "This needs the contributor role on the workspace."),
    404: ("RESOURCE_DOES_NOT_EXIST", "Workspace not found"),
    413: ("REQUEST_LIMIT_EXCEEDED", "The snapshot is larger than 300 MiB."),
    429: ("REQUEST_LIMIT_EXCEEDED", "Request was throttled. Expected available in 12 seconds."),
}


def error_response(code: int) -> OpenApiResponse:
    """The documented answer for one error status: the error shape, with an example."""
    error_code, message = ERROR_EXAMPLES[code]
    example = OpenApiExample(error_code, value={"error_code": error_code, "message": message})
    return OpenApiResponse(ErrorSerializer, ERROR_DESCRIPTIONS[code], examples=[example])


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Error answers for extend_schema(responses=...), all in the one error shape."""
    return {code: error_response(code) for code in codes}


# What a success answer says when the view does not say more.
SUCCESS_DESCRIPTIONS = {
    "200": "OK.",
    "201": "Created.",
    "202": "Accepted: a deletion job, queued. Poll its `url` until `is_finished`.",
    "204": "Done; no body.",
}

# Path parameters, described once for every operation that has them.
PATH_PARAMETERS = {
    "subscription_id": "The subscription's id.",
    "resource_group": "The resource group's name.",
    "workspace": "The workspace's name.",
    "username": "The user's login name.",
    "experiment_id": "The experiment's id (a number, as MLflow gives it).",
    "run_id": "The run's id (32 hex digits, as MLflow gives it).",
    "job_id": "The deletion job's id: the `id` of the 202 answer that started it.",
    "token_id": "The token's id (not its secret).",
    "compute": "The compute target's name (in any case).",
    "environment": "The environment's name.",
    "version": "The environment's version: a whole number from 1.",
    "sha256": "The snapshot's sha256: 64 lowercase hexadecimal digits.",
}


class AutoSchema(openapi.AutoSchema):
    """Adds the error answers any operation can give, unless the view documents them:
    401 when it needs credentials, 429 when it is throttled, 404 when its path names
    something, 400 when it takes a body or query parameters (validation, paging)."""

    def _default_error_codes(self) -> list[int]:
        codes = []
        if self.method in ("POST", "PUT", "PATCH") or self._has_query_parameters():
            codes.append(400)
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            codes.append(401)
        if "{" in self.path:
            codes.append(404)
        if self.view.get_throttles():
            codes.append(429)
        return codes

    def _has_query_parameters(self) -> bool:
        if self.method == "GET" and self._is_list_view() and self._get_paginator() is not None:
            return True
        return any(
            isinstance(p, OpenApiParameter) and p.location == OpenApiParameter.QUERY
            for p in self.get_override_parameters()
        )

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self._default_error_codes():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(error_response(code), str(code))
        for code, response in responses.items():
            if not response.get("description") and code in SUCCESS_DESCRIPTIONS:
                response["description"] = SUCCESS_DESCRIPTIONS[code]
        # Success first, then the errors in numeric order, whatever order they were added.
        return dict(sorted(responses.items()))

    def _resolve_path_parameters(self, variables: list[str]) -> list[dict[str, Any]]:
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if parameter["name"] in PATH_PARAMETERS and not parameter.get("description"):
                parameter["description"] = PATH_PARAMETERS[parameter["name"]]
        return parameters

    def _get_response_headers_for_code(self, status_code: str, direction: str = "response"):
        headers = super()._get_response_headers_for_code(status_code, direction)
        if status_code == "429" and "Retry-After" not in headers:
            headers["Retry-After"] = {
                "schema": {"type": "integer"},
                "description": "Seconds to wait before trying again.",
            }
        return headers
