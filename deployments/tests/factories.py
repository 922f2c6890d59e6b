"""Helpers that make the deployments app's rows through its services."""

from __future__ import annotations

import io
import zipfile

from deployments.models import Environment
from deployments.services import environments, jobs, snapshots


def make_zip(files: dict[str, bytes | str] | None = None) -> bytes:
    """A source zip with `files` (path → content); train.py by default."""
    files = files or {"train.py": "print('hello')\n"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            archive.writestr(info, content)
    return buffer.getvalue()


def stored_snapshot(cast, files: dict[str, bytes | str] | None = None) -> str:
    return snapshots.snapshot_store(
        actor=cast.owner, workspace=cast.workspace, source=make_zip(files)
    )["hash"]


def submit(cast, **options):
    """A remote run of train.py on `local` (options override), by the contributor."""
    if "snapshot_hash" not in options:
        options["snapshot_hash"] = stored_snapshot(cast)
    options.setdefault("actor", cast.contributor)
    options.setdefault("workspace", cast.workspace)
    options.setdefault("experiment_name", "my_experiment")
    options.setdefault("script", "train.py")
    options.setdefault("arguments", ["--alpha", 0.5])
    options.setdefault("compute_name", "local")
    options.setdefault("environment", "mlstudio-minimal")
    options.setdefault("max_run_duration_seconds", 600)
    return jobs.remote_job_submit(**options)


def register(cast, name: str, *versions: list[str], **spec) -> Environment:
    """Versions of an environment, one per list of pip packages (`spec` the rest of
    each), registered by the owner; returns the last."""
    for packages in versions:
        environment = environments.environment_register(
            actor=cast.owner, workspace=cast.workspace, name=name, pip_packages=packages, **spec
        )
    return environment
