"""/api/v1 artifacts of a run: list a folder, download a file (streamed).

Paths are relative to the run's artifact root and go through clean_artifact_path, so
nothing outside the run's folder (nor any server path) can be named or shown."""

from __future__ import annotations

import posixpath
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.errors import InvalidParameter, NotFound
from tracking.api.v1.common import errors, query_text, run_for, workspace_for
from tracking.api.v1.serializers import ArtifactListSerializer
from tracking.artifacts import clean_artifact_path, join, list_under_uri, store_for
from tracking.selectors import run_page


class ArtifactListView(APIView):
    @extend_schema(
        operation_id="runs_artifacts_list",
        tags=["artifacts"],
        summary="List a folder of the run's artifacts",
        parameters=[
            OpenApiParameter(
                "path", str, description='Folder relative to the run\'s root; "" for the root.'
            )
        ],
        responses={200: ArtifactListSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        run = run_for(workspace, run_id)
        path = clean_artifact_path(query_text(request, "path"))
        entries = list_under_uri(workspace, run.artifact_uri, path)
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
        operation_id="runs_artifacts_download",
        tags=["artifacts"],
        summary="Download one artifact file (streamed, as an attachment)",
        parameters=[
            OpenApiParameter(
                "path",
                {"type": "string", "minLength": 1},
                required=True,
                description="File relative to the run's root.",
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
        workspace = workspace_for(request, kwargs)
        run = run_for(workspace, run_id)
        path = run_page.require_clean_path(query_text(request, "path"), file=True)
        root = run_page.artifact_root(run)
        # Errors name the path as the caller gave it, not as the store holds it.
        try:
            reader = store_for(workspace).open(join(root.prefix, path))
        except NotFound:
            raise NotFound(f"No such artifact: '{path}'.") from None
        except InvalidParameter as exc:
            if "directory" in exc.message:
                raise InvalidParameter(f"'{path}' is a folder, not a file.") from None
            raise
        # Always bytes to save, never content to render: uploaded HTML or SVG must not run
        # as a page of this origin.
        response = StreamingHttpResponse(reader, content_type="application/octet-stream")
        response["Content-Length"] = str(reader.size)
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=posixpath.basename(path)
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response
