"""Environments: versioned specs (Python version, pip packages, environment variables)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.models import Workspace


class Environment(models.Model):
    """One version of a named spec. A new version is made only when the spec changes
    (`spec_hash`, deployments.runner.envspec.EnvSpec's), so versions never repeat."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="environments")
    name = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    python_version = models.CharField(max_length=16, blank=True)
    pip_packages = models.JSONField(default=list)
    env_vars = models.JSONField(default=dict)
    description = models.CharField(max_length=500, blank=True)
    spec_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name", "version"], name="environment_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    def spec_dict(self) -> dict:
        """The spec as plain data, what a worker builds from."""
        return {
            "python_version": self.python_version or None,
            "pip_packages": list(self.pip_packages),
            "env_vars": dict(self.env_vars),
        }
