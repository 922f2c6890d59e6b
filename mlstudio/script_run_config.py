"""ScriptRunConfig and RunConfiguration: what ``Experiment.submit`` runs, where and with what.

::

    from mlstudio import Environment, ScriptRunConfig

    src = ScriptRunConfig(source_directory="./train", script="train.py",
                          arguments=["--alpha", 0.5])
    src.run_config.target = "cpu-cluster"            # a name or a ComputeTarget
    src.run_config.environment = Environment.get(ws, "mlstudio-sklearn")
    run = Experiment(ws, "my_experiment").submit(src)

The source directory is zipped (honouring ``.amlignore``, else ``.gitignore``; see
mlstudio._client.snapshot) and uploaded once per content; the script runs in it, as the
working directory, with the arguments given (each converted with ``str()``).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from mlstudio.compute import LOCAL, ComputeTarget
from mlstudio.environment import DEFAULT_ENVIRONMENT, Environment
from mlstudio.exceptions import UserErrorException


class RunConfiguration:
    """Where and how a script runs (``src.run_config``).

    Args:
        script: The script, relative to the source directory.
        arguments: Its command-line arguments.

    Attributes:
        target: The compute target: its name or a ComputeTarget (default ``"local"``, the
            studio's own worker).
        environment: The Environment (default: the curated ``mlstudio-minimal``, which has
            mlflow; set one with the packages the script needs).
        max_run_duration_seconds: Stop the run after this long (default: the studio's, a
            day; at most 7 days).
    """

    def __init__(self, script: str | None = None, arguments: list[Any] | None = None) -> None:
        self.script = script
        self.arguments: list[Any] = list(arguments or [])
        self.target: str | ComputeTarget = LOCAL
        self.environment: Environment = Environment(DEFAULT_ENVIRONMENT)
        self.max_run_duration_seconds: int | None = None

    def _target_name(self) -> str:
        target = self.target
        if isinstance(target, ComputeTarget):
            return target.name
        if not isinstance(target, str) or not target:
            raise UserErrorException(
                f"run_config.target must be a compute target's name or a ComputeTarget; "
                f"got {target!r}."
            )
        return target

    def __repr__(self) -> str:
        return (
            f"RunConfiguration(script={self.script!r}, target={self._target_name()!r}, "
            f"environment={self.environment.name!r})"
        )


class ScriptRunConfig:
    """A script of a source directory to run remotely (the reference SDK's class).

    Args:
        source_directory: The folder sent with the run (default: the current one).
        script: The file to run, relative to source_directory.
        arguments: Its command-line arguments; each is converted with ``str()``.
        run_config: A RunConfiguration to start from (default: a new one).
        compute_target: Sets ``run_config.target`` (a name or a ComputeTarget).
        environment: Sets ``run_config.environment``.
        max_run_duration_seconds: Sets ``run_config.max_run_duration_seconds``.
    """

    def __init__(
        self,
        source_directory: str | os.PathLike | None = None,
        script: str | None = None,
        arguments: list[Any] | None = None,
        run_config: RunConfiguration | None = None,
        *,
        compute_target: str | ComputeTarget | None = None,
        environment: Environment | None = None,
        max_run_duration_seconds: int | None = None,
    ) -> None:
        self.source_directory = str(source_directory) if source_directory is not None else "."
        self.run_config = run_config if run_config is not None else RunConfiguration()
        if script is not None:
            self.run_config.script = script
        if arguments is not None:
            self.run_config.arguments = list(arguments)
        if compute_target is not None:
            self.run_config.target = compute_target
        if environment is not None:
            self.run_config.environment = environment
        if max_run_duration_seconds is not None:
            self.run_config.max_run_duration_seconds = max_run_duration_seconds

    @property
    def script(self) -> str | None:
        return self.run_config.script

    @script.setter
    def script(self, value: str | None) -> None:
        self.run_config.script = value

    @property
    def arguments(self) -> list[Any]:
        return self.run_config.arguments

    @arguments.setter
    def arguments(self, value: list[Any]) -> None:
        self.run_config.arguments = list(value)

    def _script_path(self, files: set[str]) -> str:
        """The script as a path inside the snapshot whose files are `files`.

        Raises:
            UserErrorException: no script, a path outside the source directory, or one the
                snapshot does not hold (missing, or left out by an ignore file).
        """
        script = self.run_config.script
        if not script:
            raise UserErrorException(
                "ScriptRunConfig needs script=, the file to run (relative to source_directory)."
            )
        path = Path(script).expanduser()
        if path.is_absolute():
            root = Path(self.source_directory).expanduser().resolve()
            try:
                path = path.resolve().relative_to(root)
            except ValueError:
                raise UserErrorException(
                    f"The script {script!r} is not inside the source directory {str(root)!r}."
                ) from None
        relative = PurePosixPath(path.as_posix())
        if ".." in relative.parts:
            raise UserErrorException(
                f"The script {script!r} must be inside the source directory "
                f"{self.source_directory!r}."
            )
        name = str(relative)
        if name not in files:
            raise UserErrorException(
                f"The script {name!r} is not in the source directory {self.source_directory!r}, "
                "or an .amlignore/.gitignore file leaves it out."
            )
        return name

    def _job_spec(self, files: set[str]) -> dict[str, Any]:
        """What POST jobs takes from this config (the caller adds the experiment, the
        snapshot and tags)."""
        config = self.run_config
        environment = config.environment
        if not isinstance(environment, Environment):
            raise UserErrorException(
                f"run_config.environment must be an Environment; got {environment!r}."
            )
        spec: dict[str, Any] = {
            "script": self._script_path(files),
            "arguments": [str(arg) for arg in config.arguments],
            "compute": config._target_name(),
            "environment": environment._job_reference(),
        }
        if config.max_run_duration_seconds is not None:
            spec["max_run_duration_seconds"] = int(config.max_run_duration_seconds)
        return spec

    def __repr__(self) -> str:
        return (
            f"ScriptRunConfig(source_directory={self.source_directory!r}, "
            f"script={self.script!r}, arguments={self.arguments!r})"
        )
