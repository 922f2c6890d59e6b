"""One stored file streamed to the client: the response every download shares (the run
page, the MLflow artifact proxy and /api/v1)."""

from __future__ import annotations

import posixpath
from typing import TypeVar

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from tracking.artifacts.base import ArtifactReader

R = TypeVar("R", bound=StreamingHttpResponse)


def file_response(
    reader: ArtifactReader,
    path: str,
    *,
    content_type: str = "application/octet-stream",
    as_attachment: bool = True,
    response_class: type[R] = StreamingHttpResponse,
) -> R:
    """The file's bytes with its size and name (`path`'s last part)."""
    response = response_class(reader, content_type=content_type)
    response["Content-Length"] = str(reader.size)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=as_attachment, filename=posixpath.basename(path)
    )
    # Uploaded HTML or SVG must never run as a page of this origin.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
