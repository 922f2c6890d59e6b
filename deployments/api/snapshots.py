"""/api/v1 source snapshots: upload (PUT, streamed), whether stored (HEAD), file list."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.api.common import workspace_for
from deployments.api.serializers import SnapshotFilesSerializer, SnapshotStoredSerializer
from deployments.services import snapshots as svc
from portal.api.schema import error_responses
from tracking.api.common import errors
from tracking.artifacts.uploads import request_body_chunks


class SnapshotView(APIView):
    @extend_schema(
        operation_id="snapshots_upload",
        tags=["snapshots"],
        summary="Upload a source snapshot",
        description="The zip of a run's source folder, named by the sha256 of its bytes "
        "(lowercase hex). Needs the contributor role. Bytes of another hash are a 400 "
        "and are not stored; so is a zip no worker would unpack (links, `..`, too many "
        "files, …), with the reason. Answers 201 when stored, 200 when these bytes were "
        "stored before (ask with `HEAD` first to skip the upload). Past "
        f"{svc.MAX_UPLOAD_BYTES // (1024 * 1024)} MiB: 413.",
        request={"application/zip": OpenApiTypes.BINARY},
        responses={
            200: OpenApiResponse(SnapshotStoredSerializer, "Stored before."),
            201: OpenApiResponse(SnapshotStoredSerializer, "Stored."),
            **errors(400, 401, 403, 404),
            **error_responses(413),
        },
    )
    def put(self, request: Request, sha256: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        svc.snapshot_path(sha256)  # a bad name is refused before the body is read
        body = request_body_chunks(request._request, svc.MAX_UPLOAD_BYTES, svc.snapshot_too_large)
        stored = svc.snapshot_store(
            actor=request.user, workspace=workspace, source=body, expected_hash=sha256
        )
        data = {"snapshot_hash": stored["hash"], "size": stored["size"], "files": stored["files"]}
        status = 201 if stored["stored"] else 200
        return Response(SnapshotStoredSerializer(data).data, status=status)

    @extend_schema(
        operation_id="snapshots_get",
        tags=["snapshots"],
        summary="List a snapshot's files",
        description="The files of a stored snapshot, in the zip's order. `HEAD` on the same "
        "URL answers 200 when it is stored and 404 when not, without a body.",
        responses={200: SnapshotFilesSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, sha256: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        files = svc.snapshot_files(workspace=workspace, snapshot_hash=sha256)
        return Response(SnapshotFilesSerializer({"snapshot_hash": sha256, "files": files}).data)

    def head(self, request: Request, sha256: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        svc.snapshot_path(sha256)
        if not svc.snapshot_exists(workspace=workspace, snapshot_hash=sha256):
            return Response(status=404)
        return Response(status=200)
