"""Environments: what a remote run's Python has installed, versioned per workspace.

A remote run's environment is a ``uv`` virtualenv that the compute worker builds (once
per spec, then cached): a Python version, pip packages and environment variables. The
class keeps the reference SDK's shape (``env.python.conda_dependencies``,
``env.environment_variables``, :meth:`Environment.register`, :meth:`Environment.get`)::

    from mlstudio import Environment
    from mlstudio.conda_dependencies import CondaDependencies

    env = Environment(name="mlflow-env")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["mlflow"])
    env.environment_variables["TOKENIZERS_PARALLELISM"] = "false"
    registered = env.register(ws)          # version 1; the same spec again stays 1

Every workspace also has curated environments, ``mlstudio-minimal`` (mlflow, the studio's
version) and ``mlstudio-sklearn`` (and scikit-learn): ``Environment.get(ws,
"mlstudio-sklearn")``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mlstudio._client.http import segment
from mlstudio._client.parents import WorkspaceParent
from mlstudio.conda_dependencies import CondaDependencies
from mlstudio.exceptions import EnvironmentNotFound, UserErrorException

CURATED_PREFIX = "mlstudio-"
# Environments the studio has in every workspace; the default of a run is the first.
DEFAULT_ENVIRONMENT = "mlstudio-minimal"
_COMMENT = re.compile(r"(^|\s)#.*$")
_HASH_OPTION = re.compile(r"\s+--hash[=\s]\S+")
_INCLUDE = re.compile(r"^(-r|--requirement)(\s+|=)(?P<path>.+)$")


class PythonSection:
    """``env.python``: the environment's Python packages and version.

    Attributes:
        conda_dependencies: The pip packages and Python version (a CondaDependencies).
        user_managed_dependencies: Must stay False: a run's environment is always built from
            what ``conda_dependencies`` lists.
    """

    def __init__(self) -> None:
        self.conda_dependencies = CondaDependencies()
        self.user_managed_dependencies = False


def split_reference(reference: str) -> tuple[str, int | None]:
    """``"name"`` or ``"name:version"`` → (name, version or None).

    Raises:
        UserErrorException: the version is not a whole number.
    """
    name, sep, version = str(reference).partition(":")
    if not sep:
        return name, None
    if not version.isdigit():
        raise UserErrorException(f"An environment is NAME or NAME:VERSION; got {reference!r}.")
    return name, int(version)


def _read_requirements(path: Path, seen: set[Path]) -> list[str]:
    """The requirements of a pip requirements file and of the files it includes (-r)."""
    real = path.resolve()
    if real in seen:
        return []
    seen.add(real)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserErrorException(f"Cannot read the requirements file {str(path)!r}: {exc}") from exc
    text = re.sub(r"\\\r?\n", " ", text)  # continuation lines
    packages: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _HASH_OPTION.sub("", _COMMENT.sub("", raw)).strip()
        if not line:
            continue
        include = _INCLUDE.match(line)
        if include is not None:
            packages += _read_requirements(path.parent / include["path"].strip(), seen)
            continue
        if line.startswith("-") or re.search(r"\s--?[A-Za-z]", line):
            raise UserErrorException(
                f"{path}:{number}: {line!r}: pip options are not supported; list packages "
                "only (they are installed from the package index the studio's workers use)."
            )
        packages.append(line)
    return packages


class Environment:
    """A remote run's environment: Python version, pip packages, environment variables.

    ``Environment(name)`` makes a local definition; :meth:`register` stores it as a new
    version of `name` in a workspace (or answers the existing version when nothing
    changed). A run submitted with an unregistered environment registers it on the way.

    Args:
        name: The environment's name: letters, digits, ``.``, ``_`` and ``-`` (names
            starting with ``mlstudio-`` belong to the curated environments).

    Attributes:
        name: The name.
        version: The registered version (a whole number), or None for a local definition.
        python: ``python.conda_dependencies`` holds the pip packages and Python version.
        environment_variables: Variables the script runs with {name: value}.
        description: A description, stored when registered.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise UserErrorException("An environment needs a name.")
        self.name = name
        self.version: int | None = None
        self.python = PythonSection()
        self.environment_variables: dict[str, str] = {}
        self.description = ""
        self._details: dict[str, Any] = {}
        self._registered_spec: dict[str, Any] | None = None

    # --- Making one -------------------------------------------------------------------------

    @classmethod
    def from_pip_requirements(
        cls, name: str, file_path: str | os.PathLike, pip_version: str | None = None
    ) -> Environment:
        """An environment with the packages of a pip requirements file.

        Comments, continuation lines, ``--hash`` options and included files (``-r
        other.txt``) are understood; other pip options (``--index-url``, ``-e``) are
        refused, since packages come from the index the studio's workers use.

        Args:
            name: The environment's name.
            file_path: The requirements file.
            pip_version: Ignored (environments are built with uv).

        Returns:
            The environment (not registered yet).

        Raises:
            UserErrorException: the file cannot be read or holds pip options.
        """
        env = cls(name)
        packages = _read_requirements(Path(file_path).expanduser(), set())
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=packages)
        return env

    @classmethod
    def _from_details(cls, details: dict[str, Any]) -> Environment:
        env = cls(details["name"])
        env.version = details.get("version")
        env.python.conda_dependencies = CondaDependencies.create(
            pip_packages=details.get("pip_packages") or [],
            python_version=details.get("python_version") or None,
        )
        env.environment_variables = dict(details.get("env_vars") or {})
        env.description = details.get("description") or ""
        env._details = dict(details)
        env._registered_spec = env._spec()
        return env

    # --- What it is -------------------------------------------------------------------------

    @property
    def curated(self) -> bool:
        """Whether it is one of the studio's curated environments."""
        return bool(self._details.get("curated")) or self.name.startswith(CURATED_PREFIX)

    def get_details(self) -> dict[str, Any]:
        """The environment as the studio stored it (name, version, python_version,
        pip_packages, env_vars, description, spec_hash, curated, created_at, created_by), or
        the local definition's spec when it is not registered."""
        return dict(self._details) if self._details else self._spec()

    def _spec(self) -> dict[str, Any]:
        """The spec the API takes (POST environments, or inline in POST jobs)."""
        if self.python.user_managed_dependencies:
            raise UserErrorException(
                "user_managed_dependencies=True is not supported: a run's environment is "
                "built by the worker from python.conda_dependencies."
            )
        deps = self.python.conda_dependencies
        spec: dict[str, Any] = {
            "name": self.name,
            "pip_packages": deps.pip_packages,
            "env_vars": {str(k): str(v) for k, v in self.environment_variables.items()},
            "description": self.description,
        }
        if deps.python_version:
            spec["python_version"] = deps.python_version
        return spec

    def _job_reference(self) -> str | dict[str, Any]:
        """What POST jobs gets as its environment: ``name:version`` for a registered one as
        it was read, the name of a curated one not read yet, else the inline spec (which the
        studio registers, as register() would)."""
        spec = self._spec()
        if self.version is not None and spec == self._registered_spec:
            return f"{self.name}:{self.version}"
        if self.name.startswith(CURATED_PREFIX):
            if self.version is None and not (
                spec["pip_packages"] or spec["env_vars"] or "python_version" in spec
            ):
                return self.name
            raise UserErrorException(
                f"The curated environment {self.name!r} cannot be changed: make an "
                "Environment of your own name with the packages the script needs, e.g. "
                "Environment('my-env') with python.conda_dependencies set."
            )
        return spec

    # --- The workspace's environments ---------------------------------------------------------

    def register(self, workspace: WorkspaceParent) -> Environment:
        """Store this definition in the workspace as a new version of its name, or answer the
        latest version when its spec is the same.

        Returns:
            The registered environment (with its ``version``).

        Raises:
            ValidationError: a bad name, package or variable; a curated name.
        """
        details = workspace._client.post(f"{workspace._path}/environments", self._spec())
        return Environment._from_details(details)

    @staticmethod
    def get(workspace: WorkspaceParent, name: str, version: int | str | None = None) -> Environment:
        """A registered (or curated) environment.

        Args:
            workspace: The workspace.
            name: Its name.
            version: Its version (default: the latest).

        Raises:
            EnvironmentNotFound: no such environment or version.
        """
        path = f"{workspace._path}/environments/{segment(name)}"
        if version is not None:
            path += f"/versions/{segment(version)}"
        return Environment._from_details(workspace._client.get(path, not_found=EnvironmentNotFound))

    @staticmethod
    def list(workspace: WorkspaceParent) -> dict[str, Environment]:
        """The latest version of each environment of the workspace, curated ones included.

        Returns:
            {name: Environment}
        """
        answer = workspace._client.get(f"{workspace._path}/environments")
        return {
            details["name"]: Environment._from_details(details)
            for details in answer["environments"]
        }

    @staticmethod
    def list_versions(workspace: WorkspaceParent, name: str) -> list[Environment]:
        """Every version of an environment, newest first.

        Raises:
            EnvironmentNotFound: no environment of that name.
        """
        answer = workspace._client.get(
            f"{workspace._path}/environments/{segment(name)}/versions",
            not_found=EnvironmentNotFound,
        )
        return [Environment._from_details(details) for details in answer["environments"]]

    def __repr__(self) -> str:
        deps = self.python.conda_dependencies
        return (
            f"Environment(Name: {self.name}, Version: {self.version}, "
            f"Python: {deps.python_version or 'default'}, Packages: {deps.pip_packages})"
        )
