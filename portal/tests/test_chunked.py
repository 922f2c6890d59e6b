"""The chunked-body decoder portal.chunked uses under Django's development server, on a
real socket: it reads the body to its end and no further, and refuses bad framing at
once instead of waiting for bytes that will not come. (Through the server, with the
mlflow client: tracking/tests/test_artifacts.py.)"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator

import pytest

from portal.chunked import (
    MAX_LINE_BYTES,
    ChunkedBodyReader,
    MalformedChunkedBody,
    development_server_connection,
)


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, io.BufferedReader]]:
    """A client socket, and the server side's buffered reader of it, as wsgiref's."""
    client, server = socket.socketpair()
    server.settimeout(5)  # a decoder waiting for more than was sent fails, not hangs
    reader = server.makefile("rb")
    yield client, reader
    reader.close()
    client.close()
    server.close()


def read_all(reader: ChunkedBodyReader, size: int = 7) -> bytes:
    parts = []
    while chunk := reader.read(size):
        parts.append(chunk)
    return b"".join(parts)


def test_decodes_sizes_extensions_and_trailers_and_stops_at_the_end(connection):
    client, source = connection
    body = bytes(range(256)) * 300
    framed = (
        b"1\r\n" + body[:1] + b"\r\n"
        b"A;name=value;other\r\n" + body[1:11] + b"\r\n"
        b"fFfF \r\n" + body[11 : 11 + 0xFFFF] + b"\r\n"
        + f"{len(body) - 11 - 0xFFFF:x}\r\n".encode() + body[11 + 0xFFFF :] + b"\r\n"
        b"0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    )  # fmt: skip
    # The client keeps the connection open and has its next request ready: the decoder
    # must neither wait for more nor need the connection to end.
    client.sendall(framed)
    decoded = ChunkedBodyReader(source)
    assert read_all(decoded) == body
    assert decoded.complete
    assert decoded.read(10) == b""


def test_an_empty_body(connection):
    client, source = connection
    client.sendall(b"0\r\n\r\n")
    decoded = ChunkedBodyReader(source)
    assert decoded.read() == b""
    assert decoded.complete


@pytest.mark.parametrize(
    ("framed", "says"),
    [
        (b"zz\r\nhello\r\n0\r\n\r\n", "illegal chunk header"),
        (b"+5\r\nhello\r\n0\r\n\r\n", "illegal chunk header"),
        (b"0x5\r\nhello\r\n0\r\n\r\n", "illegal chunk header"),
        (b"-5\r\nhello\r\n0\r\n\r\n", "illegal chunk header"),
        (b"\r\nhello\r\n0\r\n\r\n", "illegal chunk header"),
        (b"5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n", "chunk footer"),
        (b"3\r\nhello\r\n0\r\n\r\n", "chunk footer"),
        (b"0\r\nnot a header\r\n\r\n", "Malformed chunked request body"),
    ],
)
def test_bad_framing_is_refused_at_once(connection, framed, says):
    client, source = connection
    client.sendall(framed)  # and the connection stays open: no waiting on it
    decoded = ChunkedBodyReader(source)
    started = time.monotonic()
    with pytest.raises(MalformedChunkedBody, match=says) as refused:
        read_all(decoded)
    assert time.monotonic() - started < 2
    assert refused.value.http_status == 400
    with pytest.raises(MalformedChunkedBody):  # broken stays broken
        decoded.read(1)


@pytest.mark.parametrize(
    "framed",
    [
        b"1" * (MAX_LINE_BYTES + 100),  # a size line with no end
        b"5;" + b"e" * (MAX_LINE_BYTES + 100),  # an extension with no end
        b"0\r\nX-Trailer: " + b"t" * (MAX_LINE_BYTES + 100),  # trailers with no end
    ],
)
def test_a_line_that_does_not_end_is_refused_once_past_the_bound(connection, framed):
    client, source = connection
    client.sendall(framed)
    with pytest.raises(MalformedChunkedBody, match=f"exceed {MAX_LINE_BYTES} bytes"):
        read_all(ChunkedBodyReader(source), size=1 << 20)


def test_a_body_cut_short_is_refused(connection):
    client, source = connection
    client.sendall(b"a\r\nhello")
    client.shutdown(socket.SHUT_WR)
    decoded = ChunkedBodyReader(source)
    assert decoded.read(5) == b"hello"  # what came is handed on as it comes
    with pytest.raises(MalformedChunkedBody, match="incomplete chunked read"):
        decoded.read(5)


def test_drain_reads_to_the_end_and_stops_quietly_on_bad_framing(connection):
    client, source = connection
    client.sendall(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    decoded = ChunkedBodyReader(source)
    assert decoded.read(2) == b"he"
    decoded.drain()
    assert decoded.complete
    client.sendall(b"zz\r\n")
    broken = ChunkedBodyReader(source)
    broken.drain()
    assert not broken.complete


def test_only_djangos_own_server_is_recognised():
    """gunicorn's decoded stream, Django's test client and a stream without read1 are
    left alone; Django's server's LimitedStream yields the connection under it."""
    from django.core.handlers.wsgi import LimitedStream

    rfile = io.BufferedReader(io.BytesIO(b""))
    dev = {"wsgi.input": LimitedStream(rfile, 0), "SERVER_SOFTWARE": "WSGIServer/0.2 CPython"}
    assert development_server_connection(dev) is rfile
    assert development_server_connection({**dev, "wsgi.input_terminated": True}) is None
    assert development_server_connection({**dev, "SERVER_SOFTWARE": "gunicorn/26"}) is None
    assert development_server_connection({**dev, "wsgi.input": rfile}) is None
    no_read1 = {**dev, "wsgi.input": LimitedStream(io.RawIOBase(), 0)}
    assert development_server_connection(no_read1) is None
