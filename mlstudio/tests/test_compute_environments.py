"""Compute targets and environments through the SDK, against a live server."""

from __future__ import annotations

import pytest

from mlstudio import (
    AmlCompute,
    AuthorizationError,
    ComputeTarget,
    ComputeTargetNotFound,
    ConflictError,
    Environment,
    EnvironmentNotFound,
    Experiment,
    ScriptRunConfig,
    ValidationError,
)
from mlstudio.compute import ComputeStatus, ComputeTargetException
from mlstudio.conda_dependencies import CondaDependencies
from mlstudio.tests.remote_support import no_queue, train_dir


@pytest.fixture
def ws(studio):
    return studio.workspace("contributor")


def test_compute_targets_lifecycle(ws, studio, sdk_env, monkeypatch, capsys):
    with pytest.raises(ComputeTargetException):
        ComputeTarget(workspace=ws, name="cpu-cluster")
    assert list(ws.compute_targets) == ["local"]
    local = ws.compute_targets["local"]
    assert local.is_local and isinstance(local, AmlCompute)

    config = AmlCompute.provisioning_configuration(
        vm_size="STANDARD_D2_V2", max_nodes=4, min_nodes=0, vnet_name="ignored"
    )
    cluster = ComputeTarget.create(ws, "cpu-cluster", config)
    assert isinstance(cluster, AmlCompute) and cluster.name == "cpu-cluster"
    assert cluster.max_nodes == 4 and not cluster.is_local
    cluster.wait_for_completion(show_output=True)
    assert capsys.readouterr().out == "Provisioning state of cpu-cluster: Succeeded\n"
    assert sorted(ws.compute_targets) == ["cpu-cluster", "local"]
    assert ComputeTarget(ws, "CPU-Cluster").name == "cpu-cluster"  # any case finds it
    with pytest.raises(ConflictError):
        ComputeTarget.create(ws, "cpu-cluster", config)
    with pytest.raises(ValidationError):
        ComputeTarget.create(ws, "9lives", config)
    status = cluster.get_status()
    assert isinstance(status, ComputeStatus)
    assert (status.provisioning_state, status.max_nodes, status.queued, status.running) == (
        "Succeeded",
        4,
        0,
        0,
    )
    assert status.serialize()["current_node_count"] == 0

    # A queued run holds the target: it cannot go until the run has ended.
    no_queue(monkeypatch)
    train_dir(sdk_env)
    run = Experiment(ws, "on-cluster").submit(
        ScriptRunConfig("./train", "train.py", compute_target=cluster)
    )
    assert cluster.get_status().queued == 1
    with pytest.raises(ValidationError):
        cluster.delete()
    run.cancel()
    cluster.update(max_nodes=2, description="two at once")
    assert (cluster.max_nodes, cluster.description) == (2, "two at once")
    with pytest.raises(ValidationError):
        cluster.update(max_nodes=0)
    with pytest.raises(AuthorizationError):
        ComputeTarget(studio.workspace("reader"), "cpu-cluster").delete()
    cluster.delete()
    with pytest.raises(ComputeTargetNotFound):
        cluster.refresh_state()
    with pytest.raises(ValidationError):
        local.delete()
    # The ended run keeps the target's name.
    assert run.get_details()["target"] == "cpu-cluster"


def test_environments_register_get_list(ws, studio):
    env = Environment(name="mlflow-env")
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["mlflow", "scikit-learn"], python_version="3.11"
    )
    env.environment_variables = {"MODE": "train"}
    env.description = "training"
    first = env.register(ws)
    assert first.version == 1 and env.version is None
    assert first.python.conda_dependencies.pip_packages == ["mlflow", "scikit-learn"]
    assert first.python.conda_dependencies.python_version == "3.11"
    assert first.environment_variables == {"MODE": "train"}
    assert first.get_details()["created_by"] == "carlos" and not first.curated
    assert env.register(ws).version == 1  # the same spec: the same version
    env.python.conda_dependencies.add_pip_package("pandas")
    assert env.register(ws).version == 2

    assert Environment.get(ws, "mlflow-env").version == 2
    old = Environment.get(ws, "mlflow-env", version=1)
    assert "pandas" not in old.python.conda_dependencies.pip_packages
    assert [e.version for e in Environment.list_versions(ws, "mlflow-env")] == [2, 1]
    listed = Environment.list(ws)
    assert {"mlflow-env", "mlstudio-minimal", "mlstudio-sklearn"} <= set(listed)
    assert listed["mlflow-env"].version == 2 and listed["mlstudio-sklearn"].curated
    assert set(ws.environments) == set(listed)
    sklearn = Environment.get(ws, "mlstudio-sklearn")
    assert any(p.startswith("scikit-learn") for p in sklearn.python.conda_dependencies.pip_packages)
    assert sklearn._job_reference() == f"mlstudio-sklearn:{sklearn.version}"

    with pytest.raises(EnvironmentNotFound):
        Environment.get(ws, "nope")
    with pytest.raises(EnvironmentNotFound):
        Environment.get(ws, "mlflow-env", version=9)
    with pytest.raises(ValidationError, match="reserved"):
        Environment("mlstudio-mine").register(ws)
    bad = Environment("bad-env")
    bad.environment_variables = {"1BAD": "x"}
    with pytest.raises(ValidationError):
        bad.register(ws)
    with pytest.raises(AuthorizationError):
        Environment("reader-env").register(studio.workspace("reader"))
    assert Environment.get(studio.workspace("reader"), "mlflow-env").version == 2
