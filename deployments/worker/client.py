"""The studio's worker API (/api/v1/compute), as a compute worker calls it.

Transient failures (the studio restarting, a network blip, a 5xx) are retried with
backoff for up to `retry_seconds`; a 4xx is the studio's answer and raised at once as
`StudioRefused` with its message."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)


class StudioError(Exception):
    """The studio could not be reached (after retries), or answered with a 5xx."""


class StudioRefused(Exception):
    """The studio answered 4xx: `status`, `code` (its error_code) and the message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class Busy(Exception):
    """The target runs max_nodes jobs already: retry after `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str):
        super().__init__(retry_after, message)
        self.retry_after = retry_after
        self.message = message

    def __str__(self) -> str:
        return self.message


class StudioClient:
    def __init__(
        self,
        studio_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retry_seconds: float = 120.0,
    ):
        self.base = studio_url.rstrip("/") + "/api/v1/compute/"
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._token = token
        self._session: requests.Session | None = None
        self._pid = 0

    @property
    def session(self) -> requests.Session:
        """This process's session: a pooled connection must not be shared with the pool
        processes the worker forks (their requests and answers would interleave)."""
        if self._session is None or self._pid != os.getpid():
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self._token}"
            session.headers["User-Agent"] = "mlstudio-worker"
            self._session, self._pid = session, os.getpid()
        return self._session

    # --- transport ----------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.5
        while True:
            try:
                response = self.session.request(
                    method, self.base + path, timeout=self.timeout, **kwargs
                )
            except requests.RequestException as exc:
                problem = f"cannot reach the studio: {exc.__class__.__name__}"
            else:
                if response.status_code < 500:
                    return response
                problem = f"the studio answered {response.status_code}"
            if time.monotonic() + delay > deadline:
                raise StudioError(problem)
            log.warning("%s; retrying %s %s in %.1f s", problem, method, path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
            data = kwargs.get("data")
            if data is not None and hasattr(data, "seek"):
                data.seek(0)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _refused(response)
        return response.json()

    # --- the worker ---------------------------------------------------------------------

    def worker_info(self) -> dict:
        """{queue, target, workspace, max_nodes}: what this worker's token serves."""
        return self._json("GET", "worker")

    def worker_heartbeat(self, hostname: str, slots: int, version: str) -> None:
        self._json(
            "POST",
            "worker/heartbeat",
            json={"hostname": hostname, "slots": slots, "version": version},
        )

    # --- a job --------------------------------------------------------------------------

    def claim(self, job_id: str, hostname: str) -> dict | None:
        """The job's spec, or None when it is not ours to run (a duplicate message, a
        canceled job). Raises Busy when the target is full. One key per call: when an
        answer is lost and the request retried, the studio answers the retry the same."""
        body = {"hostname": hostname, "claim_key": uuid.uuid4().hex}
        response = self._request("POST", f"jobs/{job_id}/claim", json=body)
        if response.status_code == 409:
            return None
        if response.status_code == 429:
            try:
                after = float(response.headers.get("Retry-After", "5"))
            except ValueError:
                after = 5.0
            raise Busy(after, _message(response))
        if response.status_code >= 400:
            raise _refused(response)
        return response.json()

    def download_snapshot(self, job_id: str, dest: Path) -> None:
        response = self._request("GET", f"jobs/{job_id}/snapshot", stream=True)
        if response.status_code >= 400:
            raise _refused(response)
        with response, open(dest, "wb") as fh:
            for chunk in response.iter_content(1024 * 1024):
                fh.write(chunk)

    def job_heartbeat(self, job_id: str) -> dict:
        return self._json("POST", f"jobs/{job_id}/heartbeat")

    def report(self, job_id: str, stage: str, **fields: Any) -> dict:
        body = {"stage": stage, **{k: v for k, v in fields.items() if v is not None}}
        return self._json("POST", f"jobs/{job_id}/report", json=body)

    def append_log(self, job_id: str, offset: int, text: str) -> int:
        """Returns the log's size after the append (where the next one starts)."""
        return self._json("POST", f"jobs/{job_id}/logs", json={"offset": offset, "text": text})[
            "log_bytes"
        ]

    def put_artifact(self, job_id: str, path: str, fh: IO[bytes]) -> None:
        self._json(
            "PUT",
            f"jobs/{job_id}/artifacts/{quote(path)}",
            data=fh,
            headers={"Content-Type": "application/octet-stream"},
        )


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", response.reason))
    except ValueError:
        return response.reason or str(response.status_code)


def _refused(response: requests.Response) -> StudioRefused:
    try:
        code = str(response.json().get("error_code", ""))
    except ValueError:
        code = ""
    return StudioRefused(response.status_code, code, _message(response))


def iter_files(root: Path) -> Iterator[Path]:
    """Regular files under `root`, sorted, links not followed (a script's outputs)."""
    if not root.is_dir() or root.is_symlink():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and not _linked_parent(path, root):
            yield path


def _linked_parent(path: Path, root: Path) -> bool:
    parent = path.parent
    while parent != root:
        if parent.is_symlink():
            return True
        parent = parent.parent
    return False
