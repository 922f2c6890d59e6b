"""Chunked request bodies (`Transfer-Encoding: chunked`) under Django's own server.

gunicorn (`make run`, the container) decodes a chunked body itself and hands the
application the body alone, ending where it ends (it sets `wsgi.input_terminated`).
Django's development server (`runserver`, and the live server of the tests, both built
on wsgiref) does not: it gives the application the connection's stream cut at
Content-Length, which a chunked request has not, so the body reads as empty and its
bytes stay on the connection, to be taken for the next request.

`ChunkedBodyMiddleware` mends that under that server only: it decodes the body from the
connection itself (with h11's parser, which bounds the lines it waits for), presents it
as gunicorn does, reads what the application left of it before answering, and closes the
connection after the answer. Under any other server it does nothing.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any, BinaryIO

import h11
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase

from portal.errors import InvalidParameter

# A chunk-size line, or the trailers, not complete within this many bytes is refused.
MAX_LINE_BYTES = 16 * 1024
READ_BYTES = 64 * 1024

# h11 parses a whole request; it is given this head and then the body as it arrives.
_HEAD = b"PUT / HTTP/1.1\r\nHost: studio\r\nTransfer-Encoding: chunked\r\n\r\n"


class MalformedChunkedBody(InvalidParameter):
    """The body is not valid chunked encoding, or the client stopped in its middle."""


class ChunkedBodyReader(io.RawIOBase):
    """The decoded body of a chunked request, read from the raw connection `source`
    (which must offer `read1`, so that no read waits for more than the client has sent).
    Raises MalformedChunkedBody on bad framing, a line over MAX_LINE_BYTES, or the
    connection ending before the last chunk; once broken it stays broken."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__()
        self._source = source
        self._parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_LINE_BYTES)
        self._parser.receive_data(_HEAD)
        self._parser.next_event()  # the h11.Request of _HEAD; the body follows
        self._pending = memoryview(b"")
        self._error: str | None = None
        self.complete = False  # the last chunk and the trailers have been read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self.complete:
            self._pending = memoryview(self._next_data())
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _next_data(self) -> bytes:
        if self._error is not None:
            raise MalformedChunkedBody(self._error)
        try:
            while True:
                event = self._parser.next_event()
                if event is h11.NEED_DATA:
                    # b"" at the end of the connection: h11 then says the body is cut.
                    self._parser.receive_data(self._source.read1(READ_BYTES))
                elif isinstance(event, h11.Data):
                    return event.data
                elif isinstance(event, h11.EndOfMessage):
                    self.complete = True
                    return b""
                else:  # pragma: no cover — h11 yields nothing else inside a body
                    raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")
        except h11.RemoteProtocolError as error:
            if error.error_status_hint == 431:
                reason = f"a chunk-size line or the trailers exceed {MAX_LINE_BYTES} bytes"
            else:
                reason = str(error)[:200]
            self._error = f"Malformed chunked request body: {reason}."
            raise MalformedChunkedBody(self._error) from None

    def drain(self) -> None:
        """Read and drop what is left of the body, up to its end or an error."""
        with contextlib.suppress(MalformedChunkedBody, OSError):
            while self.read(READ_BYTES):
                pass


def development_server_connection(environ: dict[str, Any]) -> BinaryIO | None:
    """The raw connection stream when Django's own server (wsgiref) serves the request:
    it alone hands the application Django's LimitedStream, wrapped around the
    connection's buffered reader; None under any other server (gunicorn decodes chunked
    bodies itself and says so with wsgi.input_terminated)."""
    stream = environ.get("wsgi.input")
    if type(stream) is not LimitedStream or environ.get("wsgi.input_terminated"):
        return None
    if not str(environ.get("SERVER_SOFTWARE", "")).startswith("WSGIServer/"):
        return None
    # LimitedStream keeps the bound `read` of what it wraps: django.core.servers.basehttp
    # wraps the handler's rfile. A Django that stores it otherwise finds nothing here,
    # and chunked uploads then answer 411 (tracking.artifacts.uploads) as before.
    source = getattr(getattr(stream, "_read", None), "__self__", None)
    return source if callable(getattr(source, "read1", None)) else None


class ChunkedBodyMiddleware:
    """Under Django's development server, present a chunked request body as gunicorn
    does (decoded `wsgi.input`, `wsgi.input_terminated`), so uploads read it the same
    whatever serves them. Outermost, so its answer is the last word on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        environ = request.META
        framing = environ.get("HTTP_TRANSFER_ENCODING")
        if framing is None:
            return self.get_response(request)
        connection = development_server_connection(environ)
        if connection is None:
            return self.get_response(request)
        if framing.strip().lower() != "chunked" or environ.get("CONTENT_LENGTH"):
            # Framing the body cannot be read from with certainty: refuse, as gunicorn does.
            refused = HttpResponseBadRequest(
                "Transfer-Encoding must be 'chunked' alone, without Content-Length.",
                content_type="text/plain",
            )
            return _closing(refused)
        reader = ChunkedBodyReader(connection)
        environ["wsgi.input"] = reader
        environ["wsgi.input_terminated"] = True
        response = self.get_response(request)
        # A client still sending (an upload refused early) would meet a reset rather
        # than the answer if the connection closed with its body unread.
        reader.drain()
        return _closing(response)


def _closing(response: HttpResponseBase) -> HttpResponseBase:
    """The response, made to end its connection under Django's server: that server
    closes after a response without Content-Length (WSGI forbids the application a
    `Connection` header). Then no byte of this request can be taken for the next one,
    even one the parser read ahead or one a malformed body left behind."""
    del response["Content-Length"]  # no error when it is absent
    return response
