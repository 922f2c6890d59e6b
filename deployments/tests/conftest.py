"""Fixtures of the deployments tests."""

from deployments.tests.runner_support import jobs_root, workdir  # noqa: F401  (fixtures)
