"""CondaDependencies: the reference SDK's way to say what a run's environment installs.

ML Studio builds a run's environment as a ``uv`` virtualenv from PyPI, not with conda. So
the class keeps the reference API but holds only what such an environment has: pip
packages and a Python version. Of conda packages it accepts ``python=X.Y`` (which sets the
Python version) and ``pip`` (always there); any other conda package is refused with an
error that says to list it as a pip package instead::

    from mlstudio.conda_dependencies import CondaDependencies

    deps = CondaDependencies.create(
        pip_packages=["mlflow", "scikit-learn"], conda_packages=["python=3.11"]
    )
    deps.add_pip_package("pandas>=2")
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mlstudio.exceptions import UserErrorException

_PYTHON_SPEC = re.compile(r"^python\s*(?:==?\s*(?P<version>3(?:\.\d+){0,2})(?:\.\*)?)?$", re.I)
_PIP_SPEC = re.compile(r"^pip(?:\s*[=<>!~].*)?$", re.I)
_PYTHON_VERSION = re.compile(r"^3(\.\d{1,3}){0,2}$")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _package_name(requirement: str) -> str:
    """The normalised project name a requirement starts with (PEP 503), '' when none."""
    match = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def check_python_version(version: str | None) -> str | None:
    """A Python version as environments take it ('3', '3.11' or '3.11.4'), or None.

    Raises:
        UserErrorException: it is not one.
    """
    if version is None:
        return None
    text = str(version).strip()
    if not _PYTHON_VERSION.match(text):
        raise UserErrorException(f"Not a Python version: {version!r} (for example '3.11').")
    return text


def _check_pip_package(requirement: str) -> str:
    if not isinstance(requirement, str) or not requirement.strip():
        raise UserErrorException(f"A pip package is a requirement string; got {requirement!r}.")
    text = requirement.strip()
    if text.startswith("-"):
        raise UserErrorException(
            f"pip options such as {text.split()[0]!r} are not supported: list packages only "
            "(they are installed from the studio's package index)."
        )
    return text


class CondaDependencies:
    """The packages and Python version of an environment (the reference SDK's class).

    Args:
        conda_dependencies_file_path: Not supported (conda files describe conda
            environments); must be None.

    Raises:
        UserErrorException: a file path was given.
    """

    def __init__(self, conda_dependencies_file_path: str | None = None) -> None:
        if conda_dependencies_file_path is not None:
            raise UserErrorException(
                "Environments are uv virtualenvs, not conda environments: use "
                "Environment.from_pip_requirements(name, 'requirements.txt') or "
                "CondaDependencies.create(pip_packages=[...])."
            )
        self._pip_packages: list[str] = []
        self._python_version: str | None = None

    @classmethod
    def create(
        cls,
        pip_indexurl: str | None = None,
        pip_packages: Iterable[str] | None = None,
        conda_packages: Iterable[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,
    ) -> CondaDependencies:
        """Dependencies with these packages (the reference SDK's signature).

        Args:
            pip_indexurl: Not supported (packages come from the studio's index); must be None.
            pip_packages: Requirements such as ``"scikit-learn>=1.3"``.
            conda_packages: Only ``"python=X.Y"`` (sets the Python version) and ``"pip"``;
                anything else raises.
            python_version: The Python version, e.g. ``"3.11"`` (default: the worker's).
            pin_sdk_version: Ignored: the reference SDK adds its own package; runs here need
                none (add ``mlflow`` to log to the run).

        Returns:
            The dependencies.

        Raises:
            UserErrorException: a conda package other than python or pip, a pip option, an
                index URL, or a bad Python version.
        """
        if pip_indexurl is not None:
            raise UserErrorException(
                "pip_indexurl is not supported: packages are installed from the package "
                "index the studio's workers use."
            )
        deps = cls()
        for package in conda_packages or ():
            deps.add_conda_package(package)
        if python_version is not None:
            deps.set_python_version(python_version)
        for package in pip_packages or ():
            deps.add_pip_package(package)
        return deps

    # --- pip packages -----------------------------------------------------------------------

    @property
    def pip_packages(self) -> list[str]:
        """The pip requirements, in the order they were added."""
        return list(self._pip_packages)

    def add_pip_package(self, pip_package: str) -> None:
        """Add a pip requirement; one for a package already listed replaces it.

        Raises:
            UserErrorException: it is empty or a pip option.
        """
        text = _check_pip_package(pip_package)
        name = _package_name(text)
        self._pip_packages = [p for p in self._pip_packages if _package_name(p) != name or not name]
        self._pip_packages.append(text)

    def remove_pip_package(self, pip_package: str) -> None:
        """Remove the requirement of this package (by name; its version spec is ignored)."""
        name = _package_name(pip_package)
        self._pip_packages = [p for p in self._pip_packages if _package_name(p) != name]

    # --- conda packages and the Python version ----------------------------------------------

    @property
    def conda_packages(self) -> list[str]:
        """The conda packages as the reference SDK lists them: ``python=X.Y`` when a version
        is set (other conda packages are never held)."""
        return [f"python={self._python_version}"] if self._python_version else []

    def add_conda_package(self, conda_package: str) -> None:
        """Accept ``python[=X.Y]`` (sets the Python version) and ``pip``.

        Raises:
            UserErrorException: any other conda package: environments are uv virtualenvs
                built from PyPI, so it must be a pip package instead.
        """
        text = str(conda_package).strip()
        python = _PYTHON_SPEC.match(text)
        if python is not None:
            if python.group("version"):
                self.set_python_version(python.group("version"))
            return
        if _PIP_SPEC.match(text):
            return  # a virtualenv installs its packages itself
        if _package_name(text) == "python":
            raise UserErrorException(f"Not a Python version: {text!r} (for example 'python=3.11').")
        raise UserErrorException(
            f"Conda package {text!r} cannot be installed: environments are uv virtualenvs "
            "built from PyPI, not conda environments. List it in pip_packages instead "
            f"(e.g. pip_packages=[{_package_name(text) or text!r}]); only 'python=X.Y' and "
            "'pip' are accepted as conda packages."
        )

    def remove_conda_package(self, conda_package: str) -> None:
        """Remove ``python`` (the version goes back to the worker's default)."""
        if _PYTHON_SPEC.match(str(conda_package).strip()):
            self._python_version = None

    @property
    def python_version(self) -> str | None:
        """The Python version, or None for the worker's default."""
        return self._python_version

    @python_version.setter
    def python_version(self, version: str | None) -> None:
        self._python_version = check_python_version(version)

    def set_python_version(self, version: str | None) -> None:
        """Set the Python version (``"3.11"``); None means the worker's default."""
        self.python_version = version

    def get_python_version(self) -> str | None:
        """The Python version, or None for the worker's default."""
        return self._python_version

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CondaDependencies) and (
            self._python_version,
            self._pip_packages,
        ) == (other._python_version, other._pip_packages)

    def __repr__(self) -> str:
        return (
            f"CondaDependencies(python_version={self._python_version!r}, "
            f"pip_packages={self._pip_packages!r})"
        )
