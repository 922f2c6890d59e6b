"""The model registry: registered models, their versions, tags and aliases."""

from __future__ import annotations

from django.db import models

from portal.models import Workspace


class RegisteredModel(models.Model):
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="registered_models"
    )
    name = models.CharField(max_length=256)
    description = models.TextField(blank=True)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="registered_model_unique")
        ]

    def __str__(self) -> str:
        return self.name


class RegisteredModelTag(models.Model):
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="tags"
    )
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "key"], name="registered_model_tag_unique"
            )
        ]


class ModelVersion(models.Model):
    """A version of a registered model. Deleting one keeps the row, redacted, in the
    internal stage `Deleted_Internal` (as `mlflow server` does) so its number is never
    given out again; every read leaves those rows out.

    `source` is what the client registered; `storage_location` is where the files are
    (an `mlflow-artifacts:/` URI in this workspace), which get-download-uri returns."""

    class Status(models.TextChoices):
        PENDING_REGISTRATION = "PENDING_REGISTRATION"
        FAILED_REGISTRATION = "FAILED_REGISTRATION"
        READY = "READY"

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="versions"
    )
    version = models.IntegerField()
    description = models.TextField(blank=True)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    user_id = models.CharField(max_length=256, blank=True)
    current_stage = models.CharField(max_length=20, default="None")
    source = models.TextField()
    storage_location = models.TextField(blank=True)
    run_id = models.CharField(max_length=32, blank=True)
    run_link = models.TextField(blank=True)
    model_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.READY)
    status_message = models.TextField(blank=True)

    class Meta:
        ordering = ["registered_model", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "version"], name="model_version_unique"
            )
        ]
        indexes = [
            models.Index(fields=["run_id"], name="model_version_run"),
            models.Index(fields=["model_id"], name="model_version_model"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.version}"

    @property
    def workspace(self) -> Workspace:
        """Its model's workspace, so that audit entries on a version find their scope."""
        return self.registered_model.workspace


class ModelVersionTag(models.Model):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "key"], name="model_version_tag_unique"
            )
        ]


class RegisteredModelAlias(models.Model):
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="aliases"
    )
    alias = models.CharField(max_length=256)
    version = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "alias"], name="registered_model_alias_unique"
            )
        ]
