"""The HTTP layer: one requests session per client, errors mapped to SDK exceptions."""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any
from urllib.parse import quote, urljoin

import requests

from mlstudio._version import __version__
from mlstudio.auth import AbstractAuthentication, resolve_auth
from mlstudio.exceptions import (
    ConfigurationError,
    MLStudioError,
    NotFoundError,
    ServerError,
    ServiceUnavailableError,
    ThrottledError,
    error_for,
)

# What SDK calls accept as auth=: a credential object, a token string, or None (the default chain).
Auth = AbstractAuthentication | str | None

SERVER_URL_ENV = "MLSTUDIO_SERVER_URL"
USER_AGENT = f"mlstudio-sdk/{__version__}"
# 429 answers are retried this many times, waiting as the Retry-After header says.
MAX_THROTTLE_RETRIES = 5
MAX_RETRY_WAIT = 60.0
DEFAULT_TIMEOUT = float(os.environ.get("MLSTUDIO_HTTP_TIMEOUT", "120"))


def normalize_server_url(url: str) -> str:
    """The server's base URL without a trailing slash or an /api/v1 suffix."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"The server URL must start with http:// or https://: {url!r}")
    return url


def resolve_server_url(server_url: str | None = None) -> str:
    """The server URL given, else $MLSTUDIO_SERVER_URL.

    Raises:
        ConfigurationError: neither is set.
    """
    url = server_url or os.environ.get(SERVER_URL_ENV)
    if not url:
        raise ConfigurationError(
            "No ML Studio server URL: pass server_url=..., put server_url in config.json "
            f"or set {SERVER_URL_ENV}."
        )
    return normalize_server_url(url)


def segment(value: Any) -> str:
    """One path segment, quoted so names with spaces or slashes stay one segment."""
    return quote(str(value), safe="")


def _retry_after(response: requests.Response, attempt: int) -> float:
    raw = response.headers.get("Retry-After")
    if raw:
        try:
            wait: float | None = float(raw)
        except ValueError:
            try:  # else an HTTP date (parsedate_to_datetime raises on anything else)
                wait = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
            except ValueError:
                wait = None
        if wait is not None:
            return min(max(wait, 0.0), MAX_RETRY_WAIT)
    return min(2.0**attempt + random.random(), MAX_RETRY_WAIT)  # noqa: S311 - jitter


def make_client(server_url: str | None, auth: Auth) -> HttpClient:
    """A client for the server given (else $MLSTUDIO_SERVER_URL) with the credential given
    (else the default chain)."""
    return HttpClient(resolve_server_url(server_url), resolve_auth(auth))


class HttpClient:
    """Calls /api/v1 of one server with one credential.

    Args:
        server_url: The server's base URL (``https://studio.example.com``).
        auth: The credential; None sends requests without one (login only).
        timeout: Seconds to wait for each response.
    """

    def __init__(
        self,
        server_url: str,
        auth: AbstractAuthentication | None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.server_url = normalize_server_url(server_url)
        self.api_url = self.server_url + "/api/v1/"
        self.auth = auth
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"

    def url(self, path: str) -> str:
        """The absolute URL of an API path (paths already absolute are kept)."""
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.api_url, path.lstrip("/"))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        not_found: type[NotFoundError] = NotFoundError,
        stream: bool = False,
    ) -> requests.Response:
        """Send one request; answer the response, or raise the SDK exception for its error.

        Args:
            data: A raw body (bytes, or a seekable binary file sent from where it stands
                now, again from there when a throttled request is retried).
            headers: More headers (Content-Type of a raw body).

        Raises:
            MLStudioError: a subclass that matches the server's error (see exceptions).
        """
        sent_headers = dict(headers or {})
        if self.auth is not None:
            sent_headers.update(self.auth.get_authentication_header(self.server_url))
        url = self.url(path)
        start = data.tell() if data is not None and hasattr(data, "seek") else None
        for attempt in range(MAX_THROTTLE_RETRIES + 1):
            if start is not None:
                data.seek(start)  # type: ignore[union-attr]
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=sent_headers,
                    timeout=self.timeout,
                    stream=stream,
                )
            except requests.ConnectionError as exc:
                raise ServiceUnavailableError(
                    f"Cannot reach the ML Studio server at {self.server_url}: {exc}"
                ) from exc
            except requests.Timeout as exc:
                raise ServiceUnavailableError(
                    f"The ML Studio server at {self.server_url} did not answer in time: {exc}"
                ) from exc
            if response.status_code != 429 or attempt == MAX_THROTTLE_RETRIES:
                break
            time.sleep(_retry_after(response, attempt))
        if response.status_code >= 400:
            raise self._error(response, not_found)
        return response

    def _error(self, response: requests.Response, not_found: type[NotFoundError]) -> MLStudioError:
        error_code = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "message" in body:
            error_code = body.get("error_code")
            message = str(body["message"])
        elif response.status_code >= 500:
            message = f"The server failed (HTTP {response.status_code}) on {response.url}."
        else:
            message = f"HTTP {response.status_code} from {response.url}."
        if response.status_code == 429:
            return ThrottledError(
                message,
                error_code=error_code,
                status_code=429,
                retry_after=_retry_after(response, 0)
                if "Retry-After" in response.headers
                else None,
            )
        return error_for(response.status_code, error_code, message, not_found)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and answer its decoded JSON body (None for an empty one)."""
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError(
                f"The server answered {response.url} with something that is not JSON; "
                "is the server URL right?",
                status_code=response.status_code,
            ) from exc

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, json=json if json is not None else {}, **kwargs)

    def patch(self, path: str, json: Any, **kwargs: Any) -> Any:
        return self.call("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)

    def paged(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        not_found: type[NotFoundError] = NotFoundError,
    ) -> Iterator[Any]:
        """Yield the items of a list endpoint, following its `next` links page by page."""
        page = self.get(path, params=params, not_found=not_found)
        while True:
            if not isinstance(page, dict) or "results" not in page:
                raise ServerError(f"{self.url(path)} did not answer a page of results.")
            yield from page["results"]
            if not page.get("next"):
                return
            page = self.get(page["next"], not_found=not_found)
