"""Fixtures for driving a workspace's tracking URI with the real `mlflow` client."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Tracking:
    """A live server's tracking URI for the cast's workspace, and tokens to use it."""

    base: str
    uri: str
    tokens: dict[str, str]  # cast member name → raw token

    def uri_for(self, workspace) -> str:
        from portal.selectors import tracking_uri

        return tracking_uri(workspace, self.base)

    def use(self, who: str, monkeypatch: pytest.MonkeyPatch, uri: str | None = None) -> None:
        """Point the process-wide mlflow client at the workspace as this cast member."""
        import mlflow

        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", self.tokens[who])
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri or self.uri)
        mlflow.set_tracking_uri(uri or self.uri)

    def client(self, who: str, monkeypatch: pytest.MonkeyPatch, uri: str | None = None):
        import mlflow

        self.use(who, monkeypatch, uri)
        return mlflow.MlflowClient(uri or self.uri)


@pytest.fixture
def tracking(live_server, cast, monkeypatch, tmp_path, settings) -> Iterator[Tracking]:
    """The cast's workspace served by a live server; the client uses the owner's token by
    default. Retries are off so a failing call fails at once."""
    import mlflow

    from portal import services
    from portal.selectors import tracking_uri

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    tokens = {}
    for who in ("owner", "contributor", "reader", "outsider"):
        _, raw = services.token_create(user=getattr(cast, who), name=f"tests-{who}")
        tokens[who] = raw
    base = live_server.url
    state = Tracking(base=base, uri=tracking_uri(cast.workspace, base), tokens=tokens)
    _forget_fluent_state()
    state.use("owner", monkeypatch)
    yield state
    if mlflow.active_run():
        mlflow.end_run()
    _forget_fluent_state()
    mlflow.set_tracking_uri("")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_tracking(
    transactional_db, cast, monkeypatch, tmp_path
) -> Iterator[Callable[..., Tracking]]:
    """Start the studio under gunicorn, as `make run` serves it, on the tests' database,
    and get the cast's workspace there: `gunicorn_tracking(ARTIFACT_MAX_UPLOAD_BYTES="1000")`
    (keywords are the server's environment). For what Django's test server cannot do,
    such as reading a chunked request body."""
    import requests

    from conftest import ROOT, _database_url_for_tests
    from portal import services
    from portal.selectors import tracking_uri

    processes: list[subprocess.Popen] = []

    def start(**environment: str) -> Tracking:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_URL"))}
        env.update(
            DATABASE_URL=_database_url_for_tests(),
            DATA_DIR=str(tmp_path / "gunicorn-data"),
            DEBUG="1",
            SECRET_KEY="gunicorn-test-" + "x" * 60,
            ACCESS_CACHE_SECONDS="0",
            **environment,
        )
        port = _free_port()
        log = tmp_path / "gunicorn.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "portal.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "4",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            # Its own process group, so teardown reaches its worker too: a worker left
            # behind keeps connections to the test database open.
            start_new_session=True,
        )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=10).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{Path(log).read_text()[-3000:]}")
            time.sleep(0.2)
        tokens = {
            who: services.token_create(user=getattr(cast, who), name=f"gunicorn-{who}")[1]
            for who in ("owner", "contributor", "reader", "outsider")
        }
        state = Tracking(base=base, uri=tracking_uri(cast.workspace, base), tokens=tokens)
        _forget_fluent_state()
        state.use("owner", monkeypatch)
        return state

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    yield start
    _forget_fluent_state()
    import mlflow

    mlflow.set_tracking_uri("")
    for process in processes:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: no keep-alive wait
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of the group outlived it


def _forget_fluent_state() -> None:
    """mlflow's fluent API remembers the experiment set by an earlier test."""
    import mlflow.tracking.fluent as fluent

    while fluent.active_run():
        fluent.end_run()
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
