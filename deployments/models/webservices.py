"""Web services: an image deployed on a target (local or Kubernetes) behind keys."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from deployments.models.compute import ComputeTarget
from deployments.models.images import Image
from portal.models import Job, Workspace


class WebService(models.Model):
    """A scoring web service. `compute_type` is the reference's: ACI and local services
    run on the `local` runtime (a process or a container a worker supervises), AKS ones
    on a Kubernetes compute target. The keys are stored encrypted (portal.secrets), since
    `get_keys()` must give them back; readers never see them."""

    class ComputeType(models.TextChoices):
        LOCAL = "local", "Local"
        ACI = "aci", "ACI (local runtime)"
        KUBERNETES = "kubernetes", "Kubernetes"

    class State(models.TextChoices):
        TRANSITIONING = "Transitioning", "Transitioning"
        HEALTHY = "Healthy", "Healthy"
        UNHEALTHY = "Unhealthy", "Unhealthy"
        FAILED = "Failed", "Failed"
        DELETING = "Deleting", "Deleting"
        STOPPED = "Stopped", "Stopped"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webservices")
    name = models.CharField(max_length=32)
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="webservices")
    compute_type = models.CharField(max_length=16, choices=ComputeType.choices)
    compute_target = models.ForeignKey(
        ComputeTarget, null=True, blank=True, on_delete=models.PROTECT, related_name="webservices"
    )
    # The deploy configuration as given (cpu_cores, memory_gb, port, autoscale_*, …).
    config = models.JSONField(default=dict)
    description = models.CharField(max_length=500, blank=True)
    tags = models.JSONField(default=dict)
    properties = models.JSONField(default=dict)
    auth_enabled = models.BooleanField(default=True)
    primary_key = models.TextField(blank=True)  # encrypted (portal.secrets)
    secondary_key = models.TextField(blank=True)  # encrypted (portal.secrets)
    # The secret the scoring server verifies short-lived tokens with, and the token it
    # sends telemetry with; both encrypted.
    token_secret = models.TextField(blank=True)
    telemetry_token = models.TextField(blank=True)
    # sha256 (hex) of the telemetry token: POST /api/v1/service-telemetry finds the service
    # by it (one indexed lookup, no decryption per batch).
    telemetry_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.TRANSITIONING)
    error = models.TextField(blank=True)
    scoring_uri = models.CharField(max_length=500, blank=True)
    swagger_uri = models.CharField(max_length=500, blank=True)
    # What the runtime knows of the running instance(s): pid, port, container id,
    # Kubernetes names, restart count, last health check … (runtime-specific).
    runtime_state = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="webservice_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class DeploymentJob(Job):
    """Creating, updating or deleting a web service (a job of portal's machinery, kind
    "deployment"); `operation` says which, `image` is the image being rolled out."""

    class Operation(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"

    service = models.ForeignKey(
        WebService, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    operation = models.CharField(max_length=16, choices=Operation.choices)
    image = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["status", "updated_at"])]
