"""Environments: versioned specs, registered per workspace, and the curated defaults.

The spec is normalised, validated and hashed by the worker-side library's `EnvSpec`
(deployments.runner.envspec), so the studio and the workers agree on what "the same
environment" is. A name's new version is made only when its spec hash changes.
"""

from __future__ import annotations

import re

import mlflow
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max

from deployments.models import Environment
from deployments.runner.envspec import EnvSpec
from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from portal.services import audit_record

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CURATED_PREFIX = "mlstudio-"


def curated_environments() -> dict[str, dict]:
    """The environments every workspace has without registering them: name → spec and
    description. mlflow is pinned to the server's own version."""
    pinned = f"mlflow=={mlflow.__version__}"
    return {
        "mlstudio-minimal": {
            "pip_packages": [pinned],
            "description": "MLflow only, the server's version",
        },
        "mlstudio-sklearn": {
            "pip_packages": [pinned, "scikit-learn"],
            "description": "MLflow (the server's version) and scikit-learn",
        },
    }


def make_spec(
    *, python_version: str | None, pip_packages: list[str] | tuple[str, ...], env_vars: dict
) -> EnvSpec:
    """An EnvSpec from user input; its complaints become INVALID_PARAMETER_VALUE."""
    if not isinstance(pip_packages, list | tuple) or not all(
        isinstance(p, str) for p in pip_packages
    ):
        raise InvalidParameter("pip_packages must be a list of requirement strings.")
    if not isinstance(env_vars, dict):
        raise InvalidParameter("env_vars must be an object of names to strings.")
    try:
        return EnvSpec(
            python_version=python_version, pip_packages=tuple(pip_packages), env_vars=env_vars
        )
    except ValueError as exc:
        raise InvalidParameter(f"Invalid environment: {exc}") from None


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidParameter(
            f"Invalid environment name {str(name)[:70]!r}: 1 to 64 characters, letters, "
            "digits, '.', '_' and '-', starting with a letter or digit."
        )
    return name


def _register(
    *,
    actor: AbstractBaseUser | None,
    workspace: Workspace,
    name: str,
    spec: EnvSpec,
    description: str,
) -> Environment:
    spec_hash = spec.spec_hash()
    for _ in range(3):  # a concurrent registration of the same name takes our version
        latest = (
            Environment.objects.filter(workspace=workspace, name=name).order_by("-version").first()
        )
        if latest is not None and latest.spec_hash == spec_hash:
            return latest
        version = (latest.version + 1) if latest is not None else 1
        try:
            with transaction.atomic():
                environment = Environment.objects.create(
                    workspace=workspace,
                    name=name,
                    version=version,
                    python_version=spec.python_version or "",
                    pip_packages=list(spec.pip_packages),
                    env_vars=dict(spec.env_vars),
                    description=(description or "")[:500],
                    spec_hash=spec_hash,
                    created_by=actor if getattr(actor, "is_authenticated", False) else None,
                )
                audit_record(
                    actor=actor,
                    action="create",
                    target=environment,
                    changes={"version": version, "spec_hash": spec_hash},
                )
                return environment
        except IntegrityError:
            continue
    raise InvalidParameter(f"Environment '{name}' is being registered concurrently; try again.")


def environment_register(
    *,
    actor: AbstractBaseUser,
    workspace: Workspace,
    name: str,
    python_version: str | None = None,
    pip_packages: list[str] | tuple[str, ...] = (),
    env_vars: dict | None = None,
    description: str = "",
) -> Environment:
    """Register a spec under `name`: a new version when it differs from the latest one,
    else the latest version itself. Curated names (`mlstudio-…`) are reserved."""
    _check_name(name)
    if name.lower().startswith(CURATED_PREFIX):
        raise InvalidParameter(
            f"Environment names starting with '{CURATED_PREFIX}' are reserved for the "
            "curated environments."
        )
    spec = make_spec(
        python_version=python_version, pip_packages=pip_packages, env_vars=env_vars or {}
    )
    return _register(
        actor=actor, workspace=workspace, name=name, spec=spec, description=description
    )


def _curated(*, workspace: Workspace, name: str) -> Environment:
    """The curated environment's row in this workspace, made or moved to a new version
    (the server's mlflow changed) on first use, by the system."""
    entry = curated_environments()[name]
    spec = make_spec(python_version=None, pip_packages=entry["pip_packages"], env_vars={})
    return _register(
        actor=None, workspace=workspace, name=name, spec=spec, description=entry["description"]
    )


def environment_get(*, workspace: Workspace, name: str, version: int | None = None) -> Environment:
    """A version of an environment (the latest when `version` is None). Curated ones
    exist in every workspace."""
    if name in curated_environments() and version is None:
        return _curated(workspace=workspace, name=name)
    found = Environment.objects.filter(workspace=workspace, name=name)
    if version is not None:
        environment = found.filter(version=version).first()
    else:
        environment = found.order_by("-version").first()
    if environment is None:
        if name in curated_environments():
            latest = _curated(workspace=workspace, name=name)
            if latest.version == version:
                return latest
        where = f"version {version} of " if version is not None else ""
        raise NotFound(f"No {where}environment '{str(name)[:70]}' in this workspace.")
    return environment


def environment_names(*, workspace: Workspace) -> list[dict]:
    """Each environment name with its latest version, curated ones included."""
    rows = {
        row["name"]: row["latest"]
        for row in Environment.objects.filter(workspace=workspace)
        .values("name")
        .annotate(latest=Max("version"))
    }
    curated = curated_environments()
    names = sorted(set(rows) | set(curated))
    return [
        {"name": name, "latest_version": rows.get(name), "curated": name in curated}
        for name in names
    ]
