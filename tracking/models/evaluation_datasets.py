"""GenAI evaluation datasets (MLflow 3's `api/3.0/mlflow/datasets`): a named set of
records (inputs, expectations, outputs) kept in the workspace, tagged, and linked to
experiments. Unlike run-input `Dataset`s they are edited in place: records are upserted
by their inputs."""

from __future__ import annotations

from django.db import models

from portal.models import Workspace
from tracking.models.experiments import Experiment


class EvaluationDataset(models.Model):
    """`dataset_id` ("d-<32 hex>") is the id clients see. `schema` and `profile` are JSON
    text the server computes from the records, as mlflow's store does; `digest` changes
    whenever records are upserted. A blank text field is one the message leaves out."""

    dataset_id = models.CharField(max_length=36, unique=True)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="evaluation_datasets"
    )
    name = models.CharField(max_length=255)
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)
    digest = models.CharField(max_length=64, blank=True)
    created_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()
    created_by = models.CharField(max_length=255, blank=True)
    last_updated_by = models.CharField(max_length=255, blank=True)
    experiments = models.ManyToManyField(
        Experiment, through="EvaluationDatasetExperiment", related_name="evaluation_datasets"
    )

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "name"], name="eval_dataset_name_idx"),
            models.Index(fields=["workspace", "created_time"], name="eval_dataset_created_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class EvaluationDatasetTag(models.Model):
    dataset = models.ForeignKey(EvaluationDataset, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=255)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "key"], name="eval_dataset_tag_unique")
        ]


class EvaluationDatasetExperiment(models.Model):
    """The dataset is linked to the experiment (mlflow's entity association). Both belong
    to the same workspace: the services only link experiments found there."""

    dataset = models.ForeignKey(
        EvaluationDataset, on_delete=models.CASCADE, related_name="experiment_links"
    )
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="evaluation_dataset_links"
    )
    created_time = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "experiment"], name="eval_dataset_experiment_unique"
            )
        ]


class EvaluationDatasetRecord(models.Model):
    """One example. `input_hash` (sha256 of the inputs as sorted JSON) makes a record
    unique per dataset: upserting the same inputs again merges into it. `outputs` is any
    JSON value; None when the record has none."""

    record_id = models.CharField(max_length=36, unique=True)  # "dr-<32 hex>"
    dataset = models.ForeignKey(EvaluationDataset, on_delete=models.CASCADE, related_name="records")
    input_hash = models.CharField(max_length=64)
    inputs = models.JSONField()
    outputs = models.JSONField(null=True, blank=True)
    expectations = models.JSONField(null=True, blank=True)
    tags = models.JSONField(null=True, blank=True)
    source = models.JSONField(null=True, blank=True)
    source_id = models.CharField(max_length=255, blank=True)
    source_type = models.CharField(max_length=255, blank=True)
    created_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()
    created_by = models.CharField(max_length=255, blank=True)
    last_updated_by = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "input_hash"], name="eval_dataset_record_inputs_unique"
            )
        ]
        # Records are read in (created_time, record_id) order, a page after a cursor.
        indexes = [
            models.Index(
                fields=["dataset", "created_time", "record_id"], name="eval_record_page_idx"
            )
        ]
