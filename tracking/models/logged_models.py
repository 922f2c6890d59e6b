"""MLflow 3 logged models and the run outputs that point at them."""

from __future__ import annotations

from django.db import models

from portal.models import Workspace
from tracking.models.experiments import Experiment, LifecycleStage, Run


class LoggedModel(models.Model):
    class Status(models.IntegerChoices):
        UNSPECIFIED = 0, "Unspecified"
        PENDING = 1, "Pending"
        READY = 2, "Ready"
        UPLOAD_FAILED = 3, "Upload failed"

    model_id = models.CharField(max_length=64, unique=True)  # "m-<32 hex>"
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="logged_models")
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="logged_models"
    )
    name = models.CharField(max_length=500)
    artifact_location = models.TextField()
    creation_timestamp_ms = models.BigIntegerField()
    last_updated_timestamp_ms = models.BigIntegerField()
    status = models.IntegerField(choices=Status.choices, default=Status.PENDING)
    status_message = models.TextField(blank=True)
    lifecycle_stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE
    )
    model_type = models.CharField(max_length=500, blank=True)
    source_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="logged_models"
    )
    # The run id the client gave, kept as given (as `mlflow server` keeps it) even when it
    # names no run of this workspace; `source_run` is set only when it does, and is what
    # pages and downloads follow, so another workspace's run never resolves.
    source_run_uuid = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-creation_timestamp_ms"]
        indexes = [models.Index(fields=["experiment", "lifecycle_stage"])]

    def __str__(self) -> str:
        return self.name


class LoggedModelTag(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="logged_model_tag_unique")
        ]


class LoggedModelParam(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="logged_model_param_unique")
        ]


class LoggedModelMetric(models.Model):
    """A metric logged with a model_id (and perhaps a dataset): the model's own record of
    it, next to the run's point. One row per (model, key, timestamp, step, run), as
    `mlflow server` keys them; a repeat of the same point is dropped. NaN is stored as
    value 0 with is_nan set, like the run's points."""

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="metrics")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField()
    dataset_name = models.CharField(max_length=500, blank=True)
    dataset_digest = models.CharField(max_length=36, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "key", "timestamp", "step", "run"],
                name="logged_model_metric_unique",
            )
        ]
        indexes = [models.Index(fields=["key", "value"], name="logged_model_metric_key_value")]


class RunOutput(models.Model):
    """`runs/outputs`: a run produced a logged model (at a step). Logging the same model
    again records the new step."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="outputs")
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="run_outputs")
    step = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "model"], name="run_output_unique")]


class RunModelInput(models.Model):
    """`runs/log-inputs` with `models`: the run used a logged model. The id is kept as the
    client sent it, as `mlflow server` keeps it, and is only ever echoed back."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_inputs")
    model_id = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "model_id"], name="run_model_input_unique")
        ]
