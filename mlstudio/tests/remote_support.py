"""What the remote-run tests share: a compute worker played by the test through the
worker-side services (the calls a real worker makes over HTTP), and a hook that advances
it between two of the SDK's polls, so following a run is tested step by step without
threads or sleeps."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from mlstudio._client import remote


class FakeWorker:
    """Moves one remote run's job as a worker would: claim, stages, output, end."""

    def __init__(self, run_id: str) -> None:
        from deployments.models import RemoteJob

        self.job_id = RemoteJob.objects.get(run__run_uuid=run_id).pk
        self.offset = 0

    @property
    def job(self):
        from deployments.models import RemoteJob

        return RemoteJob.objects.get(pk=self.job_id)

    def claim(self) -> dict:
        from deployments.services import jobs

        claim = jobs.remote_job_claim(job_id=self.job_id, worker_hostname="node-1")
        assert claim is not None
        return claim

    def report(self, stage: str, **fields) -> dict:
        from deployments.services import jobs

        return jobs.remote_job_report(job_id=self.job_id, stage=stage, **fields)

    def log(self, text: str) -> None:
        from deployments.services import jobs

        self.offset = jobs.remote_job_log_append(job_id=self.job_id, offset=self.offset, text=text)[
            "log_bytes"
        ]


def drive(monkeypatch, steps: Iterable[Callable[[], object]], spare: int = 20) -> list[str]:
    """Run one step each time the SDK pauses between two polls; answer what each pause
    saw, so a test can tell output printed before a later step happened. Fails (rather
    than hanging) when the SDK keeps polling after the steps are done."""
    pending = list(steps)
    pauses: list[str] = []

    def pause(seconds: float) -> None:
        assert 0.4 <= seconds <= 1.0, seconds  # polls every half second to a second
        if pending:
            pauses.append("step")
            pending.pop(0)()
            return
        pauses.append("idle")
        if pauses.count("idle") > spare:
            pytest.fail("the SDK kept polling after the run ended")

    monkeypatch.setattr(remote, "pause", pause)
    return pauses


def no_queue(monkeypatch) -> list[str]:
    """Keep submitted jobs' messages off the broker (no worker runs in these tests);
    answer the ids that would have been sent."""
    from portal.services import jobs

    sent: list[str] = []
    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: sent.append(str(job.pk)))
    return sent


def train_dir(root: Path) -> Path:
    """The reference workflow's ./train folder: a script, a helper, and data it ignores."""
    folder = root / "train"
    (folder / "data").mkdir(parents=True)
    (folder / "train.py").write_text(
        "import argparse, mlflow\n"
        "p = argparse.ArgumentParser(); p.add_argument('--alpha', type=float)\n"
        "alpha = p.parse_args().alpha\n"
        "with mlflow.start_run():\n"
        "    mlflow.log_metric('alpha', alpha)\n"
        "print('trained with alpha', alpha)\n"
    )
    (folder / "utils.py").write_text("HELP = 1\n")
    (folder / "data" / "big.csv").write_text("a,b\n1,2\n")
    (folder / ".amlignore").write_text("data/\n")
    return folder
