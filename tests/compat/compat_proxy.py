"""A loopback HTTP forwarder that makes a workspace look like a bare `mlflow server`.

mlflow's tests build URLs from a server root (`{url}/api/2.0/...`, `{url}/get-artifact`) and
send plain `requests` calls without credentials. The forwarder listens on 127.0.0.1:<port>
and relays every request to the workspace's tracking URI, adding only the path prefix and
`Authorization: Bearer <token>`. Methods, bodies, statuses and headers pass through as they
are; a `Location` that points into the workspace is rewritten to the forwarder.
"""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkspaceProxy:
    """Forward http://127.0.0.1:<port>/<path> to <tracking_uri>/<path> with a bearer token."""

    def __init__(self, tracking_uri: str, token: str, port: int | None = None) -> None:
        target = urlsplit(tracking_uri.rstrip("/"))
        self.host = target.hostname or "127.0.0.1"
        self.target_port = target.port or 80
        self.prefix = target.path
        self.tracking_uri = tracking_uri.rstrip("/")
        self.token = token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _forward(self) -> None:
                body = self._body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Authorization"] = f"Bearer {proxy.token}"
                if body or self.command in {"POST", "PUT", "PATCH"}:
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.host, proxy.target_port, timeout=300)
                try:
                    conn.request(self.command, proxy.prefix + self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    self.send_response_only(response.status, response.reason)
                    for key, value in response.getheaders():
                        if key.lower() in _HOP_BY_HOP:
                            continue
                        if key.lower() == "location" and value.startswith(proxy.tracking_uri):
                            value = proxy.url + value[len(proxy.tracking_uri) :]
                        elif key.lower() == "location" and value.startswith(proxy.prefix):
                            value = value[len(proxy.prefix) :] or "/"
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    self.close_connection = True
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> WorkspaceProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # What their helpers do with a server process handle.
    def terminate(self) -> None:
        self.stop()

    kill = terminate

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def poll(self) -> int | None:
        return None
