"""Credentials: how the SDK proves who it is to an ML Studio server.

Three sources, tried in this order when no credential is passed explicitly:

1. ``MLSTUDIO_TOKEN`` — a personal token in the environment (scripts, CI, remote jobs);
2. the stored login that ``mlstudio login`` saved for the server, in
   ``~/.mlstudio/credentials.json`` (``$MLSTUDIO_CONFIG_DIR`` moves the folder);
3. nothing: :class:`~mlstudio.exceptions.AuthenticationError` explains how to log in.

Pass ``auth=TokenAuthentication("mls_...")`` to any SDK call to use a token explicitly.
"""

from __future__ import annotations

import json
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from mlstudio.exceptions import AuthenticationError

TOKEN_ENV = "MLSTUDIO_TOKEN"  # noqa: S105 - a variable name, not a secret
CONFIG_DIR_ENV = "MLSTUDIO_CONFIG_DIR"
CREDENTIALS_FILE = "credentials.json"


def _server_key(server_url: str) -> str:
    return server_url.strip().rstrip("/")


def config_dir() -> Path:
    """The folder of the stored logins: $MLSTUDIO_CONFIG_DIR, else ~/.mlstudio."""
    override = os.environ.get(CONFIG_DIR_ENV)
    return Path(override).expanduser() if override else Path.home() / ".mlstudio"


def credentials_path() -> Path:
    """The stored logins file (it holds secrets, so it is created readable by its owner only)."""
    return config_dir() / CREDENTIALS_FILE


def load_credentials() -> dict[str, dict[str, Any]]:
    """Every stored login, by server URL ({} when there is no file)."""
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AuthenticationError(f"Cannot read the stored logins in {path}: {exc}") from exc
    servers = data.get("servers") if isinstance(data, dict) else None
    return servers if isinstance(servers, dict) else {}


def _write_credentials(servers: dict[str, dict[str, Any]]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Write a private temporary file and rename it over the old one: the secret is never
    # readable by others, not even for a moment, and a crash leaves the old file whole.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"servers": servers}, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_login(server_url: str, token: str, **info: Any) -> Path:
    """Store a token for a server (replacing an earlier one); answer the file's path.

    Args:
        server_url: The server the token belongs to.
        token: The token's secret.
        info: What else to remember: username, token_id, expires_at.
    """
    servers = load_credentials()
    servers[_server_key(server_url)] = {"token": token, **info}
    return _write_credentials(servers)


def forget_login(server_url: str) -> dict[str, Any] | None:
    """Remove the stored login of a server; answer it, or None when there was none."""
    servers = load_credentials()
    entry = servers.pop(_server_key(server_url), None)
    if entry is not None:
        _write_credentials(servers)
    return entry


def stored_login(server_url: str) -> dict[str, Any] | None:
    """The stored login of a server, or None."""
    return load_credentials().get(_server_key(server_url))


class AbstractAuthentication(ABC):
    """A credential for ML Studio servers."""

    @abstractmethod
    def get_token(self, server_url: str) -> str:
        """The bearer token to send to this server.

        Raises:
            AuthenticationError: this source has no token for the server.
        """

    def get_authentication_header(self, server_url: str) -> dict[str, str]:
        """The HTTP header that authenticates a request to this server."""
        return {"Authorization": f"Bearer {self.get_token(server_url)}"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TokenAuthentication(AbstractAuthentication):
    """An explicit personal token (``mls_...``), from the Tokens page or ``mlstudio token create``.

    Args:
        token: The token's secret.
    """

    def __init__(self, token: str) -> None:
        if not token or not token.strip():
            raise AuthenticationError("TokenAuthentication needs a non-empty token.")
        self._token = token.strip()

    def get_token(self, server_url: str) -> str:
        return self._token


class EnvironmentAuthentication(AbstractAuthentication):
    """The token in an environment variable (``MLSTUDIO_TOKEN`` by default), read at each use.

    Args:
        variable: The environment variable's name.
    """

    def __init__(self, variable: str = TOKEN_ENV) -> None:
        self.variable = variable

    @property
    def available(self) -> bool:
        return bool(os.environ.get(self.variable, "").strip())

    def get_token(self, server_url: str) -> str:
        token = os.environ.get(self.variable, "").strip()
        if not token:
            raise AuthenticationError(f"${self.variable} is not set.")
        return token


class StoredLoginAuthentication(AbstractAuthentication):
    """The token ``mlstudio login`` stored for the server, in ~/.mlstudio/credentials.json."""

    def available(self, server_url: str) -> bool:
        entry = stored_login(server_url)
        return bool(entry and entry.get("token"))

    def get_token(self, server_url: str) -> str:
        entry = stored_login(server_url)
        if not entry or not entry.get("token"):
            raise AuthenticationError(
                f"Not logged in to {_server_key(server_url)}: run "
                f"`mlstudio login --server {_server_key(server_url)}` or set ${TOKEN_ENV}."
            )
        return str(entry["token"])


class DefaultAuthentication(AbstractAuthentication):
    """$MLSTUDIO_TOKEN when it is set, else the stored login of the server."""

    def __init__(self) -> None:
        self._env = EnvironmentAuthentication()
        self._stored = StoredLoginAuthentication()

    def source(self, server_url: str) -> AbstractAuthentication:
        """The credential that will be used for this server.

        Raises:
            AuthenticationError: none is available.
        """
        if self._env.available:
            return self._env
        if self._stored.available(server_url):
            return self._stored
        raise AuthenticationError(
            f"No credentials for {_server_key(server_url)}: set ${TOKEN_ENV} to a personal "
            f"token, run `mlstudio login --server {_server_key(server_url)}`, or pass "
            "auth=TokenAuthentication(...)."
        )

    def get_token(self, server_url: str) -> str:
        return self.source(server_url).get_token(server_url)


def resolve_auth(auth: AbstractAuthentication | str | None) -> AbstractAuthentication:
    """The credential to use: the one given (a plain string is a token), else the default chain."""
    if auth is None:
        return DefaultAuthentication()
    if isinstance(auth, str):
        return TokenAuthentication(auth)
    return auth
