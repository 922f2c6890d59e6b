"""Images: a logged model packaged with our scoring server, ready to deploy."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.models import Job, Workspace


class Image(models.Model):
    """One version of a named image. `build_image` registers the model version, then a
    build job stores the build context (Dockerfile, model, requirements, scoring server)
    as an artifact, builds the Python environment with uv and, when a Docker engine is
    reachable, the container image. Versions of a name count up from 1."""

    class State(models.TextChoices):
        NOT_STARTED = "NotStarted", "Not started"
        RUNNING = "Running", "Building"
        SUCCEEDED = "Succeeded", "Succeeded"
        FAILED = "Failed", "Failed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="images")
    name = models.CharField(max_length=32)
    version = models.PositiveIntegerField()
    description = models.CharField(max_length=500, blank=True)
    tags = models.JSONField(default=dict)
    # What was asked for (runs:/…, models:/name/1, models:/name@alias) and what it resolved to.
    model_uri = models.TextField()
    model_name = models.CharField(max_length=256)
    model_version = models.PositiveIntegerField(null=True, blank=True)
    # The model files: an mlflow-artifacts:/ URI in this workspace.
    model_source = models.TextField(blank=True)
    # The model's signature (MLflow's JSON form) when it has one, for validation and swagger.
    signature = models.JSONField(null=True, blank=True)
    base_image = models.CharField(max_length=300, blank=True)
    python_version = models.CharField(max_length=16, blank=True)
    # Pinned requirements (from the model's own requirements.txt) and their hash, the key
    # of the uv environment cache.
    requirements = models.JSONField(default=list)
    env_hash = models.CharField(max_length=64, blank=True)
    # Where the build context zip lives (artifact path under the workspace's image area).
    context_uri = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.NOT_STARTED)
    error = models.TextField(blank=True)
    build_log = models.TextField(blank=True)
    # Set when a Docker engine built it: the local tag, the image id, where it was pushed.
    docker_tag = models.CharField(max_length=300, blank=True)
    docker_image_id = models.CharField(max_length=128, blank=True)
    image_location = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name", "version"], name="image_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def id_label(self) -> str:
        """The reference's image id: name:version."""
        return f"{self.name}:{self.version}"


class ImageBuildJob(Job):
    """The build of one image (a job of portal's machinery, kind "image_build")."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="build_jobs")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["status", "updated_at"])]
