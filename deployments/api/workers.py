"""The worker side of /api/v1 (`/api/v1/compute/...`): what a compute worker calls with
its worker token (`Authorization: Bearer mlsw_…`) — nothing else accepts that token, and
these views accept nothing else.

A worker holds no database URL and no server secret: it learns its queue here, claims
jobs, downloads their snapshots, streams their output, uploads their outputs and reports
their stages. A token serves one target's jobs (the studio's own worker: every `local`
target's); another target's job is a 403."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import StreamingHttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, permissions, serializers
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.models import WorkerToken
from deployments.services import jobs as svc
from deployments.services.workers import compute_worker_heartbeat, worker_token_authenticate
from portal.api.authentication import bearer_token
from portal.api.schema import error_responses
from portal.api.throttles import TokenRateThrottle
from portal.errors import InvalidParameter

TAG = ["compute workers"]
CHUNK = 1024 * 1024


class WorkerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "deployments.api.workers.WorkerTokenAuthentication"
    name = "workerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106 - the scheme name, not a secret
            bearer_format="mlsw_… (a compute target's worker token)",
        )


class WorkerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer mlsw_…`: a worker token; the request's user stays anonymous."""

    def authenticate(self, request: Request) -> tuple[Any, WorkerToken] | None:
        raw = bearer_token(request._request)
        if raw is None:
            return None
        token = worker_token_authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("The worker token is invalid or revoked.")
        return AnonymousUser(), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="mlstudio-worker"'


class IsWorker(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, WorkerToken):
            raise exceptions.NotAuthenticated("A compute worker's token is required.")
        return True


class WorkerRateThrottle(TokenRateThrottle):
    """The API's rate, per worker token."""

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": "worker", "ident": f"w:{request.auth.pk}"}


class RawBodyParser(BaseParser):
    """Leaves the body unread: the view streams it to storage."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None):
        return stream


class WorkerView(APIView):
    authentication_classes = [WorkerTokenAuthentication]
    permission_classes = [IsWorker]
    throttle_classes = [WorkerRateThrottle]

    @property
    def token(self) -> WorkerToken:
        return self.request.auth


def _body(request: Request, *names: str) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidParameter("The body must be a JSON object.")
    return {name: request.data.get(name) for name in names if name in request.data}


STATE = inline_serializer(
    "RemoteJobState",
    {
        "job_id": serializers.UUIDField(),
        "stage": serializers.CharField(),
        "status": serializers.CharField(),
        "cancel_requested": serializers.BooleanField(),
        "ended": serializers.BooleanField(),
    },
)


class WorkerInfoView(WorkerView):
    @extend_schema(
        tags=TAG,
        summary="What this worker serves",
        description="The queue to consume, and the target (null for the studio's own "
        "worker, which serves every workspace's `local` target).",
        responses={
            200: inline_serializer(
                "ComputeWorkerInfo",
                {
                    "queue": serializers.CharField(),
                    "target": serializers.CharField(allow_null=True),
                    "workspace": serializers.CharField(allow_null=True),
                    "max_nodes": serializers.IntegerField(allow_null=True),
                },
            ),
            **error_responses(401),
        },
    )
    def get(self, request: Request) -> Response:
        target = self.token.target
        if target is None:
            data = {
                "queue": settings.COMPUTE_LOCAL_QUEUE,
                "target": None,
                "workspace": None,
                "max_nodes": None,
            }
        else:
            data = {
                "queue": target.queue,
                "target": target.name,
                "workspace": svc.workspace_path(target.workspace),
                "max_nodes": target.max_nodes,
            }
        return Response(data)


class WorkerHeartbeatView(WorkerView):
    @extend_schema(
        tags=TAG,
        summary="A worker is alive",
        request=inline_serializer(
            "ComputeWorkerHeartbeat",
            {
                "hostname": serializers.CharField(),
                "slots": serializers.IntegerField(default=1),
                "version": serializers.CharField(required=False),
            },
        ),
        responses={200: OpenApiResponse(description="Recorded."), **error_responses(400, 401)},
    )
    def post(self, request: Request) -> Response:
        body = _body(request, "hostname", "slots", "version")
        compute_worker_heartbeat(
            token=self.token,
            hostname=body.get("hostname", ""),
            slots=body.get("slots", 1),
            version=body.get("version", ""),
        )
        return Response({"ok": True})


class JobClaimView(WorkerView):
    @extend_schema(
        tags=TAG,
        summary="Claim a queued job",
        description="200: the job is this worker's (its spec, and the script's tracking "
        "token, given only here). 409 NOT_CLAIMABLE: a duplicate message, or the job was "
        "canceled or claimed meanwhile: drop the message. 429: the target runs max_nodes "
        "jobs already: retry the message after Retry-After seconds.",
        request=inline_serializer(
            "RemoteJobClaim",
            {
                "hostname": serializers.CharField(),
                "claim_key": serializers.CharField(
                    required=False,
                    help_text="The worker's key for this attempt: a retried claim with the "
                    "same key gets the claim again while the job is still preparing.",
                ),
            },
        ),
        responses={
            200: OpenApiResponse(description="The claim."),
            **error_responses(400, 401, 403, 404, 409, 429),
        },
    )
    def post(self, request: Request, remote_job_id: str) -> Response:
        body = _body(request, "hostname", "claim_key")
        try:
            claim = svc.remote_job_claim(
                job_id=remote_job_id,
                worker_hostname=body.get("hostname") or "",
                claim_key=body.get("claim_key") or "",
                token=self.token,
            )
        except svc.ComputeBusy as exc:
            return Response(
                {"error_code": exc.code, "message": exc.message},
                status=429,
                headers={"Retry-After": str(svc.BUSY_RETRY_SECONDS)},
            )
        if claim is None:
            return Response(
                {"error_code": "NOT_CLAIMABLE", "message": "The job is not waiting to be claimed."},
                status=409,
            )
        return Response(claim)


class JobSnapshotView(WorkerView):
    @extend_schema(
        tags=TAG,
        summary="The job's source snapshot (a zip)",
        responses={
            (200, "application/zip"): OpenApiResponse(description="The zip."),
            **error_responses(400, 401, 403, 404),
        },
    )
    def get(self, request: Request, remote_job_id: str) -> StreamingHttpResponse:
        reader = svc.remote_job_snapshot(job_id=remote_job_id, token=self.token)

        def chunks():
            with reader:
                while data := reader.read(CHUNK):
                    yield data

        return StreamingHttpResponse(chunks(), content_type="application/zip")


class JobHeartbeatView(WorkerView):
    @extend_schema(
        tags=TAG,
        summary="The worker still works on the job",
        description="Keeps the job (and the script's tracking token) alive; the answer says "
        "whether to stop: `cancel_requested`, or `ended`.",
        request=None,
        responses={200: STATE, **error_responses(401, 403, 404)},
    )
    def post(self, request: Request, remote_job_id: str) -> Response:
        return Response(svc.remote_job_heartbeat(job_id=remote_job_id, token=self.token))


class JobReportView(WorkerView):
    @extend_schema(
        tags=TAG,
        summary="Move the job to a stage",
        request=inline_serializer(
            "RemoteJobReport",
            {
                "stage": serializers.CharField(),
                "exit_code": serializers.IntegerField(required=False, allow_null=True),
                "sandboxed": serializers.BooleanField(required=False, allow_null=True),
                "error": serializers.CharField(required=False, allow_blank=True),
            },
        ),
        responses={200: STATE, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: Request, remote_job_id: str) -> Response:
        body = _body(request, "stage", "exit_code", "sandboxed", "error")
        if not isinstance(body.get("stage"), str):
            raise InvalidParameter("stage is required.")
        if "error" in body and body["error"] is not None and not isinstance(body["error"], str):
            raise InvalidParameter("error must be a string.")
        return Response(svc.remote_job_report(job_id=remote_job_id, token=self.token, **body))


class JobLogView(WorkerView):
    @extend_schema(
        tags=TAG,
        summary="Append the script's output to the run's log",
        description="`offset` is the log's size as the worker knows it (a retried append "
        "adds nothing); the answer's `log_bytes` is where the next append starts.",
        request=inline_serializer(
            "RemoteJobLogAppend",
            {"offset": serializers.IntegerField(), "text": serializers.CharField()},
        ),
        responses={
            200: inline_serializer("RemoteJobLogSize", {"log_bytes": serializers.IntegerField()}),
            **error_responses(400, 401, 403, 404),
        },
    )
    def post(self, request: Request, remote_job_id: str) -> Response:
        body = _body(request, "offset", "text")
        if "offset" not in body or "text" not in body:
            raise InvalidParameter("offset and text are required.")
        return Response(svc.remote_job_log_append(job_id=remote_job_id, token=self.token, **body))


class JobArtifactView(WorkerView):
    parser_classes = [RawBodyParser]

    @extend_schema(
        tags=TAG,
        summary="Store a file of the job's outputs/ (or logs/) as a run artifact",
        request={"application/octet-stream": {"type": "string", "format": "binary"}},
        responses={
            201: inline_serializer(
                "RemoteJobArtifact",
                {"path": serializers.CharField(), "size": serializers.IntegerField()},
            ),
            **error_responses(400, 401, 403, 404),
        },
    )
    def put(self, request: Request, remote_job_id: str, path: str) -> Response:
        stream = request._request

        def chunks():
            while data := stream.read(CHUNK):
                yield data

        stored = svc.remote_job_artifact_put(
            job_id=remote_job_id, path=path, chunks=chunks(), token=self.token
        )
        return Response(stored, status=201)
