"""The tracking URI from ws.get_mlflow_tracking_uri() keeps working with the plain mlflow
client after its short-lived token expires: the `mlstudio` auth provider renews it.

In this process the provider is registered by the SDK (mlflow_plugin.ensure_registered,
since the server's environment does not install the SDK's entry point); test_sdk_venv
proves the entry point in a virtualenv where the SDK is installed."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from mlstudio import AuthorizationError, TokenAuthentication, Workspace, mlflow_plugin
from mlstudio._client import renewal


def expire_tracking_tokens() -> int:
    """Make every tracking token expired, server-side (the SDK does not know)."""
    from django.utils import timezone

    from portal.models import ApiToken

    return ApiToken.objects.filter(kind="tracking").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def tracking_tokens() -> int:
    from portal.models import ApiToken

    return ApiToken.objects.filter(kind="tracking").count()


def test_the_provider_renews_an_expired_token_for_the_plain_mlflow_client(
    studio, monkeypatch, tmp_path, settings, caplog
):
    import mlflow
    from mlflow.exceptions import MlflowException

    # The MLflow endpoints remember a token's access for a few seconds; an expiry must
    # show at the next request here.
    settings.ACCESS_CACHE_SECONDS = 0

    ws = studio.workspace("contributor")
    uri = ws.get_mlflow_tracking_uri()
    assert uri == ws.get_details()["mlflowTrackingUri"]
    assert uri.startswith("http://")  # a plain URI: nothing mlflow cannot parse
    assert os.environ["MLFLOW_TRACKING_AUTH"] == "mlstudio"
    source = renewal.lookup(uri + "/api/2.0/mlflow/runs/get")
    assert source is not None and source.renewals == 0

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("long-script")
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.0, step=0)
        first_token = source.token()

        # The server lets the token lapse mid-run (as an hour would).
        assert expire_tracking_tokens() == 1
        mlflow.log_metric("loss", 0.5, step=1)  # 401, renewed, sent again
        assert source.renewals == 1 and source.token() != first_token

        # Artifact uploads (PUT of a file body to mlflow-artifacts) renew too: the body is
        # rewound and sent again whole. The PUT is the first request after the expiry.
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(run.info.artifact_uri)
        big = tmp_path / "big.txt"
        big.write_text("x" * 10_000)
        expire_tracking_tokens()
        caplog.clear()
        repo.log_artifact(str(big), "notes")
        assert source.renewals == 2
        refused = [r.getMessage() for r in caplog.records if r.name == "django.request"]
        assert len(refused) == 1 and "mlflow-artifacts/artifacts" in refused[0], refused
        # Proactive renewal: a token close to its expiry is replaced before it is sent.
        source._renew_at = 0
        mlflow.log_metric("loss", 0.25, step=2)
        assert source.renewals == 3
        # The provider's header wins over a stale MLFLOW_TRACKING_TOKEN.
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mls_stale")
        mlflow.set_tag("still", "works")
        monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    client = mlflow.MlflowClient(uri)
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [
        1.0,
        0.5,
        0.25,
    ]
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="notes/big.txt", dst_path=str(tmp_path)
    )
    assert Path(downloaded).read_text() == "x" * 10_000
    assert tracking_tokens() == 4

    # Without the provider, the expired token alone fails with 401.
    expire_tracking_tokens()
    monkeypatch.delenv("MLFLOW_TRACKING_AUTH")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", source._token)
    with pytest.raises(MlflowException) as caught:
        client.get_run(run.info.run_id)
    assert caught.value.error_code == "UNAUTHENTICATED"
    assert "expired" in caught.value.message


def test_the_provider_alone_needs_only_the_uri_and_a_personal_token(studio, monkeypatch):
    """A process that never called the SDK (a child process, say): MLFLOW_TRACKING_AUTH,
    MLSTUDIO_TOKEN and the tracking URI are enough."""
    import mlflow

    mlflow_plugin.ensure_registered()
    uri = studio.workspace("contributor").get_details()["mlflowTrackingUri"]
    renewal.clear()
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "mlstudio")
    monkeypatch.setenv("MLSTUDIO_TOKEN", studio.tokens["contributor"])
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("from-child")
    assert client.get_experiment(exp_id).name == "from-child"
    assert tracking_tokens() == 1  # minted once, reused
    # Requests to other servers are left alone.
    assert renewal.lookup("http://elsewhere.example/api/2.0/mlflow/runs/get") is None


def test_tracking_uri_warns_when_another_auth_provider_is_selected(studio, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "kubernetes")
    with pytest.warns(UserWarning, match="MLFLOW_TRACKING_AUTH is 'kubernetes'"):
        studio.workspace("reader").get_mlflow_tracking_uri()
    assert os.environ["MLFLOW_TRACKING_AUTH"] == "kubernetes"


def test_a_tracking_token_cannot_mint_tracking_tokens(studio):
    from portal.models import ApiToken

    studio.workspace("reader").get_mlflow_tracking_uri()
    tracking = renewal.lookup(studio.workspace("reader").get_details()["mlflowTrackingUri"])
    assert ApiToken.objects.filter(kind="tracking").count() == 1
    ws = Workspace(
        studio.subscription_id,
        "rg-main",
        "ws-main",
        auth=TokenAuthentication(tracking.token()),
        server_url=studio.url,
    )
    with pytest.raises(AuthorizationError, match="cannot mint"):
        ws.get_mlflow_tracking_uri()
