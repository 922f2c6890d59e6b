"""Fixtures for the SDK tests: a live server with the permission cast, and an SDK process
state that reads nothing from the machine (no ~/.mlstudio, no MLSTUDIO_* variables)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlstudio import TokenAuthentication, Workspace
from mlstudio._client import renewal
from mlstudio.cli import main


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path) -> None:
    # Runs before `cast`: its workspaces get their artifact folders in the test's tmp_path.
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")


@pytest.fixture
def sdk_env(monkeypatch, tmp_path) -> Path:
    """A clean SDK environment: own config dir, no token or server in the environment, a
    fresh working folder, no registered tracking URIs. Answers the working folder."""
    for name in {"MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_URI"}:
        # setenv first, so the SDK setting one of these is undone after the test too.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name in list(os.environ):
        if name.startswith("MLSTUDIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLSTUDIO_CONFIG_DIR", str(tmp_path / "home" / ".mlstudio"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    renewal.clear()
    yield cwd
    renewal.clear()


@dataclass
class Studio:
    """The live server, the cast's workspace tree and a personal token per cast member."""

    url: str
    cast: object
    tokens: dict[str, str]

    @property
    def subscription_id(self) -> str:
        return str(self.cast.subscription.id)

    def auth(self, who: str = "contributor") -> TokenAuthentication:
        return TokenAuthentication(self.tokens[who])

    def workspace(self, who: str = "contributor") -> Workspace:
        return Workspace(
            self.subscription_id, "rg-main", "ws-main", auth=self.auth(who), server_url=self.url
        )


@pytest.fixture
def studio(live_server, cast, sdk_env) -> Iterator[Studio]:
    from portal import services
    from tracking.tests.conftest import _forget_fluent_state

    tokens = {}
    for who in ("owner", "contributor", "reader", "outsider"):
        _, tokens[who] = services.token_create(user=getattr(cast, who), name=f"sdk-{who}")
    _forget_fluent_state()
    yield Studio(live_server.url, cast, tokens)
    import mlflow

    _forget_fluent_state()
    mlflow.set_tracking_uri("")


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Runs the `mlstudio` command in-process: cli("run", "list", ...) -> Result."""

    def run(*argv: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()  # what ran before (mlflow prints run links) is not the command's
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def logged_in(studio, cli):
    """The contributor (carlos) logged in with `mlstudio login`."""
    from portal.tests.factories import PASSWORD

    result = cli(
        "login", "--server", studio.url, "-u", "carlos", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert result.code == 0, result.err
    return studio
