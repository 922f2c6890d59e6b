"""Remote runs through the SDK against a live server: the reference workflow with only the
import changed, output followed as it comes, failures, cancel. No worker runs: the test
plays it through the worker-side services between the SDK's polls (remote_support)."""

from __future__ import annotations

import io
import json

import pytest

from mlstudio import (
    ActivityFailedException,
    AuthorizationError,
    Environment,
    Experiment,
    NotFoundError,
    Run,
    RunFailedError,
    ScriptRunConfig,
    UserErrorException,
)
from mlstudio.tests.remote_support import FakeWorker, drive, no_queue, train_dir


@pytest.fixture
def project(studio, sdk_env, monkeypatch):
    """A folder with config.json and ./train, the contributor's token in MLSTUDIO_TOKEN, and
    submitted jobs kept off the broker."""
    (sdk_env / "config.json").write_text(
        json.dumps(
            {
                "subscription_id": studio.subscription_id,
                "resource_group": "rg-main",
                "workspace_name": "ws-main",
                "server_url": studio.url,
            }
        )
    )
    train_dir(sdk_env)
    monkeypatch.setenv("MLSTUDIO_TOKEN", studio.tokens["contributor"])
    no_queue(monkeypatch)
    return sdk_env


def test_the_reference_workflow_streams_the_output_and_ends_completed(
    project, studio, monkeypatch, capsys
):
    import mlflow

    from deployments.models import RemoteJob
    from deployments.services.snapshots import snapshot_files

    # --- The reference workflow, only the import changed (the target made as it would be).
    from mlstudio import Workspace
    from mlstudio.compute import AmlCompute, ComputeTarget, ComputeTargetException

    ws = Workspace.from_config()
    try:
        ComputeTarget(workspace=ws, name="cpu-cluster")
    except ComputeTargetException:
        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
        ComputeTarget.create(ws, "cpu-cluster", config).wait_for_completion(show_output=True)
    from mlstudio.conda_dependencies import CondaDependencies

    exp = Experiment(workspace=ws, name="my_experiment")
    env = Environment(name="mlflow-env")
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["mlflow", "scikit-learn"]
    )
    src = ScriptRunConfig(source_directory="./train", script="train.py", arguments=["--alpha", 0.5])
    src.run_config.target = "cpu-cluster"
    src.run_config.environment = env
    run = exp.submit(src)
    assert run.get_status() == "Queued" and run.is_remote

    # The studio has the job as the SDK described it, and the snapshot without data/.
    job = RemoteJob.objects.select_related("environment").get(run__run_uuid=run.id)
    assert (job.compute_name, job.script, job.arguments) == (
        "cpu-cluster",
        "train.py",
        ["--alpha", "0.5"],
    )
    assert (job.environment.name, job.environment.version) == ("mlflow-env", 1)
    assert job.environment.pip_packages == ["mlflow", "scikit-learn"]
    assert job.max_run_duration_seconds == 86400  # the studio's default
    files = snapshot_files(workspace=studio.cast.workspace, snapshot_hash=job.snapshot_hash)
    assert [f["path"] for f in files] == [".amlignore", "train.py", "utils.py"]
    assert exp.id == str(job.run.experiment_id)  # the studio made the experiment

    worker = FakeWorker(run.id)
    tracking = mlflow.MlflowClient(ws.get_mlflow_tracking_uri())
    capsys.readouterr()
    seen: list[str] = []  # stdout at each point a step looks at it
    pauses = drive(
        monkeypatch,
        [
            worker.claim,
            lambda: worker.report("running"),
            lambda: worker.log("epoch 1 loss=0.9\n"),
            lambda: seen.append(capsys.readouterr().out),  # printed before epoch 2 exists
            lambda: worker.log("epoch 2 loss=0.4\ntrained with alpha 0.5\n"),
            lambda: tracking.log_metric(run.id, "alpha", 0.5),
            lambda: worker.report("finalizing"),
            lambda: worker.report("completed", exit_code=0, sandboxed=True),
        ],
    )
    final = run.wait_for_completion(show_output=True)
    seen.append(capsys.readouterr().out)
    assert "epoch 1 loss=0.9\n" in seen[0] and "epoch 2" not in seen[0]
    output = "".join(seen)
    assert output.index("epoch 1") < output.index("epoch 2") < output.index("Execution Summary")
    assert f"RunId: {run.id}" in output and "Status: Completed" in output
    assert "trained with alpha 0.5\n" in output
    assert pauses.count("idle") <= 2  # it noticed the end at once
    assert final["stage"] == "completed" and final["exit_code"] == 0
    assert final["url"].startswith(studio.url)

    print(run.get_status(), run.get_metrics())
    assert capsys.readouterr().out == "Completed {'alpha': 0.5}\n"
    details = run.get_details()
    assert details["status"] == "Completed" and details["target"] == "cpu-cluster"
    assert details["runDefinition"]["arguments"] == ["--alpha", "0.5"]
    assert details["runDefinition"]["environment"] == {"name": "mlflow-env", "version": 1}
    assert "error" not in details
    assert "logs/std_log.txt" in run.get_file_names()
    # Run.get finds it as a remote run too; the same tree is not uploaded twice.
    again = Run.get(ws, run.id)
    assert again.is_remote and again.get_status() == "Completed"
    from portal.models import AuditEntry

    second = exp.submit(src)
    assert AuditEntry.objects.filter(action="snapshot_upload").count() == 1
    assert RemoteJob.objects.get(run__run_uuid=second.id).snapshot_hash == job.snapshot_hash


def test_a_failed_run_raises_with_the_error_tail(project, studio, monkeypatch, capsys):
    from mlstudio import Workspace

    ws = Workspace.from_config()
    src = ScriptRunConfig("./train", "train.py", arguments=["--alpha", "x"])
    src.run_config.environment = Environment.get(ws, "mlstudio-sklearn")
    run = Experiment(ws, "failing").submit(src, tags={"team": "nlp"}, run_name="bad-alpha")
    assert run.name == "bad-alpha" and run.get_tags()["team"] == "nlp"
    assert run.get_job()["environment"]["name"] == "mlstudio-sklearn"
    assert run.get_details()["target"] == "local"
    worker = FakeWorker(run.id)
    drive(
        monkeypatch,
        [
            worker.claim,
            lambda: worker.report("running"),
            lambda: worker.log("Traceback (most recent call last):\nValueError: bad alpha\n"),
            lambda: worker.report("failed", exit_code=2, error="ValueError: bad alpha"),
        ],
    )
    with pytest.raises(RunFailedError) as caught:
        run.wait_for_completion()  # without output: polls the job only
    assert isinstance(caught.value, ActivityFailedException)
    assert "exit code 2" in str(caught.value) and "ValueError: bad alpha" in str(caught.value)
    assert caught.value.job["stage"] == "failed"
    assert capsys.readouterr().out == ""
    assert run.get_status() == "Failed"
    error = run.get_details()["error"]["error"]["message"]
    assert "bad alpha" in error
    # raise_on_error=False answers the final job instead.
    assert run.wait_for_completion(raise_on_error=False)["exit_code"] == 2
    written = io.StringIO()
    run.stream_logs(written, follow=False)
    assert written.getvalue().endswith("ValueError: bad alpha\n")


def test_cancel_a_queued_and_a_running_run(project, studio, monkeypatch):
    from mlstudio import Workspace

    ws = Workspace.from_config()
    exp = Experiment(ws, "cancels")
    src = ScriptRunConfig("./train", "train.py")
    queued = exp.submit(src)
    queued.cancel()
    assert queued.status == "Canceled" == queued.get_status()
    assert queued.wait_for_completion()["stage"] == "canceled"  # canceled is no error

    running = exp.submit(src)
    worker = FakeWorker(running.id)
    worker.claim()
    worker.report("running")
    running.cancel()
    job = running.get_job()
    assert job["cancel_requested"] and running.get_status() == "Running"
    drive(monkeypatch, [lambda: worker.report("failed", exit_code=-9, error="Killed")])
    assert running.wait_for_completion()["stage"] == "canceled"
    assert running.get_status() == "Canceled"

    # A reader may look but not cancel.
    from mlstudio import TokenAuthentication

    reader_ws = Workspace.from_config(auth=TokenAuthentication(studio.tokens["reader"]))
    other = exp.submit(src)
    with pytest.raises(AuthorizationError):
        Run.get(reader_ws, other.id).cancel()
    assert Run.get(reader_ws, other.id).get_status() == "Queued"


def test_submit_refuses_what_cannot_run(project, studio):
    from mlstudio import Workspace

    ws = Workspace.from_config()
    exp = Experiment(ws, "refused")
    with pytest.raises(UserErrorException, match="leaves it out"):
        exp.submit(ScriptRunConfig("./train", "data/big.csv"))
    with pytest.raises(UserErrorException, match="takes a ScriptRunConfig"):
        exp.submit("train.py")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="compute target"):
        exp.submit(ScriptRunConfig("./train", "train.py", compute_target="gpu-cluster"))
    src = ScriptRunConfig("./train", "train.py")
    src.run_config.environment = Environment("mlstudio-sklearn")
    src.run_config.environment.python.conda_dependencies.add_pip_package("torch")
    with pytest.raises(UserErrorException, match="curated environment"):
        exp.submit(src)
    from deployments.models import RemoteJob

    assert not RemoteJob.objects.exists()
    assert exp.id is None  # nothing was made
