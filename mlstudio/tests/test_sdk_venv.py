"""The reference workflow, run by a script in a separate virtualenv that has only the SDK,
mlflow and scikit-learn installed, against a live server.

The virtualenv is built once per version of the SDK's sources (and of mlflow and
scikit-learn) under var/sdk-venv-<hash>, so later test sessions reuse it.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, require

SDK = ROOT / "mlstudio"
PINNED = ("mlflow", "scikit-learn")

SCRIPT = r"""
import importlib.metadata
import json
import sys

# mlflow loads the SDK's auth provider from its installed entry point, before any SDK import.
from mlflow.tracking.request_auth.registry import _request_auth_provider_registry

group = importlib.metadata.entry_points(group="mlflow.request_auth_provider")
entry_points = {e.name for e in group}
from_entry_point = any(p.get_name() == "mlstudio" for p in _request_auth_provider_registry)
try:
    import django  # noqa: F401
except ImportError:
    has_django = False
else:
    has_django = True

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import LinearRegression

import mlstudio
from mlstudio import Workspace

X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0], [4.0, 3.0]])
y = X @ np.array([0.5, -1.0]) + 2.0
model = LinearRegression().fit(X, y)

# The reference workflow, only the import changed.
ws = Workspace.from_config()
mlflow.set_tracking_uri(ws.get_mlflow_tracking_uri())
mlflow.set_experiment("experiment_with_mlflow")
with mlflow.start_run():
    mlflow.log_metric("alpha", 0.03)
    mlflow.sklearn.log_model(model, name="model")

exp = ws.experiments["experiment_with_mlflow"]
run = list(exp.get_runs())[0]
loaded = mlflow.pyfunc.load_model(f"runs:/{run.id}/model")

result = {
    "metrics": run.get_metrics(),
    "details": run.get_details(),
    "ws": ws.get_details(),
    "run_id": run.id,
    "prediction": loaded.predict(X).tolist(),
    "expected": model.predict(X).tolist(),
    "entry_points": sorted(entry_points),
    "from_entry_point": from_entry_point,
    "has_django": has_django,
    "mlstudio_file": mlstudio.__file__,
    "sys_path": sys.path,
}
with open(sys.argv[1], "w") as handle:
    json.dump(result, handle)
"""


def _sources() -> list[Path]:
    """What the SDK is built from: its pyproject.toml and the modules of the packages that
    lists (``mlstudio`` is this folder; the tests are no package of it)."""
    with (SDK / "pyproject.toml").open("rb") as handle:
        packages = tomllib.load(handle)["tool"]["setuptools"]["packages"]
    folders = [SDK.joinpath(*name.split(".")[1:]) for name in packages]
    return [SDK / "pyproject.toml", *sorted(p for folder in folders for p in folder.glob("*.py"))]


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in _sources():
        name = path.relative_to(SDK).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name in PINNED:
        digest.update(f"{name}=={importlib.metadata.version(name)}\n".encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def _build(venv: Path, log: Path) -> None:
    """python -m venv, then pip install the SDK (from a copy of its sources, so the build
    leaves nothing in the source tree) with the server's mlflow and scikit-learn versions."""
    source = venv.parent / f"{venv.name}-src" / "mlstudio"
    shutil.rmtree(source.parent, ignore_errors=True)
    for path in _sources():
        target = source / path.relative_to(SDK)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in PINNED]
    with log.open("w") as out:
        for command in (
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", str(source), *pins],
        ):
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            done = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=900
            )
            if done.returncode != 0:
                raise RuntimeError(f"{command[:4]} failed; see {log}")
    shutil.rmtree(source.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def sdk_venv() -> Iterator[Path]:
    """A virtualenv with only the SDK, mlflow and scikit-learn (built once per source hash)."""
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    venv = var / f"sdk-venv-{_fingerprint()}"
    with (var / "sdk-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be building it
        if (venv / ".complete").exists():
            print(f"\nSDK virtualenv reused: {venv}")
        else:
            shutil.rmtree(venv, ignore_errors=True)
            started = time.monotonic()
            log = var / f"{venv.name}.log"
            try:
                _build(venv, log)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
                tail = log.read_text()[-3000:] if log.exists() else ""
                require(False, f"could not build the SDK virtualenv: {exc}\n{tail}")
            (venv / ".complete").write_text(f"{time.monotonic() - started:.1f}s\n")
            print(f"\nSDK virtualenv built in {time.monotonic() - started:.0f}s: {venv}")
            for stale in var.glob("sdk-venv-*"):  # earlier sources' virtualenvs and logs
                if stale.name.startswith(venv.name):
                    continue
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)
    yield venv


def _project(sdk_venv: Path, studio, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working folder with config.json as the workspace page offers it, and a clean
    environment with a contributor's personal token in MLSTUDIO_TOKEN."""
    from portal import services

    _, token = services.token_create(user=studio.cast.contributor, name="venv-script")
    work = tmp_path / "project"
    work.mkdir()
    (work / "config.json").write_text(
        json.dumps(
            {
                "subscription_id": studio.subscription_id,
                "resource_group": "rg-main",
                "workspace_name": "ws-main",
                "server_url": studio.url,
            }
        )
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{sdk_venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "MLSTUDIO_TOKEN": token,
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
    }
    return work, env


def test_reference_workflow_in_a_separate_virtualenv(sdk_venv, studio, tmp_path):
    work, env = _project(sdk_venv, studio, tmp_path)
    (work / "workflow.py").write_text(SCRIPT)
    result_file = tmp_path / "result.json"
    started = time.monotonic()
    done = subprocess.run(
        [str(sdk_venv / "bin" / "python"), "workflow.py", str(result_file)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(f"workflow script ran in {time.monotonic() - started:.1f}s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    result = json.loads(result_file.read_text())

    # Only the virtualenv: the installed SDK, no Django, nothing from the server's tree.
    assert not result["has_django"]
    assert result["mlstudio_file"].startswith(str(sdk_venv))
    assert not any(str(ROOT / ".venv") in p or p == str(ROOT) for p in result["sys_path"])
    assert result["entry_points"] == ["mlstudio"] and result["from_entry_point"]

    assert result["metrics"] == {"alpha": 0.03}
    details = result["details"]
    assert details["runId"] == result["run_id"] and details["status"] == "Completed"
    assert details["submittedBy"] == "carlos" and details["target"] == "local"
    assert details["startTimeUtc"].endswith("Z") and details["endTimeUtc"].endswith("Z")
    ws = result["ws"]
    assert ws["name"] == "ws-main" and ws["resourceGroup"] == "rg-main"
    assert ws["subscriptionId"] == studio.subscription_id
    assert ws["mlflowTrackingUri"].startswith(studio.url + "/mlflow/v1.0/")
    assert result["prediction"] == pytest.approx(result["expected"])

    # What the script logged is on the server.
    from tracking.models import LoggedModel, Run

    run = Run.objects.get(run_uuid=result["run_id"])
    assert run.experiment.name == "experiment_with_mlflow"
    assert run.experiment.workspace_id == studio.cast.workspace.id
    assert LoggedModel.objects.filter(experiment=run.experiment).exists()

    # The installed console script, in the same folder (config.json) and environment.
    def mlstudio(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(sdk_venv / "bin" / "mlstudio"), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = mlstudio("run", "list", "-e", "experiment_with_mlflow", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [result["run_id"]]
    missing = mlstudio("run", "show", "0" * 32)
    assert missing.returncode == 4 and missing.stderr.startswith("mlstudio: error:")
    assert mlstudio("--version").stdout.startswith("mlstudio ")


REMOTE_SCRIPT = r"""
from mlstudio import Workspace, Experiment, Environment, ScriptRunConfig
from mlstudio.conda_dependencies import CondaDependencies
ws = Workspace.from_config()
exp = Experiment(workspace=ws, name="my_experiment")
env = Environment(name="mlflow-env")
env.python.conda_dependencies = CondaDependencies.create(pip_packages=["mlflow", "scikit-learn"])
src = ScriptRunConfig(source_directory="./train", script="train.py", arguments=["--alpha", 0.5])
src.run_config.target = "cpu-cluster"
src.run_config.environment = env
run = exp.submit(src)
run.wait_for_completion(show_output=True)   # streams the script's output as it comes
print(run.get_status(), run.get_metrics())
"""


def test_reference_remote_run_workflow_in_a_separate_virtualenv(
    sdk_venv, studio, tmp_path, monkeypatch
):
    """The reference remote-run workflow, only the import changed, in the SDK-only
    virtualenv; the test plays the compute worker and checks the script's process prints
    each piece of output before the next one exists."""
    import queue
    import threading

    import mlflow

    from deployments.models import RemoteJob
    from deployments.services.compute import compute_target_create
    from mlstudio.tests.remote_support import FakeWorker, no_queue, train_dir

    work, env = _project(sdk_venv, studio, tmp_path)
    (work / "workflow.py").write_text(REMOTE_SCRIPT)
    train_dir(work)
    no_queue(monkeypatch)
    compute_target_create(
        actor=studio.cast.owner, workspace=studio.cast.workspace, name="cpu-cluster"
    )
    script = subprocess.Popen(
        [str(sdk_venv / "bin" / "python"), "workflow.py"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in script.stdout], daemon=True
    ).start()
    printed: list[str] = []

    def wait_for(text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in printed):
            try:
                printed.append(lines.get(timeout=max(deadline - time.monotonic(), 0.01)))
            except queue.Empty:
                script.kill()
                pytest.fail(f"the script did not print {text!r}:\n{''.join(printed)}")

    try:
        deadline = time.monotonic() + 120
        while not RemoteJob.objects.exists():
            assert script.poll() is None, "the script ended before it submitted"
            assert time.monotonic() < deadline, "no job was submitted"
            time.sleep(0.2)
        run_id = RemoteJob.objects.get().run.run_uuid
        wait_for("Streaming logs/std_log.txt")
        worker = FakeWorker(run_id)
        worker.claim()
        worker.report("running")
        worker.log("epoch 1 loss=0.9\n")
        wait_for("epoch 1 loss=0.9")
        assert not any("epoch 2" in line for line in printed)
        worker.log("epoch 2 loss=0.4\n")
        wait_for("epoch 2 loss=0.4")
        client = mlflow.MlflowClient(studio.workspace("contributor").get_mlflow_tracking_uri())
        client.log_metric(run_id, "alpha", 0.5)
        worker.report("finalizing")
        worker.report("completed", exit_code=0)
        wait_for("Completed {'alpha': 0.5}")
        assert script.wait(timeout=60) == 0, "".join(printed)
    finally:
        if script.poll() is None:
            script.kill()
    output = "".join(printed)
    assert output.index("epoch 1") < output.index("epoch 2") < output.index("Execution Summary")
    job = RemoteJob.objects.select_related("environment").get()
    assert (job.compute_name, job.arguments) == ("cpu-cluster", ["--alpha", "0.5"])
    assert job.environment.name == "mlflow-env"
