"""What a remote run is made of, without a server: CondaDependencies mapped onto uv
virtualenvs, environments from requirements files, ScriptRunConfig's job spec, and the
reference service's status names."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstudio import (
    ComputeTarget,
    Environment,
    RunConfiguration,
    ScriptRunConfig,
    UserErrorException,
)
from mlstudio._client.remote import RUN_STATUSES, stage_status
from mlstudio.conda_dependencies import CondaDependencies
from mlstudio.environment import split_reference


def test_conda_dependencies_keep_pip_packages_and_the_python_version():
    deps = CondaDependencies.create(
        pip_packages=["mlflow", "scikit-learn>=1.3"],
        conda_packages=["python=3.11", "pip=24.0"],
    )
    assert deps.pip_packages == ["mlflow", "scikit-learn>=1.3"]
    assert deps.python_version == "3.11" == deps.get_python_version()
    assert deps.conda_packages == ["python=3.11"]
    deps.add_pip_package("Scikit_Learn==1.5")  # the same project: replaces it
    deps.add_pip_package("pandas")
    assert deps.pip_packages == ["mlflow", "Scikit_Learn==1.5", "pandas"]
    deps.remove_pip_package("mlflow>=3")
    assert deps.pip_packages == ["Scikit_Learn==1.5", "pandas"]
    deps.set_python_version("3.12.1")
    assert deps.python_version == "3.12.1"
    deps.add_conda_package("python")  # no version: keeps the one set
    assert deps.python_version == "3.12.1"
    deps.remove_conda_package("python")
    assert deps.python_version is None and deps.conda_packages == []
    assert CondaDependencies.create(python_version="3.10").python_version == "3.10"
    assert CondaDependencies.create(conda_packages=["python==3.9.*"]).python_version == "3.9"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: CondaDependencies.create(conda_packages=["numpy"]), "pip_packages=\\['numpy'\\]"),
        (lambda: CondaDependencies.create(conda_packages=["cudatoolkit=11.8"]), "uv virtualenvs"),
        (lambda: CondaDependencies.create(python_version="2.7"), "Not a Python version"),
        (lambda: CondaDependencies.create(conda_packages=["python=banana"]), "python=3.11"),
        (lambda: CondaDependencies.create(pip_packages=["--index-url=x"]), "pip options"),
        (lambda: CondaDependencies.create(pip_indexurl="https://x"), "pip_indexurl"),
        (lambda: CondaDependencies("environment.yml"), "not conda environments"),
    ],
)
def test_what_a_uv_virtualenv_cannot_have_is_refused_clearly(call, match):
    with pytest.raises(UserErrorException, match=match):
        call()


def test_environment_spec_and_what_a_job_gets():
    env = Environment(name="mlflow-env")
    assert env.version is None and env._job_reference() == {
        "name": "mlflow-env",
        "pip_packages": [],
        "env_vars": {},
        "description": "",
    }
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["mlflow", "scikit-learn"], python_version="3.11"
    )
    env.environment_variables["MODE"] = 1  # type: ignore[assignment]  # sent as a string
    assert env._job_reference() == {
        "name": "mlflow-env",
        "pip_packages": ["mlflow", "scikit-learn"],
        "env_vars": {"MODE": "1"},
        "description": "",
        "python_version": "3.11",
    }
    # As read from the studio: name:version, until it is changed.
    stored = Environment._from_details(
        {"name": "team", "version": 3, "pip_packages": ["mlflow"], "env_vars": {}}
    )
    assert stored._job_reference() == "team:3"
    stored.python.conda_dependencies.add_pip_package("pandas")
    assert stored._job_reference()["pip_packages"] == ["mlflow", "pandas"]
    # Curated ones go by name; changing one is refused before anything is sent.
    assert Environment("mlstudio-sklearn")._job_reference() == "mlstudio-sklearn"
    curated = Environment("mlstudio-sklearn")
    curated.python.conda_dependencies.add_pip_package("torch")
    with pytest.raises(UserErrorException, match="curated environment"):
        curated._job_reference()
    env.python.user_managed_dependencies = True
    with pytest.raises(UserErrorException, match="user_managed_dependencies"):
        env._job_reference()
    assert split_reference("team:3") == ("team", 3) and split_reference("team") == ("team", None)
    with pytest.raises(UserErrorException):
        split_reference("team:latest")


def test_environment_from_pip_requirements(tmp_path):
    (tmp_path / "base.txt").write_text("numpy>=1.26  # pinned below 2 elsewhere\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# training\n"
        "-r base.txt\n"
        "mlflow==3.1 \\\n"
        "    --hash=sha256:abc --hash=sha256:def\n"
        "\n"
        'scikit-learn; python_version >= "3.9"\n'
    )
    env = Environment.from_pip_requirements("req-env", requirements)
    assert env.python.conda_dependencies.pip_packages == [
        "numpy>=1.26",
        "mlflow==3.1",
        'scikit-learn; python_version >= "3.9"',
    ]
    requirements.write_text("mlflow\n--index-url https://example.invalid/simple\n")
    with pytest.raises(UserErrorException, match=r"requirements.txt:2: .*pip options"):
        Environment.from_pip_requirements("req-env", requirements)
    requirements.write_text("-e .\n")
    with pytest.raises(UserErrorException, match="pip options"):
        Environment.from_pip_requirements("req-env", requirements)
    with pytest.raises(UserErrorException, match="Cannot read"):
        Environment.from_pip_requirements("req-env", tmp_path / "missing.txt")


def test_script_run_config_job_spec(tmp_path):
    src = ScriptRunConfig(
        source_directory=str(tmp_path), script="train.py", arguments=["--alpha", 0.5, 3, Path("x")]
    )
    assert (
        src.run_config.target == "local" and src.run_config.environment.name == "mlstudio-minimal"
    )
    src.run_config.target = "cpu-cluster"
    src.run_config.max_run_duration_seconds = 600
    assert src._job_spec({"train.py"}) == {
        "script": "train.py",
        "arguments": ["--alpha", "0.5", "3", "x"],
        "compute": "cpu-cluster",
        "environment": "mlstudio-minimal",
        "max_run_duration_seconds": 600,
    }
    # A ComputeTarget object stands for its name; keyword arguments set the run config.
    target = ComputeTarget.__new__(ComputeTarget)
    target._name = "gpu"
    env = Environment("mine")
    config = RunConfiguration(script="sub/train.py")
    other = ScriptRunConfig(
        str(tmp_path),
        run_config=config,
        compute_target=target,
        environment=env,
        max_run_duration_seconds=60,
    )
    spec = other._job_spec({"sub/train.py"})
    assert spec["compute"] == "gpu" and spec["environment"]["name"] == "mine"
    assert spec["script"] == "sub/train.py" and spec["max_run_duration_seconds"] == 60
    # An absolute path inside the source directory is made relative.
    other.script = str(tmp_path / "sub" / "train.py")
    assert other._job_spec({"sub/train.py"})["script"] == "sub/train.py"
    for script, match in [
        (None, "needs script="),
        ("../train.py", "inside the source directory"),
        ("/etc/passwd", "not inside the source directory"),
        ("missing.py", "or an .amlignore/.gitignore file leaves it out"),
    ]:
        other.script = script
        with pytest.raises(UserErrorException, match=match):
            other._job_spec({"sub/train.py"})
    other.script = "sub/train.py"
    other.run_config.target = 5  # type: ignore[assignment]
    with pytest.raises(UserErrorException, match="compute target's name"):
        other._job_spec({"sub/train.py"})


def test_status_names_follow_the_stages():
    stages = ["queued", "preparing", "running", "finalizing", "completed", "failed", "canceled"]
    assert [stage_status(s) for s in stages] == list(RUN_STATUSES[1:])
    assert stage_status(None) == "NotStarted" == RUN_STATUSES[0]
