"""Request bodies streamed into a store: read in chunks from the request, however it is
framed, never as `request.body` (which holds it all in memory and stops at
DATA_UPLOAD_MAX_MEMORY_SIZE). The MLflow artifact proxy and /api/v1 uploads share it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django.http import HttpRequest
from mlflow.exceptions import MlflowException

from portal.errors import InvalidParameter, StudioError
from tracking.artifacts.base import CHUNK_SIZE


class LengthRequired(StudioError):
    """A chunked body the server hands on undecoded (not gunicorn, which decodes it, nor
    Django's own server, under which portal.chunked does)."""

    code = "INVALID_PARAMETER_VALUE"
    http_status = 411


TooLarge = Callable[[], StudioError | MlflowException]


def request_body_chunks(request: HttpRequest, limit: int, too_large: TooLarge) -> Iterator[bytes]:
    """The request body in chunks, read from the stream however it is framed: sized
    (Content-Length) or chunked (Transfer-Encoding, which `requests` sends for an empty
    or streamed body). Raises `too_large()` before a chunk would pass `limit`, and
    InvalidParameter when a sized body stops short; raising makes the store drop the
    partial file."""
    meta = request.META
    if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        # The server has decoded the chunks and ends the stream with the body (gunicorn
        # says so with wsgi.input_terminated, and portal.chunked does under Django's own
        # server); Django's request stream stops at Content-Length, which a chunked
        # request has not, so read the server's.
        if not meta.get("wsgi.input_terminated"):
            raise LengthRequired(
                "This server cannot read a chunked request body; send Content-Length."
            )
        return _read(meta["wsgi.input"], None, limit, too_large)
    raw_length = (meta.get("CONTENT_LENGTH") or "0").strip() or "0"
    try:
        length = int(raw_length)
    except ValueError:
        raise InvalidParameter("Invalid Content-Length header.") from None
    if length < 0:
        raise InvalidParameter("Invalid Content-Length header.")
    if length > limit:
        raise too_large()  # refused before anything is read or stored
    return _read(request, length, limit, too_large)


def _read(stream: Any, length: int | None, limit: int, too_large: TooLarge) -> Iterator[bytes]:
    """Chunks of `stream` up to `length` bytes, or to its end when the length is unknown."""
    received = 0
    while length is None or received < length:
        want = CHUNK_SIZE if length is None else min(CHUNK_SIZE, length - received)
        try:
            chunk = stream.read(want)
        except OSError:
            if length is not None:
                raise
            # gunicorn's decoder meeting bad framing, or the body cut short (its
            # InvalidChunkSize, ChunkMissingTerminator, NoMoreData are OSErrors).
            raise InvalidParameter(
                "Malformed chunked request body: it could not be read to its end."
            ) from None
        if not chunk:
            break
        received += len(chunk)
        if received > limit:
            raise too_large()
        yield chunk
    if length is not None and received < length:
        raise InvalidParameter("The upload ended before its Content-Length was received.")
