"""A web service's front: owns its public port and relays HTTP/1.1 to the current instance.

Why a front at all: a service's `scoring_uri` must not change when it is updated, yet the
new instance must be healthy before the old one stops. The front listens on the public
port for the service's whole life; the service host starts the new instance on a port of
its own, checks it, then points the front at it (writes the control file, sends SIGHUP)
and stops the old instance only after the front acknowledged the switch.

Why HTTP-aware rather than a blind TCP splice: a client keeps its connection open across
requests (keep-alive). A splice would pin that connection to the old instance, and
stopping the old instance would cut it — a failed request. The front tracks only the
framing of each request and response (Content-Length, chunked, close-delimited) so it
knows the boundaries: a request that starts after the switch goes to the new instance on
a new backend connection; one in flight finishes on the old. Bytes are relayed as they
come (no buffering of whole messages) and no header is rewritten, so the cost is a loopback
hop and a header scan (measured in deployments/tests/test_service_host.py).

A backend connection the instance closed while idle (its keep-alive timeout) that a
request raced onto is retried once on a fresh connection, as browsers do, when no byte of
the answer had come yet. With no instance to reach, the front keeps trying (re-reading the
control file: the host may be restarting it) for CONNECT_WAIT_S, then answers 503.

Plain stdlib, no Django: started as `python -m deployments.servicehost.front`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

log = logging.getLogger("mlstudio_front")

MAX_HEAD = 64 * 1024
# A request no longer than this is kept until its answer starts, to be sent again on a
# fresh backend connection when the first one turns out to be closed.
RETRY_MAX = 1024 * 1024
CONNECT_WAIT_S = 10.0
DRAIN_S = 30.0
HIGH_WATER = 256 * 1024

UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)
BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


def _answer(template: bytes, code: str, message: str) -> bytes:
    body = json.dumps({"error_code": code, "message": message}).encode()
    return template % (len(body), body)


class FramingError(Exception):
    """The bytes are not HTTP/1.1 the front can follow."""


def _headers(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """The start line and the headers the framing depends on (lowercase names)."""
    lines = head.split(b"\r\n")
    wanted: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        if name in (b"content-length", b"transfer-encoding", b"connection", b"expect"):
            wanted[name] = value.strip().lower()
    return lines[0], wanted


def _length(headers: dict[bytes, bytes]) -> int | None:
    """The body's framing: -1 chunked, n bytes, or None (none given)."""
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        return -1
    value = headers.get(b"content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise FramingError("bad content-length")
    return int(value)


class Body:
    """Counts a message body's bytes: `feed(data)` → how many of them belong to it;
    `done` once it ended. Chunked bodies are scanned, never decoded."""

    __slots__ = ("_chunk", "_line", "_state", "chunked", "done", "remaining")

    def __init__(self, length: int) -> None:
        self.chunked = length < 0
        self.remaining = 0 if self.chunked else length
        self.done = length == 0
        self._state = "size"  # size | data | data-crlf | trailer
        self._line = b""
        self._chunk = 0

    def feed(self, data: memoryview | bytes) -> int:
        if self.done:
            return 0
        if not self.chunked:
            used = min(self.remaining, len(data))
            self.remaining -= used
            self.done = self.remaining == 0
            return used
        pos, size = 0, len(data)
        while pos < size and not self.done:
            if self._state == "data":
                used = min(self._chunk, size - pos)
                self._chunk -= used
                pos += used
                if self._chunk == 0:
                    self._state = "data-crlf"
                    self._line = b""
                continue
            end = bytes(data[pos:]).find(b"\n")
            if end < 0:
                self._line += bytes(data[pos:])
                if len(self._line) > 8192:
                    raise FramingError("chunk line too long")
                return size
            line = (self._line + bytes(data[pos : pos + end])).rstrip(b"\r")
            self._line = b""
            pos += end + 1
            if self._state == "size":
                try:
                    self._chunk = int(line.split(b";", 1)[0].strip() or b"x", 16)
                except ValueError:
                    raise FramingError("bad chunk size") from None
                self._state = "trailer" if self._chunk == 0 else "data"
            elif self._state == "data-crlf":
                self._state = "size"
            elif not line:  # the empty line after the trailers
                self.done = True
        return pos


class Front:
    """The listening side: the current backend, read from the control file."""

    def __init__(self, control: Path) -> None:
        self.control = control
        self.backend: tuple[str, int] | None = None
        self.generation = 0
        self.connections: set[Client] = set()
        self.reload()

    def reload(self) -> None:
        try:
            data = json.loads(self.control.read_text())
            host, port = data["backend"]
            backend, generation = (str(host), int(port)), int(data.get("generation", 0))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("control file not read: %s", exc)
            return
        if (backend, generation) != (self.backend, self.generation):
            log.info("backend %s:%s (generation %s)", *backend, generation)
        self.backend, self.generation = backend, generation
        ack = self.control.with_suffix(".ack")
        tmp = ack.with_suffix(".ack.tmp")
        tmp.write_text(json.dumps({"generation": generation, "pid": os.getpid()}))
        os.replace(tmp, ack)


class Backend(asyncio.Protocol):
    """One connection to an instance, used by one client connection."""

    def __init__(self, client: Client, generation: int) -> None:
        self.client = client
        self.generation = generation
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.client.from_backend(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.client.backend_lost(self)

    def pause_writing(self) -> None:
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.client.waiting:
            self.client.transport.resume_reading()


class Client(asyncio.Protocol):
    """One client connection: requests in, answers out, a backend per generation."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = bytearray()
        self.backend: Backend | None = None
        self.connecting = False
        self.pending: list[bytes] = []
        # The request being relayed.
        self.body: Body | None = None  # its body, while it comes
        self.waiting = False  # the request is sent; its answer is awaited
        self.method = b""
        self.close_after = False
        self.held: list[bytes] | None = None
        self.retried = False
        # The answer being relayed.
        self.rhead = bytearray()
        self.rbody: Body | None = None
        self.rstarted = False
        self.tunnel = False
        self.closing = False

    # --- client side ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.front.connections.discard(self)
        if self.backend is not None and self.backend.transport is not None:
            self.backend.transport.close()

    def pause_writing(self) -> None:
        if self.backend is not None and self.backend.transport is not None:
            self.backend.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.backend is not None and self.backend.transport is not None:
            self.backend.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.tunnel:
            self._send(data)
            return
        self.buf += data
        try:
            self._process()
        except FramingError as exc:
            self._fail(BAD_REQUEST, "BAD_REQUEST", f"Malformed request: {exc}.")

    def eof_received(self) -> bool | None:
        if self.tunnel and self.backend is not None and self.backend.transport is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.backend.transport.write_eof()
            return True
        # A half-close after the request: answer it, then close.
        self.close_after = True
        return True if self.waiting or self.body is not None else None

    def idle(self) -> bool:
        return self.body is None and not self.waiting

    def _process(self) -> None:
        while self.buf and not self.waiting and not self.closing:
            if self.body is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buf) > MAX_HEAD:
                        raise FramingError("header too large")
                    return
                head = bytes(self.buf[: end + 4])
                del self.buf[: end + 4]
                self._start_request(head)
            body = self.body
            assert body is not None
            if not body.done and self.buf:
                with memoryview(self.buf) as view:
                    used = body.feed(view)
                if used:
                    chunk = bytes(self.buf[:used])
                    del self.buf[:used]
                    self._send(chunk, hold=True)
            if body.done:
                self.body = None
                self.waiting = True
                self.transport.pause_reading()

    def _start_request(self, head: bytes) -> None:
        start, headers = _headers(head)
        parts = start.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise FramingError("not an HTTP/1.x request line")
        self.method = parts[0].upper()
        connection = headers.get(b"connection", b"")
        self.close_after = self.close_after or b"close" in connection or parts[2] == b"HTTP/1.0"
        length = _length(headers)
        self.body = Body(0 if length is None else length)
        self.held = []
        self.retried = False
        self.rhead.clear()
        self.rbody = None
        self.rstarted = False
        self._choose_backend()
        self._send(head, hold=True)
        if b"100-continue" in headers.get(b"expect", b""):
            self.held = None  # the client waits for the instance's answer before its body

    def _choose_backend(self) -> None:
        """A request starts: keep the backend connection if it is of the front's current
        generation, else leave the old one (it is idle) and open one to the new instance."""
        current = self.backend
        if current is not None and (current.closed or current.generation != self.front.generation):
            if current.transport is not None:
                current.transport.close()
            self.backend = None
        if self.backend is None and not self.connecting:
            self.connecting = True
            self.loop.create_task(self._connect())
        elif self.backend is not None:
            self.backend.used = True

    async def _connect(self) -> None:
        deadline = time.monotonic() + CONNECT_WAIT_S
        delay = 0.02
        while not self.closing:
            target, generation = self.front.backend, self.front.generation
            if target is not None:
                try:
                    _, protocol = await self.loop.create_connection(
                        lambda g=generation: Backend(self, g), *target
                    )
                except OSError:
                    pass
                else:
                    self.connecting = False
                    self.backend = protocol  # type: ignore[assignment]
                    pending, self.pending = self.pending, []
                    for data in pending:
                        self.backend.transport.write(data)  # type: ignore[union-attr]
                    return
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
            self.front.reload()  # the host may have started another instance
        self.connecting = False
        self._fail(
            UNAVAILABLE, "SERVICE_UNAVAILABLE", "The service has no instance answering right now."
        )

    def _send(self, data: bytes, hold: bool = False) -> None:
        if hold and self.held is not None:
            if sum(map(len, self.held)) + len(data) <= RETRY_MAX:
                self.held.append(data)
            else:
                self.held = None
        backend = self.backend
        if backend is not None and backend.transport is not None and not backend.closed:
            backend.transport.write(data)
        else:
            self.pending.append(data)
            if backend is not None and backend.closed and not self.connecting:
                self.backend = None
                self.connecting = True
                self.loop.create_task(self._connect())

    def _fail(self, template: bytes, code: str, message: str) -> None:
        if self.closing:
            return
        if not self.rstarted:
            self.transport.write(_answer(template, code, message))
        self.closing = True
        self.transport.close()

    # --- backend side ---

    def from_backend(self, backend: Backend, data: bytes) -> None:
        if backend is not self.backend or self.closing:
            return
        if self.tunnel:
            self.transport.write(data)
            return
        if not self.waiting and self.body is None:
            return  # nothing asked: an instance talking out of turn; ignore
        self.rstarted = True
        self.held = None
        try:
            self._relay(data)
        except FramingError as exc:
            log.warning("bad answer from the instance: %s", exc)
            self.closing = True
            self.transport.close()

    def _relay(self, data: bytes) -> None:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            if self.rbody is None:
                self.rhead += view[pos:]
                end = self.rhead.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.rhead) > MAX_HEAD:
                        raise FramingError("answer header too large")
                    return
                consumed_here = end + 4 - (len(self.rhead) - (len(view) - pos))
                head = bytes(self.rhead[: end + 4])
                self.rhead.clear()
                pos += consumed_here
                self.transport.write(head)
                self._start_answer(head)
                if self.tunnel:
                    if pos < len(view):
                        self.transport.write(bytes(view[pos:]))
                    return
                if self.rbody is None:  # an interim (1xx) answer; the final one follows
                    continue
                if self.rbody.done:
                    self._answer_done()
                    if pos < len(view):
                        return  # bytes past the answer: nothing was asked for them
                    continue
            body = self.rbody
            used = body.feed(view[pos:])
            if used:
                self.transport.write(bytes(view[pos : pos + used]))
                pos += used
            if body.done:
                self._answer_done()
                return

    def _start_answer(self, head: bytes) -> None:
        start, headers = _headers(head)
        parts = start.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise FramingError("bad status line")
        status = int(parts[1])
        if status == 101:
            self.tunnel = True
            self.waiting = False
            self.transport.resume_reading()
            if self.buf:
                data, self.buf = bytes(self.buf), bytearray()
                self._send(data)
            return
        if 100 <= status < 200:
            self.rbody = None
            return
        if b"close" in headers.get(b"connection", b""):
            self.close_after = True
        if self.method == b"HEAD" or status in (204, 304):
            self.rbody = Body(0)
            return
        length = _length(headers)
        if length is None:
            # Close-delimited: the answer ends when the instance closes.
            self.rbody = Body(1 << 62)
            self.close_after = True
        else:
            self.rbody = Body(length)

    def _answer_done(self) -> None:
        self.rbody = None
        self.rstarted = False
        self.waiting = False
        if self.close_after:
            self.closing = True
            self.transport.close()
            return
        self.transport.resume_reading()
        if self.buf:
            try:
                self._process()
            except FramingError as exc:
                self._fail(BAD_REQUEST, "BAD_REQUEST", f"Malformed request: {exc}.")

    def backend_lost(self, backend: Backend) -> None:
        if backend is not self.backend:
            return
        self.backend = None
        if self.closing:
            return
        if self.tunnel:
            self.closing = True
            self.transport.close()
            return
        if self.rbody is not None and self.rbody.remaining >= (1 << 61):
            self._answer_done_close()
            return
        if self.idle():
            return  # an idle keep-alive connection the instance closed: the next opens anew
        if not self.rstarted and self.held is not None and not self.retried:
            # The instance closed a connection the request raced onto: send it again.
            self.retried = True
            self.pending = list(self.held)
            self.connecting = True
            self.loop.create_task(self._connect())
            return
        self._fail(BAD_GATEWAY, "BAD_GATEWAY", "The service's instance closed the connection.")

    def _answer_done_close(self) -> None:
        self.closing = True
        self.transport.close()


async def serve(listen: tuple[str, int], control: Path) -> int:
    front = Front(control)
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            lambda: Client(front), *listen, reuse_address=True, backlog=1024
        )
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", *listen, exc.strerror or exc)
        return 3
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, front.reload)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    log.info("listening on %s:%s", *listen)
    await stop.wait()
    server.close()
    deadline = time.monotonic() + DRAIN_S
    while any(not c.idle() for c in front.connections) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for client in list(front.connections):
        client.transport.close()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlstudio-front", description=__doc__)
    parser.add_argument("--listen", required=True, help="host:port of the public port")
    parser.add_argument("--control", required=True, help="the JSON file naming the backend")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s front %(levelname)s: %(message)s", stream=sys.stderr
    )
    host, _, port = args.listen.rpartition(":")
    return asyncio.run(serve((host.strip("[]"), int(port)), Path(args.control)))


if __name__ == "__main__":
    sys.exit(main())
