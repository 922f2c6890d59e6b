"""Deleting through the SDK and the CLI: the cascade job runs in a real Celery worker
process while the SDK follows it with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import start_worker, stop_worker
from mlstudio import JobFailedError, ResourceGroup, Workspace, WorkspaceNotFound
from mlstudio._client.jobs import follow_job
from mlstudio.cli import main
from tests.test_deletion import producer_on_worker_broker  # noqa: F401 - fixture


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_resource_group_and_workspace_delete_wait_on_the_worker_with_progress(
    studio,
    tmp_path,
    capsys,
    monkeypatch,
    producer_on_worker_broker,  # noqa: F811 - the fixture imported above
):
    import mlflow

    from portal.models import DeletionJob
    from portal.models import ResourceGroup as ResourceGroupRow

    ws = studio.workspace("contributor")
    mlflow.set_tracking_uri(ws.get_mlflow_tracking_uri())
    mlflow.set_experiment("doomed")
    for i in range(3):
        with mlflow.start_run():
            mlflow.log_metric("loss", 1.0 / (i + 1))
            mlflow.log_text(f"run {i}", "notes.txt")
    root = Path(studio.cast.workspace.artifact_root)
    assert len([p for p in root.rglob("*") if p.is_file()]) == 3
    extra = Workspace.create(
        "ws-extra", studio.subscription_id, "rg-main", auth=studio.auth(), server_url=studio.url
    )

    worker = start_worker(tmp_path, "filesystem")
    try:
        # A workspace through the CLI: --yes, a progress bar on stderr, the job as JSON.
        monkeypatch.setenv("MLSTUDIO_TOKEN", studio.tokens["contributor"])
        capsys.readouterr()
        code = main(
            [
                "workspace", "delete", "ws-extra", "-g", "rg-main", "-s", studio.subscription_id,
                "--yes", "--server", studio.url, "-o", "json",
            ]
        )  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0, err + worker.log.read_text()[-2000:]
        job = json.loads(out)
        assert job["status"] == "succeeded" and job["percent"] == 100
        assert "100%" in err and "succeeded" in err
        with pytest.raises(WorkspaceNotFound):
            extra.get_details()

        # The whole resource group through the SDK.
        group = ResourceGroup(studio.subscription_id, "rg-main", studio.auth(), studio.url)
        final = group.delete(wait=True, show_progress=True)
        assert final["status"] == "succeeded", final
        assert final["is_finished"] and final["progress_done"] == final["progress_total"]
        assert final["kind"] == "resource_group"
        assert "rg-main" in capsys.readouterr().err
    finally:
        stop_worker(worker)
    assert not root.exists()
    assert not ResourceGroupRow.objects.filter(pk=studio.cast.resource_group.pk).exists()
    assert DeletionJob.objects.count() == 2
    with pytest.raises(WorkspaceNotFound):
        ws.get_details()


def test_follow_job_raises_on_a_failed_job():
    class Client:
        def __init__(self):
            self.states = iter(
                [
                    {"url": "u", "status": "running", "percent": 40, "phase": "Deleting runs"},
                    {"url": "u", "status": "failed", "percent": 40, "error": "disk full"},
                ]
            )

        def get(self, url):
            return next(self.states)

    start = {"url": "u", "status": "queued", "percent": 0, "label": "Contoso › rg"}
    with pytest.raises(JobFailedError, match="disk full") as caught:
        follow_job(Client(), start, show_progress=False, poll_interval=0)
    assert caught.value.job["status"] == "failed"
