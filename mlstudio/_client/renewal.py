"""Short-lived tracking tokens that renew themselves, by tracking URI.

``Workspace.get_mlflow_tracking_uri()`` registers a :class:`TrackingTokenSource` here for the
URI it returns; the MLflow auth provider (mlstudio.mlflow_plugin) asks this registry for the
token of every request MLflow sends. Kept apart from the plugin so the SDK can register URIs
without importing mlflow.

The plugin stands above the SDK's objects (it imports mlflow, which they must not), so the
workspace cannot import it to register the provider with MLflow; it calls
:func:`install_auth_provider`, which runs what the ``mlstudio`` package installed here with
:func:`set_auth_provider_installer` when it was imported.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from mlstudio._client.http import HttpClient
from mlstudio._client.tenancy import workspace_path
from mlstudio.auth import DefaultAuthentication
from mlstudio.exceptions import AuthenticationError

# Renew when the token has less than this left (or a quarter of its lifetime, when shorter),
# so a request never leaves with a token that expires on the way.
RENEW_MARGIN = 300.0

_TRACKING_PATH = re.compile(
    r"^(?P<server>https?://.+?)/mlflow/v1\.0/subscriptions/(?P<sub>[^/]+)"
    r"/resourceGroups/(?P<rg>[^/]+)/workspaces/(?P<ws>[^/?#]+)"
)

Mint = Callable[[], tuple[str, float]]  # → (token, seconds it stays valid)


def seconds_left(expires_at: str | None, date_header: str | None = None) -> float:
    """How long a token the server minted stays valid, measured on the server's clock.

    Reading the server's own `Date` header keeps a skewed client clock from renewing too
    late (or at every request).
    """
    if not expires_at:
        return float("inf")
    expires = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    now = time.time()
    if date_header:
        with contextlib.suppress(ValueError):  # not an HTTP date: the local clock will do
            now = email.utils.parsedate_to_datetime(date_header).timestamp()
    return expires.timestamp() - now


def request_tracking_token(
    client: HttpClient, workspace_path: str, **kwargs: Any
) -> tuple[dict[str, Any], float]:
    """Mint a tracking token of a workspace: the server's answer, and how long it is valid."""
    response = client.request("POST", f"{workspace_path}/tracking-token", json={}, **kwargs)
    body = response.json()
    return body, seconds_left(body.get("expires_at"), response.headers.get("Date"))


class TrackingTokenSource:
    """The current tracking token of one workspace, minted again before it expires.

    Args:
        tracking_uri: The workspace's tracking URI (requests below it get the token).
        mint: Mints a new token with the personal credential: answers (token, lifetime).
        token: A token already minted, with its lifetime, to use first.
    """

    def __init__(
        self,
        tracking_uri: str,
        mint: Mint,
        token: str | None = None,
        lifetime: float | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self._mint = mint
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.renewals = 0  # tokens minted after the first one (tests and logs read it)
        if token is not None:
            self._store(token, lifetime if lifetime is not None else float("inf"))

    def _store(self, token: str, lifetime: float) -> None:
        margin = min(RENEW_MARGIN, max(lifetime, 0.0) / 4)
        self._token = token
        self._renew_at = time.monotonic() + lifetime - margin

    def _mint_now(self) -> str:
        renewing = self._token is not None
        token, lifetime = self._mint()
        self.renewals += renewing
        self._store(token, lifetime)
        return token

    def token(self) -> str:
        """A token valid for a while yet (minting one when the current one is close to expiry)."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                return self._mint_now()
            return self._token

    def renew(self, rejected: str | None) -> str:
        """A new token after the server refused `rejected` (revoked or expired early).

        When another thread already replaced that token, its replacement is answered
        instead of minting twice.
        """
        with self._lock:
            if self._token is not None and self._token != rejected:
                return self._token
            return self._mint_now()


_sources: dict[str, TrackingTokenSource] = {}
_sources_lock = threading.Lock()
_auth_provider_installer: Callable[[], object] | None = None


def set_auth_provider_installer(install: Callable[[], object]) -> None:
    """Make `install` what :func:`install_auth_provider` runs (mlstudio/__init__.py calls it)."""
    global _auth_provider_installer
    _auth_provider_installer = install


def install_auth_provider() -> None:
    """Make sure MLflow in this process has the ``mlstudio`` auth provider, which sends the
    registered tokens (a no-op when mlflow is not installed, or has it from the entry point)."""
    if _auth_provider_installer is not None:
        _auth_provider_installer()


def register(source: TrackingTokenSource) -> TrackingTokenSource:
    """Send `source`'s token with every MLflow request below its tracking URI."""
    with _sources_lock:
        _sources[source.tracking_uri] = source
    return source


def clear() -> None:
    """Forget every registered tracking URI."""
    with _sources_lock:
        _sources.clear()


def lookup(url: str) -> TrackingTokenSource | None:
    """The source of the longest registered tracking URI that `url` lies under."""
    with _sources_lock:
        best = None
        for prefix, source in _sources.items():
            if (url == prefix or url.startswith(prefix + "/") or url.startswith(prefix + "?")) and (
                best is None or len(prefix) > len(best.tracking_uri)
            ):
                best = source
        return best


def source_for_url(url: str) -> TrackingTokenSource | None:
    """A source for an ML Studio tracking URL that no SDK call registered.

    This serves processes that only have MLFLOW_TRACKING_AUTH=mlstudio, the tracking URI and
    a personal credential ($MLSTUDIO_TOKEN or a stored login) — a child process, say. Answers
    None for URLs that are not ML Studio tracking URLs or when there is no credential.
    """
    match = _TRACKING_PATH.match(url)
    if match is None:
        return None
    server = match["server"]
    auth = DefaultAuthentication()
    try:
        auth.source(server)
    except AuthenticationError:
        return None
    client = HttpClient(server, auth)
    path = workspace_path(unquote(match["sub"]), unquote(match["rg"]), unquote(match["ws"]))

    def mint() -> tuple[str, float]:
        body, lifetime = request_tracking_token(client, path)
        return body["token"], lifetime

    tracking_uri = match.group(0)
    with _sources_lock:
        existing = _sources.get(tracking_uri)
        if existing is not None:
            return existing
        source = TrackingTokenSource(tracking_uri, mint)
        _sources[tracking_uri] = source
        return source
