"""Fixtures for driving a workspace's tracking URI with the real `mlflow` client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

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


def _forget_fluent_state() -> None:
    """mlflow's fluent API remembers the experiment set by an earlier test."""
    import mlflow.tracking.fluent as fluent

    while fluent.active_run():
        fluent.end_run()
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
