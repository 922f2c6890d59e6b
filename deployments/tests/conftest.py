"""Fixtures of the deployments tests."""

import pytest

from deployments.tests.runner_support import jobs_root, workdir  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    """Workspaces made by a test keep their artifacts (snapshots, logs) under tmp_path."""
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")
