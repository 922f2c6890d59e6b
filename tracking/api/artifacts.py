"""/api/v1 artifacts of a run: list a folder, download a file (streamed).

Paths are relative to the run's artifact root and go through clean_artifact_path, so
nothing outside the run's folder (nor any server path) can be named or shown."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking.api.common import errors, query_text, run_for
from tracking.api.serializers import ArtifactListSerializer
from tracking.artifacts import clean_artifact_path, join, list_under_uri, store_for
from tracking.artifacts.paths import named_as_given, require_clean_path
from tracking.artifacts.responses import file_response
from tracking.artifacts.roots import artifact_root


class ArtifactListView(APIView):
    @extend_schema(
        operation_id="artifacts_list",
        tags=["artifacts"],
        summary="List a folder of a run's artifacts",
        description="The files and folders directly in one folder (not recursive); list a "
        "sub-folder with its `path`. Each entry's `path` is relative to the run's root, "
        "ready to pass to the download.",
        parameters=[
            OpenApiParameter(
                "path",
                str,
                description="The folder, relative to the run's artifact root, with `/` "
                "between names. Left out or empty: the root. `..` and absolute paths are "
                "refused (400).",
                examples=[
                    OpenApiExample("the root", value=""),
                    OpenApiExample("a sub-folder", value="model/data"),
                ],
            )
        ],
        responses={200: ArtifactListSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        run = run_for(request, kwargs, run_id)
        path = clean_artifact_path(query_text(request, "path"))
        entries = list_under_uri(run.workspace, run.artifact_uri, path)
        return Response(
            {
                "path": path,
                "files": [
                    {"path": e.path, "is_dir": e.is_dir, "file_size": e.file_size} for e in entries
                ],
            }
        )


class ArtifactDownloadView(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple:
        """The file goes out whatever the Accept header asks; errors are JSON."""
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type

    @extend_schema(
        operation_id="artifacts_download",
        tags=["artifacts"],
        summary="Download an artifact file",
        description="The file's bytes, streamed as an attachment "
        "(`application/octet-stream`), whatever the `Accept` header asks; errors are JSON. "
        "A folder is a 400: list it instead.",
        parameters=[
            OpenApiParameter(
                "path",
                {"type": "string", "minLength": 1},
                required=True,
                description="The file, relative to the run's artifact root (as `path` in "
                "the folder listing).",
                examples=[OpenApiExample("a file", value="model/MLmodel")],
            )
        ],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file's bytes."
            ),
            **errors(400, 401, 403, 404),
        },
    )
    def get(self, request: Request, run_id: str, **kwargs: Any) -> StreamingHttpResponse:
        run = run_for(request, kwargs, run_id)
        path = require_clean_path(query_text(request, "path"), file=True)
        root = artifact_root(run)
        folder = f"'{path}' is a folder, not a file."
        with named_as_given(path, folder_message=folder):
            reader = store_for(run.workspace).open(join(root.prefix, path))
        # Always bytes to save, never content to render.
        return file_response(reader, path)
