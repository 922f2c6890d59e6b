"""Remote runs: a job of portal's machinery, one per tracking run."""

from __future__ import annotations

from django.db import models

from deployments.models.compute import ComputeTarget
from deployments.models.environments import Environment
from portal.models import ApiToken, Job, Workspace
from tracking.models import Run, RunStatus


class Stage(models.TextChoices):
    """Where a remote run is; `Job.status` stays coarse (queued/running/succeeded/failed)."""

    QUEUED = "queued", "Queued"
    PREPARING = "preparing", "Preparing"
    RUNNING = "running", "Running"
    FINALIZING = "finalizing", "Finalizing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


TERMINAL_STAGES = (Stage.COMPLETED, Stage.FAILED, Stage.CANCELED)
# The order stages move in; a terminal one may follow any earlier stage.
STAGE_ORDER = {stage: index for index, stage in enumerate(Stage)}
# The MLflow run's status for each stage.
RUN_STATUS = {
    Stage.QUEUED: RunStatus.SCHEDULED,
    Stage.PREPARING: RunStatus.SCHEDULED,
    Stage.RUNNING: RunStatus.RUNNING,
    Stage.FINALIZING: RunStatus.RUNNING,
    Stage.COMPLETED: RunStatus.FINISHED,
    Stage.FAILED: RunStatus.FAILED,
    Stage.CANCELED: RunStatus.KILLED,
}


class RemoteJob(Job):
    """A script run on a compute target for a tracking run (the MLflow run it logs to).

    The target may be deleted once the job has ended (its name stays in
    `compute_name`); the environment version it used may not (RESTRICT, not PROTECT:
    deleting the whole workspace still takes both)."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="remote_job")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    compute_target = models.ForeignKey(
        ComputeTarget, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    compute_name = models.CharField(max_length=24)
    environment = models.ForeignKey(Environment, on_delete=models.RESTRICT, related_name="jobs")
    snapshot_hash = models.CharField(max_length=64)
    script = models.CharField(max_length=500)
    arguments = models.JSONField(default=list)
    max_run_duration_seconds = models.PositiveIntegerField()
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.QUEUED)
    exit_code = models.IntegerField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    worker_hostname = models.CharField(max_length=255, blank=True)
    # The claiming worker's key for this attempt: its retried claim gets the same answer.
    claim_key = models.CharField(max_length=64, blank=True)
    # Whether the script ran under bubblewrap; None until the worker says.
    sandboxed = models.BooleanField(null=True, blank=True)
    # Bytes of logs/std_log.txt received so far: the offset the next append must give.
    log_bytes = models.BigIntegerField(default=0)
    # The script's MLflow token (a tracking token of the submitter, this workspace only):
    # minted at the claim, kept alive by the worker's heartbeats, revoked at the end.
    tracking_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(Job.Meta):
        indexes = [
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["compute_target", "status"]),
            models.Index(fields=["workspace", "status"]),
        ]

    def __str__(self) -> str:
        return f"Remote run {self.label}"

    @property
    def is_ended(self) -> bool:
        return self.stage in TERMINAL_STAGES
