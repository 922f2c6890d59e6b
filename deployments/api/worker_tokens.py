"""Worker tokens of a compute target, for its owners: list, create (the secret and the
command that joins a worker are shown once), revoke. Paths below a workspace:
`computes/{compute}/worker-tokens[/{worker_token_id}]`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.models import ComputeTarget, WorkerToken
from deployments.services import workers as svc
from deployments.services.compute import compute_target_get
from portal import selectors
from portal.api.access import request_token, ws_access
from portal.api.schema import error_responses
from portal.errors import InvalidParameter, PermissionDenied
from portal.models import Role, TokenKind

TAG = ["compute"]


class WorkerTokenSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    status = serializers.SerializerMethodField()

    def get_status(self, token: WorkerToken) -> str:
        return "active" if token.is_active else "revoked"


class NewWorkerTokenSerializer(WorkerTokenSerializer):
    token = serializers.CharField(help_text="The secret: shown this once.")
    command = serializers.CharField(help_text="The command that joins a worker to the target.")


def _target(request: Request, kwargs: dict[str, Any]) -> ComputeTarget:
    token = request_token(request)
    if token is not None and token.kind == TokenKind.TRACKING:
        raise PermissionDenied("A tracking token cannot manage compute workers.")
    access = ws_access(
        request,
        kwargs["subscription_id"],
        kwargs["resource_group"],
        kwargs["workspace"],
        min_role=Role.OWNER,
    )
    target = compute_target_get(workspace=access.obj, name=kwargs["compute"])
    if target.is_local:
        # Its queue is every workspace's: only the studio's own worker may consume it.
        raise InvalidParameter(
            "The 'local' target is served by the studio's own worker; make a compute target "
            "to add workers of your own."
        )
    return target


def public_broker_url() -> str:
    """The broker URL as a worker would be told it: without credentials (those are
    given to the worker's operator some other way)."""
    url = settings.CELERY_BROKER_URL
    parts = urlsplit(url)
    if parts.password or parts.username:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        url = urlunsplit((parts.scheme, f"<user>:<password>@{host}", parts.path, "", ""))
    return url


def join_command(studio_url: str, raw_token: str) -> str:
    return (
        f"MLSTUDIO_WORKER_TOKEN={raw_token} mlstudio-worker "
        f"--studio {studio_url} --broker {public_broker_url()}"
    )


class WorkerTokenListView(APIView):
    @extend_schema(
        tags=TAG,
        summary="A compute target's worker tokens (owners)",
        responses={
            200: inline_serializer(
                "WorkerTokenList", {"worker_tokens": WorkerTokenSerializer(many=True)}
            ),
            **error_responses(401, 403, 404),
        },
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        target = _target(request, kwargs)
        tokens = WorkerToken.objects.filter(target=target).select_related("created_by")
        return Response({"worker_tokens": WorkerTokenSerializer(tokens, many=True).data})

    @extend_schema(
        tags=TAG,
        summary="Make a worker token (owners)",
        description="A token for the workers of this target: they may claim and run its "
        "jobs and nothing else. The secret and the command that joins a worker are in "
        "this answer only.",
        request=serializers.Serializer,
        responses={201: NewWorkerTokenSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        target = _target(request, kwargs)
        if not isinstance(request.data, dict):
            raise InvalidParameter("The body must be a JSON object.")
        name = request.data.get("name", "worker")
        if not isinstance(name, str):
            raise InvalidParameter("name must be a string.")
        token, raw = svc.worker_token_create(actor=request.user, target=target, name=name)
        data = dict(WorkerTokenSerializer(token).data)
        data["token"] = raw
        data["command"] = join_command(selectors.base_url(request), raw)
        return Response(data, status=201)


class WorkerTokenDetailView(APIView):
    @extend_schema(
        tags=TAG,
        summary="Revoke a worker token (owners)",
        description="Its workers' next calls are refused (401).",
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def delete(self, request: Request, worker_token_id: UUID, **kwargs: Any) -> Response:
        target = _target(request, kwargs)
        token = svc.worker_token_get(target=target, token_id=worker_token_id)
        svc.worker_token_revoke(actor=request.user, token=token)
        return Response(status=204)
