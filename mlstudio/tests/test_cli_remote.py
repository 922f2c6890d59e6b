"""The remote-run commands through the real CLI entry point (mlstudio.cli.main) against a
live server: run submit/logs/cancel, compute and environment."""

from __future__ import annotations

import pytest

from mlstudio.tests.remote_support import FakeWorker, drive, no_queue, train_dir

FLAGS = ["-w", "ws-main"]


@pytest.fixture
def project(logged_in, sdk_env, monkeypatch):
    train_dir(sdk_env)
    no_queue(monkeypatch)
    return sdk_env


def test_submit_follow_logs_and_cancel(project, cli, monkeypatch):
    from deployments.models import RemoteJob

    submitted = cli(
        "run", "submit", "train", "train.py", "-e", "cli-exp", *FLAGS,
        "--arg=--alpha", "--arg", "0.5", "--pip", "mlflow", "--pip", "scikit-learn",
        "--env-var", "MODE=cli", "--tag", "team=a", "-o", "json",
    )  # fmt: skip
    assert submitted.code == 0, submitted.err
    job = submitted.json
    assert (job["stage"], job["compute"], job["script"]) == ("queued", "local", "train.py")
    assert job["arguments"] == ["--alpha", "0.5"]
    assert job["environment"] == {"name": "cli", "version": 1}
    row = RemoteJob.objects.select_related("environment").get(run__run_uuid=job["run_id"])
    assert row.environment.env_vars == {"MODE": "cli"}

    table = cli("run", "submit", "train", "train.py", "-e", "cli-exp", *FLAGS)
    assert table.code == 0, table.err
    assert "status" in table.out and "Queued" in table.out and "mlstudio-minimal" in table.out
    assert "mlstudio run logs" in table.err

    # logs: what there is so far; --follow until the end.
    worker = FakeWorker(job["run_id"])
    worker.claim()
    worker.report("running")
    worker.log("step 1\n")
    so_far = cli("run", "logs", job["run_id"], *FLAGS)
    assert so_far.code == 0 and so_far.out == "step 1\n"
    drive(
        monkeypatch,
        [lambda: worker.log("step 2\n"), lambda: worker.report("completed", exit_code=0)],
    )
    followed = cli("run", "logs", job["run_id"], *FLAGS, "--follow")
    assert followed.code == 0 and followed.out == "step 1\nstep 2\n"

    # cancel: a queued run ends at once; an ended one is refused.
    queued_id = next(
        line.split()[-1] for line in table.out.splitlines() if line.startswith("run_id")
    )
    canceled = cli("run", "cancel", queued_id, *FLAGS, "-o", "json")
    assert canceled.code == 0, canceled.err
    assert canceled.json["stage"] == "canceled" and "canceled" in canceled.err
    assert cli("run", "cancel", "0" * 32, *FLAGS).code == 4
    listed = cli("run", "list", "-e", "cli-exp", *FLAGS, "-o", "json").json
    assert len(listed) == 2


def test_submit_follow_prints_the_output_and_exits_with_the_end(project, cli, monkeypatch):
    from deployments.models import RemoteJob

    workers: dict[int, FakeWorker] = {}

    def worker() -> FakeWorker:  # the worker of the run submitted last
        run_id = RemoteJob.objects.latest("created_at").run.run_uuid
        return workers.setdefault(run_id, FakeWorker(run_id))

    drive(
        monkeypatch,
        [
            lambda: worker().claim(),
            lambda: worker().report("running"),
            lambda: worker().log("hello from the run\n"),
            lambda: worker().report("completed", exit_code=0),
        ],
    )
    done = cli("run", "submit", "train", "train.py", "-e", "cli-exp", *FLAGS, "--follow")
    assert done.code == 0, done.err
    assert done.out == "hello from the run\n"
    assert done.err.rstrip().endswith(": Completed")

    steps = drive(
        monkeypatch,
        [
            lambda: worker().claim(),
            lambda: worker().report("failed", exit_code=1, error="ImportError: no sklearn"),
        ],
    )
    failed = cli(
        "run", "submit", "train", "train.py", "-e", "cli-exp", *FLAGS, "--follow", "-o", "json"
    )
    assert failed.code == 1 and steps
    assert failed.json["stage"] == "failed"
    assert "mlstudio: error: Run" in failed.err and "ImportError: no sklearn" in failed.err

    missing = cli("run", "submit", "train", "nope.py", "-e", "cli-exp", *FLAGS)
    assert missing.code == 5 and "nope.py" in missing.err
    both = cli(
        "run", "submit", "train", "train.py", "-e", "x", *FLAGS, "--env", "a:1", "--pip", "b"
    )
    assert both.code == 5 and "NAME:VERSION" in both.err


def test_compute_and_environment_commands(logged_in, cli):
    created = cli("compute", "create", "cpu-cluster", "--max-nodes", "4", *FLAGS, "-o", "json")
    assert created.code == 0, created.err
    assert created.json["max_nodes"] == 4
    listed = cli("compute", "list", *FLAGS)
    assert listed.code == 0, listed.err
    rows = [line.split() for line in listed.out.splitlines()]
    assert rows[0] == ["NAME", "MAX", "NODES", "QUEUED", "RUNNING", "WORKERS", "DESCRIPTION"]
    assert [row[:5] for row in rows[1:]] == [
        ["cpu-cluster", "4", "0", "0", "0"],
        ["local", "2", "0", "0", "0"],
    ]
    as_json = cli("compute", "list", *FLAGS, "-o", "json").json
    assert [t["name"] for t in as_json] == ["cpu-cluster", "local"]
    assert cli("compute", "show", "cpu-cluster", *FLAGS, "-o", "json").json["queued"] == 0
    assert cli("compute", "delete", "cpu-cluster", *FLAGS).code == 0
    assert cli("compute", "show", "cpu-cluster", *FLAGS).code == 4

    registered = cli(
        "environment", "register", "team-env", "--pip", "mlflow", "--python", "3.11", *FLAGS,
        "-o", "json",
    )  # fmt: skip
    assert registered.code == 0, registered.err
    assert registered.json["version"] == 1 and registered.json["python_version"] == "3.11"
    envs = cli("environment", "list", *FLAGS)
    assert envs.code == 0, envs.err
    lines = envs.out.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "PYTHON", "PACKAGES", "CURATED"]
    names = {line.split()[0] for line in lines[1:]}
    assert {"team-env", "mlstudio-minimal", "mlstudio-sklearn"} <= names
    curated = next(line for line in lines if line.startswith("mlstudio-sklearn"))
    assert "scikit-learn" in curated and curated.rstrip().endswith("yes")
    shown = cli("environment", "show", "team-env:1", *FLAGS, "-o", "json")
    assert shown.code == 0 and shown.json["pip_packages"] == ["mlflow"]
    table = cli("environment", "show", "mlstudio-minimal", *FLAGS)
    assert table.code == 0 and "spec_hash" in table.out
    assert cli("environment", "show", "team-env:7", *FLAGS).code == 4
    assert cli("environment", "show", "team-env:x", *FLAGS).code == 5
    assert cli("environment", "register", "empty", *FLAGS).code == 5
