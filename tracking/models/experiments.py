"""Experiments, runs and what a run logs: params, tags, metrics, dataset inputs."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.models import Workspace


class LifecycleStage(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


class RunStatus(models.TextChoices):
    RUNNING = "RUNNING", "Running"
    SCHEDULED = "SCHEDULED", "Scheduled"
    FINISHED = "FINISHED", "Finished"
    FAILED = "FAILED", "Failed"
    KILLED = "KILLED", "Killed"


class Experiment(models.Model):
    """An MLflow experiment. Its name is unique in the workspace, deleted ones included,
    as `mlflow server` has it: a deleted experiment keeps its name until it is purged,
    so restoring it never collides."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=500)
    artifact_location = models.TextField()
    lifecycle_stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE
    )
    creation_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The workspace's "Default" experiment, which MLflow clients call id 0 (and which keeps
    # that id when renamed, as experiment 0 of `mlflow server` does). One per workspace.
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["-creation_time"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="experiment_name_unique"),
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(is_default=True),
                name="experiment_default_unique",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "lifecycle_stage"])]

    def __str__(self) -> str:
        return self.name


class ExperimentTag(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="experiment_tag_unique"),
        ]

    def __str__(self) -> str:
        return self.key


class Run(models.Model):
    """A run. `run_uuid` is the id clients see; `workspace` repeats the experiment's so
    every lookup by run id is filtered by workspace in one index probe."""

    id = models.BigAutoField(primary_key=True)
    run_uuid = models.CharField(max_length=32, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runs")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250, blank=True)
    user_id = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.BigIntegerField(null=True, blank=True)
    end_time = models.BigIntegerField(null=True, blank=True)
    lifecycle_stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE
    )
    artifact_uri = models.TextField(blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start_time"]
        indexes = [
            models.Index(fields=["experiment", "lifecycle_stage", "start_time"]),
            models.Index(fields=["workspace", "lifecycle_stage"]),
        ]

    def __str__(self) -> str:
        return self.name or self.run_uuid


class Param(models.Model):
    """Immutable once logged: a different value for the same key is refused."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        # No index on value: values run to 6000 characters, past a btree row's limit.
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_unique")]

    def __str__(self) -> str:
        return self.key


class RunTag(models.Model):
    """Last write wins."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_tag_unique")]
        indexes = [
            # A run page lists its children by this tag; values are 32-character run ids,
            # so a partial index stays small (other tag values can be 8000 characters).
            models.Index(
                fields=["value"],
                condition=models.Q(key="mlflow.parentRunId"),
                name="run_tag_parent_idx",
            )
        ]

    def __str__(self) -> str:
        return self.key


class LatestMetric(models.Model):
    """One row per (run, metric key): the series id the points hang off (a small int
    instead of repeating the key on every point) and the latest point by (step,
    timestamp, value), as MLflow orders them, for run tables and search."""

    id = models.AutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField()
    is_nan = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="latest_metric_unique")]
        indexes = [models.Index(fields=["key", "value"], name="latest_metric_key_value")]

    def __str__(self) -> str:
        return self.key


class MetricPoint(models.Model):
    """Append-only metric points. The primary key is the whole point, so a logged
    duplicate is a no-op (ON CONFLICT DO NOTHING) and the same index serves history
    in step order. NaN is stored as value 0 with is_nan set, so it compares equal to
    itself; ±inf are stored as they are."""

    pk = models.CompositePrimaryKey("series_id", "step", "timestamp", "value", "is_nan")
    # No database constraint: points are removed in bulk by tracking.services.purge before
    # their series, with one DELETE, instead of row by row through the ORM's collector.
    # No index of its own either: the primary key starts with series_id and serves every
    # read by series; a second index would only cost each inserted point a btree insert.
    series = models.ForeignKey(
        LatestMetric,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    step = models.BigIntegerField()
    timestamp = models.BigIntegerField()
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)

    class Meta:
        ordering = ["series", "step", "timestamp"]


class Dataset(models.Model):
    """A dataset logged as a run input; shared by the runs of its experiment."""

    dataset_uuid = models.CharField(max_length=36, unique=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=36)
    source_type = models.CharField(max_length=36)
    source = models.TextField()
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name", "digest"], name="dataset_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class RunInput(models.Model):
    """A run's use of a dataset, with the input tags (e.g. mlflow.data.context)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="run_inputs")
    tags = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "dataset"], name="run_input_unique")]
