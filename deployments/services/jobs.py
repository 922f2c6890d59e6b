"""Remote runs: submit and cancel (people), claim, report, heartbeat and logs (workers).

A remote run is a tracking `Run` (the MLflow run its script logs to) and a `RemoteJob`
row of portal's job machinery, made together on submit; the message goes to the
compute target's queue when the transaction commits.

The worker-side services take plain ids and return plain dicts: compute workers hold
no database URL or server secret and reach them through /api/v1 with a token bound to
their target, so each takes the caller's worker `token` when the API has one and refuses
another target's job.

Stages move forward only: queued → preparing (claimed) → running → finalizing →
completed | failed | canceled, and the MLflow run's status follows (SCHEDULED, RUNNING,
FINISHED, FAILED, KILLED). `Job.status` stays coarse: a canceled run's job is
`failed` with the stage `canceled`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from mlflow.utils.mlflow_tags import MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE, MLFLOW_USER

from deployments.models import ComputeTarget, Environment, RemoteJob, Stage, WorkerToken
from deployments.models.jobs import RUN_STATUS, STAGE_ORDER, TERMINAL_STAGES
from deployments.runner.envspec import EnvSpec
from deployments.services import workers
from deployments.services.compute import compute_target_get
from deployments.services.environments import environment_get
from deployments.services.snapshots import snapshot_exists, snapshot_path
from portal import registry
from portal.errors import InvalidParameter, NotFound, PermissionDenied, StudioError
from portal.models import ApiToken, Job, Workspace
from portal.services import audit_record, job_create, tracking_token_mint
from portal.services.jobs import describe_text, job_heartbeat, job_log
from tracking.artifacts import artifact_uri_path, join, store_for
from tracking.artifacts.base import ArtifactReader
from tracking.artifacts.paths import require_clean_path
from tracking.models import Experiment, Run, RunStatus
from tracking.services.experiments import experiment_create, now_ms
from tracking.services.runs import run_cancel, run_create, run_update

KIND = "remote_run"
TASK = "deployments.run_remote_job"
Status = Job.Status

MAX_RUN_DURATION = 7 * 24 * 3600
MAX_ARGUMENTS = 1000
LOG_PATH = "logs/std_log.txt"
LOG_APPEND_MAX = 1024 * 1024  # bytes of one append
LOG_MAX_BYTES = 64 * 1024 * 1024  # bytes of a run's whole log
LOG_READ_MAX = 1024 * 1024
COMPUTE_TAG = "mlstudio.compute"
# The script's tracking token expires this long after the last heartbeat of its job.
JOB_TOKEN_LIFETIME = 600
# How long a worker waits before retrying a claim refused for max_nodes.
BUSY_RETRY_SECONDS = 5


class ComputeBusy(StudioError):
    """The target runs `max_nodes` jobs already: the worker retries the message later."""

    code = "RESOURCE_EXHAUSTED"
    http_status = 429


# --- Submit -------------------------------------------------------------------------------


def _check_script(script: str) -> str:
    if not isinstance(script, str) or not script.strip():
        raise InvalidParameter("script must name a file of the snapshot, e.g. 'train.py'.")
    path = PurePosixPath(script)
    if (
        path.is_absolute()
        or ".." in path.parts
        or "\\" in script
        or any(ord(c) < 32 for c in script)
        or len(script) > 500
    ):
        raise InvalidParameter(
            f"script must be a relative path inside the snapshot; got {script[:100]!r}."
        )
    return str(path)


def _check_arguments(arguments: list | None) -> list[str]:
    if arguments is None:
        return []
    if not isinstance(arguments, list | tuple) or len(arguments) > MAX_ARGUMENTS:
        raise InvalidParameter(f"arguments must be a list of at most {MAX_ARGUMENTS} strings.")
    out = []
    for arg in arguments:
        if isinstance(arg, bool) or not isinstance(arg, str | int | float):
            raise InvalidParameter(f"Each argument must be a string or a number; got {arg!r}.")
        text = str(arg)
        if "\0" in text:
            raise InvalidParameter("An argument must not contain a NUL character.")
        out.append(text)
    return out


def _check_duration(seconds: int) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidParameter("max_run_duration_seconds must be a whole number of seconds.")
    if not 1 <= seconds <= MAX_RUN_DURATION:
        raise InvalidParameter(
            f"max_run_duration_seconds must be from 1 to {MAX_RUN_DURATION} (7 days)."
        )
    return seconds


def _environment(workspace: Workspace, environment: Environment | str) -> Environment:
    if isinstance(environment, Environment):
        if environment.workspace_id != workspace.pk:
            raise NotFound(f"No environment '{environment.name}' in this workspace.")
        return environment
    if not isinstance(environment, str) or not environment:
        raise InvalidParameter("environment must be a name, or name:version.")
    name, _, version = environment.partition(":")
    if version and not version.isdigit():
        raise InvalidParameter(f"Invalid environment version {version!r}.")
    return environment_get(
        workspace=workspace, name=name, version=int(version) if version else None
    )


def _experiment(workspace: Workspace, name: str, actor: AbstractBaseUser) -> Experiment:
    experiment = Experiment.objects.filter(workspace=workspace, name=name).first()
    if experiment is None:
        experiment = experiment_create(workspace=workspace, name=name, actor=actor)
    return experiment


@transaction.atomic
def remote_job_submit(
    *,
    actor: AbstractBaseUser,
    workspace: Workspace,
    experiment_name: str,
    script: str,
    arguments: list | None,
    compute_name: str,
    environment: Environment | str,
    snapshot_hash: str,
    max_run_duration_seconds: int,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> RemoteJob:
    """Submit a script of a stored snapshot to run on a compute target: a SCHEDULED
    MLflow run (its experiment made if new) and a queued job, whose message goes to the
    target's queue on commit. The caller checked the contributor role."""
    script = _check_script(script)
    arguments = _check_arguments(arguments)
    _check_duration(max_run_duration_seconds)
    snapshot_path(snapshot_hash)  # its form
    if not snapshot_exists(workspace=workspace, snapshot_hash=snapshot_hash):
        raise NotFound(f"No snapshot {snapshot_hash} in this workspace; upload it first.")
    target = compute_target_get(workspace=workspace, name=compute_name)
    if target.kind == ComputeTarget.Kind.KUBERNETES:
        # A cluster's kubeconfig serves web services; no worker consumes its queue.
        raise InvalidParameter(
            f"compute_name: {target.name!r} is a Kubernetes target, which serves web services; "
            "remote runs go to a compute target of kind celery."
        )
    env = _environment(workspace, environment)
    experiment = _experiment(workspace, experiment_name, actor)
    username = actor.get_username() if actor is not None else ""
    run_tags = [(str(k), v) for k, v in (tags or {}).items()]
    run_tags += [
        (MLFLOW_SOURCE_TYPE, "JOB"),
        (MLFLOW_SOURCE_NAME, script),
        (COMPUTE_TAG, target.name),
        (MLFLOW_USER, username),
    ]
    run = run_create(
        workspace=workspace,
        experiment=experiment,
        user_id=username,
        start_time=None,
        run_name=run_name or "",
        tags=run_tags,
    )
    run = run_update(run=run, status=RunStatus.SCHEDULED)
    job = job_create(
        RemoteJob,
        kind=KIND,
        actor=actor,
        label=f"{experiment.name} › {run.name}",
        run=run,
        workspace=workspace,
        compute_target=target,
        compute_name=target.name,
        environment=env,
        snapshot_hash=snapshot_hash,
        script=script,
        arguments=arguments,
        max_run_duration_seconds=max_run_duration_seconds,
        stage=Stage.QUEUED,
    )
    audit_record(
        actor=actor,
        action="submit",
        target=job,
        changes={
            "run": run.run_uuid,
            "compute": target.name,
            "environment": str(env),
            "script": script,
            "snapshot": snapshot_hash,
        },
    )
    return job


# --- Cancel -------------------------------------------------------------------------------


def remote_job_cancel(*, actor: AbstractBaseUser, job: RemoteJob) -> RemoteJob:
    """Cancel a remote run: the same as cancelling its MLflow run (`run_cancel`), whose
    hook (`on_run_cancel`) stops the job."""
    run_cancel(run=Run.objects.get(pk=job.run_id), actor=actor)
    return RemoteJob.objects.get(pk=job.pk)


def on_run_cancel(*, run: Run, actor: AbstractBaseUser | None) -> None:
    """The "run_cancel" hook: a queued job ends at once (stage canceled); a claimed one is
    marked, and its worker kills the script when its heartbeat hears of it."""
    job = RemoteJob.objects.select_for_update().filter(run_id=run.pk).first()
    if job is None or job.is_ended:
        return
    now = timezone.now()
    who = actor.get_username() if actor is not None and actor.is_authenticated else "the system"
    job.cancel_requested_at = job.cancel_requested_at or now
    fields = ["cancel_requested_at", "updated_at"]
    if job.status == Status.QUEUED:
        _end(job, Stage.CANCELED, error=f"Canceled by {who}", now=now)
        fields += ["stage", "status", "error", "phase", "finished_at"]
    job.updated_at = now
    job.save(update_fields=fields)
    job_log(job, f"Cancel requested by {who}")
    audit_record(actor=actor, action="cancel", target=job, changes={"stage": job.stage})


def _end(job: RemoteJob, stage: str, *, error: str, now) -> None:
    """Set the fields of an ended job (the caller saves them)."""
    job.stage = stage
    job.status = Status.SUCCEEDED if stage == Stage.COMPLETED else Status.FAILED
    job.error = error
    job.phase = Stage(stage).label
    job.finished_at = now
    if stage == Stage.COMPLETED:
        job.progress_done = job.progress_total


ENDED_RUN = (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


def _set_run_status(run_id: int, stage: str) -> None:
    """The MLflow run follows the stage; a killed run (cancel) stays killed. The script
    itself may end its run (`mlflow.start_run()` as a context ends it FINISHED): a
    later non-final stage (finalizing) leaves that alone, the job's end decides."""
    status = RUN_STATUS[Stage(stage)]
    fields: dict[str, Any] = {"status": status}
    runs = Run.objects.filter(pk=run_id).exclude(status=RunStatus.KILLED)
    if stage in TERMINAL_STAGES:
        fields["end_time"] = now_ms()
    else:
        runs = runs.exclude(status__in=ENDED_RUN)
    runs.update(**fields)


# --- The worker's side (plain ids in, plain data out) -------------------------------------


def _job_for_worker(job_id, token: WorkerToken | None, *, lock: bool = False) -> RemoteJob:
    """The job a worker names; with its token (the API's callers), only a job of a
    target the token serves."""
    jobs = RemoteJob.objects.select_related("compute_target")
    if lock:  # the job's row only (the target is on the nullable side of a join)
        jobs = jobs.select_for_update(of=("self",))
    job = jobs.filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"No remote job with id={job_id}.")
    if token is not None and not token.serves(job.compute_target):
        raise PermissionDenied("This job belongs to another compute target.")
    return job


def workspace_path(workspace: Workspace) -> str:
    """The workspace's path in URLs (the MLflow tracking URI's tail)."""
    rg = workspace.resource_group
    return (
        f"subscriptions/{rg.subscription_id}/resourceGroups/{rg.name}/workspaces/{workspace.name}"
    )


def remote_job_claim(
    *,
    job_id,
    worker_hostname: str,
    claim_key: str = "",
    token: WorkerToken | None = None,
) -> dict | None:
    """Take a queued job for this worker, with one conditional UPDATE: returns what the
    worker needs, or None when there is nothing to take (a duplicate message, a job
    canceled or claimed meanwhile). Raises ComputeBusy when the target runs `max_nodes`
    jobs already (the message is retried later).

    The answer carries the script's `tracking_token`: a tracking token of the submitter
    for this workspace, short-lived (JOB_TOKEN_LIFETIME), kept alive by heartbeats and
    revoked when the job ends. It is in this answer only.

    `claim_key` (the worker's, one per attempt) makes the claim safe to retry: the same
    key asking again while the job is still preparing gets the claim again (with a new
    token, the first one revoked), as when the first answer was lost on the way."""
    if not worker_hostname or len(worker_hostname) > 255:
        raise InvalidParameter("worker_hostname must be 1 to 255 characters.")
    if not isinstance(claim_key, str) or len(claim_key) > 64:
        raise InvalidParameter("claim_key must be a string of at most 64 characters.")
    with transaction.atomic():
        job = _job_for_worker(job_id, token, lock=True)
        if claim_key and job.claim_key == claim_key and job.stage == Stage.PREPARING:
            _token_revoke(job)
            job_log(job, f"Claim answered again for {worker_hostname}")
            return _claim_answer(job)
        if job.status != Status.QUEUED or job.stage != Stage.QUEUED:
            return None
        if job.compute_target_id is None:
            raise InvalidParameter("The job's compute target was deleted.")
        if job.created_by is None or not job.created_by.is_active:
            # Nobody to mint the script's token for: the job can never run.
            now = timezone.now()
            _end(job, Stage.FAILED, error="The run's submitter no longer has an account.", now=now)
            job.updated_at = now
            job.save()
            _set_run_status(job.run_id, Stage.FAILED)
            return None
        # Claims of one target queue up on its row, so max_nodes holds under races.
        target = ComputeTarget.objects.select_for_update().get(pk=job.compute_target_id)
        running = RemoteJob.objects.filter(compute_target=target, status=Status.RUNNING).count()
        if running >= target.max_nodes:
            # Seen by a worker: recovery re-sends only jobs whose message was lost.
            RemoteJob.objects.filter(pk=job.pk).update(updated_at=timezone.now())
            raise ComputeBusy(
                f"Compute target '{target.name}' runs {running} of its {target.max_nodes} "
                "jobs at most; the job waits for one to end."
            )
        now = timezone.now()
        claimed = RemoteJob.objects.filter(
            pk=job.pk, status=Status.QUEUED, stage=Stage.QUEUED
        ).update(
            status=Status.RUNNING,
            stage=Stage.PREPARING,
            phase=Stage.PREPARING.label,
            attempts=F("attempts") + 1,
            worker_hostname=worker_hostname,
            claim_key=claim_key,
            started_at=now,
            updated_at=now,
            progress_total=1,
        )
        if not claimed:
            return None
        job_log(job, f"Claimed by {worker_hostname}")
        return _claim_answer(job)


def _claim_answer(job: RemoteJob) -> dict:
    """What the claiming worker needs: the job's spec and a new tracking token."""
    job = RemoteJob.objects.select_related(
        "run__experiment", "environment", "workspace__resource_group", "created_by"
    ).get(pk=job.pk)
    token, raw_token = _mint_tracking_token(job)
    job.tracking_token = token
    job.save(update_fields=["tracking_token"])
    env = job.environment
    spec = EnvSpec(**env.spec_dict())
    return {
        "job_id": str(job.pk),
        "run_id": job.run.run_uuid,
        "experiment_id": str(job.run.experiment_id),
        "workspace_id": str(job.workspace_id),
        "workspace_path": workspace_path(job.workspace),
        "compute": job.compute_name,
        "script": job.script,
        "arguments": list(job.arguments),
        "environment": {
            "name": env.name,
            "version": env.version,
            "spec": env.spec_dict(),
            "spec_hash": env.spec_hash,
            "build_hash": spec.build_hash(),
        },
        "snapshot_hash": job.snapshot_hash,
        "max_run_duration_seconds": job.max_run_duration_seconds,
        "log_offset": job.log_bytes,
        "tracking_token": raw_token,
    }


def _mint_tracking_token(job: RemoteJob) -> tuple[ApiToken, str]:
    return tracking_token_mint(
        user=job.created_by, workspace=job.workspace, lifetime=JOB_TOKEN_LIFETIME
    )


def _token_keep_alive(job: RemoteJob) -> None:
    """Push the script's token's expiry JOB_TOKEN_LIFETIME ahead (while it runs)."""
    if job.tracking_token_id is not None:
        ApiToken.objects.filter(pk=job.tracking_token_id, revoked_at__isnull=True).update(
            expires_at=timezone.now() + timedelta(seconds=JOB_TOKEN_LIFETIME)
        )


def _token_revoke(job: RemoteJob) -> None:
    if job.tracking_token_id is not None:
        ApiToken.objects.filter(pk=job.tracking_token_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )


def _state(job: RemoteJob) -> dict:
    return {
        "job_id": str(job.pk),
        "stage": job.stage,
        "status": job.status,
        "cancel_requested": job.cancel_requested_at is not None,
        "ended": job.is_ended,
    }


@transaction.atomic
def remote_job_report(
    *,
    job_id,
    stage: str,
    exit_code: int | None = None,
    sandboxed: bool | None = None,
    error: str | None = None,
    token: WorkerToken | None = None,
) -> dict:
    """The worker moves the job to `stage` (forward only), with the MLflow run's status
    and end time. Reporting the stage it is at again changes nothing but the fields
    given; once canceled is requested, an end is recorded as canceled."""
    job = _job_for_worker(job_id, token, lock=True)
    if stage not in Stage.values or stage == Stage.QUEUED:
        allowed = ", ".join(s for s in Stage.values if s != Stage.QUEUED)
        raise InvalidParameter(f"Invalid stage {stage!r}; one of: {allowed}.")
    if job.status == Status.QUEUED:
        raise InvalidParameter("The job has not been claimed.")
    if stage in TERMINAL_STAGES and job.cancel_requested_at is not None:
        stage = Stage.CANCELED
    if job.is_ended:
        if stage == job.stage:  # a retried report
            return _state(job)
        raise InvalidParameter(f"The job has ended ({job.stage}); it cannot become {stage}.")
    if STAGE_ORDER[Stage(stage)] < STAGE_ORDER[Stage(job.stage)]:
        raise InvalidParameter(f"The job is {job.stage} already; it cannot go back to {stage}.")
    now = timezone.now()
    if exit_code is not None:
        if isinstance(exit_code, bool) or not isinstance(exit_code, int):
            raise InvalidParameter("exit_code must be a whole number.")
        job.exit_code = exit_code
    if sandboxed is not None:
        job.sandboxed = bool(sandboxed)
    moved = stage != job.stage
    if stage in TERMINAL_STAGES:
        text = describe_text(error or "")[:4000]
        if stage == Stage.FAILED and not text:
            text = f"The script exited with code {job.exit_code}" if job.exit_code else "Failed"
        if stage == Stage.CANCELED:
            text = text or "Canceled"
        _end(job, stage, error=text if stage != Stage.COMPLETED else "", now=now)
    else:
        job.stage = stage
        job.phase = Stage(stage).label
    job.updated_at = now
    job.save()
    if moved:
        _set_run_status(job.run_id, stage)
        job_log(job, Stage(stage).label + (f": {job.error}" if job.error else ""))
    if job.is_ended:
        _token_revoke(job)
        audit_record(
            actor=None,
            action="run_end",
            target=job,
            changes={"stage": job.stage, "exit_code": job.exit_code},
        )
    return _state(job)


def remote_job_heartbeat(*, job_id, token: WorkerToken | None = None) -> dict:
    """The worker is alive and working on the job; the answer says whether to stop
    (`cancel_requested`, or `ended`: the job was failed meanwhile, e.g. as lost). The
    script's tracking token lives on while the job does."""
    job = _job_for_worker(job_id, token)
    job_heartbeat(job)  # a no-op unless it is running
    if not job.is_ended:
        _token_keep_alive(job)
    return _state(job)


def on_job_failed(job: Job) -> None:
    """The kind's `on_fail`: the machinery failed the job (its worker was lost)."""
    with transaction.atomic():
        job = RemoteJob.objects.select_for_update().get(pk=job.pk)
        if job.is_ended:
            return
        stage = Stage.CANCELED if job.cancel_requested_at else Stage.FAILED
        job.stage = stage
        job.save(update_fields=["stage"])
        _token_revoke(job)
        _set_run_status(job.run_id, stage)
        audit_record(
            actor=None, action="run_end", target=job, changes={"stage": stage, "error": job.error}
        )


# --- Logs ---------------------------------------------------------------------------------


def _log_path(run: Run) -> str:
    return join(artifact_uri_path(run.artifact_uri), LOG_PATH)


def remote_job_log_append(
    *, job_id, offset: int, text: str, token: WorkerToken | None = None
) -> dict:
    """Append the script's output to the run's logs/std_log.txt, at byte `offset` (the
    log's size as the worker knows it): a retried append of the same offset adds
    nothing, an offset past the end is refused (the answer's `log_bytes` is where to
    resume)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameter("offset must be a whole number of bytes, 0 or more.")
    if not isinstance(text, str):
        raise InvalidParameter("text must be a string.")
    data = text.encode("utf-8", errors="replace")
    if len(data) > LOG_APPEND_MAX:
        raise InvalidParameter(f"One append may carry at most {LOG_APPEND_MAX} bytes.")
    with transaction.atomic():
        job = _job_for_worker(job_id, token, lock=True)
        if job.started_at is None:
            raise InvalidParameter("The job has not been claimed.")
        if offset > job.log_bytes:
            raise InvalidParameter(
                f"offset {offset} is past the end of the log ({job.log_bytes} bytes)."
            )
        new = data[job.log_bytes - offset :]
        if new:
            if job.log_bytes + len(new) > LOG_MAX_BYTES:
                raise InvalidParameter(
                    f"The run's log is limited to {LOG_MAX_BYTES // (1024 * 1024)} MiB."
                )
            run = Run.objects.get(pk=job.run_id)
            store = store_for(Workspace.objects.get(pk=job.workspace_id))
            # In place where the store can; cut at log_bytes, so a write that failed
            # halfway is overwritten by its retry. Serialised by the job's row lock.
            try:
                store.append(_log_path(run), job.log_bytes, new)
            except ValueError as exc:  # the file lost its end (the run's files purged)
                raise InvalidParameter(f"The run's log cannot be appended to: {exc}") from None
            job.log_bytes += len(new)
            fields = {"log_bytes": job.log_bytes}
            if job.status == Status.RUNNING:
                fields["updated_at"] = timezone.now()
            RemoteJob.objects.filter(pk=job.pk).update(**fields)
    return {"log_bytes": job.log_bytes}


def remote_job_log_read(*, job_id, offset: int = 0, limit: int = 64 * 1024) -> dict:
    """Up to `limit` bytes of the log from `offset`, for tailing: {text, offset,
    next_offset, size, ended}. Asking again from `next_offset` gives what came since;
    `ended` with next_offset == size means there is no more to come."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameter("offset must be a whole number of bytes, 0 or more.")
    limit = max(1, min(int(limit), LOG_READ_MAX))
    job = RemoteJob.objects.select_related("run", "workspace").filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"No remote job with id={job_id}.")
    size = job.log_bytes
    text = ""
    end = min(offset, size)
    if offset < size:
        want = min(limit, size - offset)
        # One byte more, to see whether the page would end inside a UTF-8 character.
        data = store_for(job.workspace).read_range(_log_path(job.run), offset, want + 1)
        data = data[: size - offset]
        cut = min(want, len(data))
        while 0 < cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        end = offset + cut
        text = data[:cut].decode("utf-8", errors="replace")
    return {
        "text": text,
        "offset": offset,
        "next_offset": end,
        "size": size,
        "ended": job.is_ended,
    }


# --- Snapshot and outputs (the worker's side) ---------------------------------------------

ARTIFACT_FOLDERS = ("outputs", "logs")


def remote_job_snapshot(*, job_id, token: WorkerToken | None = None) -> ArtifactReader:
    """The job's source zip, for its worker to unpack (an open reader: close it)."""
    job = _job_for_worker(job_id, token)
    if job.is_ended:
        raise InvalidParameter(f"The job has ended ({job.stage}).")
    workspace = Workspace.objects.get(pk=job.workspace_id)
    return store_for(workspace).open(snapshot_path(job.snapshot_hash))


def remote_job_artifact_put(
    *, job_id, path: str, chunks: Iterable[bytes], token: WorkerToken | None = None
) -> dict:
    """Store one file the script left in ./outputs (or a log of the job's, such as the
    environment's build log) as an artifact of the job's run, before the job ends.
    `path` is relative to the run's artifacts and must be under outputs/ or logs/; the
    script's own log (logs/std_log.txt) is only appended to, through the log calls."""
    job = _job_for_worker(job_id, token)
    clean = require_clean_path(path, file=True)
    if clean.split("/", 1)[0] not in ARTIFACT_FOLDERS or "/" not in clean:
        raise InvalidParameter("path must name a file under outputs/ or logs/.")
    if clean == LOG_PATH:
        raise InvalidParameter(f"{LOG_PATH} is written through the job's log calls.")
    if job.status == Status.QUEUED:
        raise InvalidParameter("The job has not been claimed.")
    if job.is_ended:
        raise InvalidParameter(f"The job has ended ({job.stage}); its artifacts are final.")
    run = Run.objects.select_related("workspace").get(pk=job.run_id)
    size = store_for(run.workspace).write(join(artifact_uri_path(run.artifact_uri), clean), chunks)
    return {"path": clean, "size": size}


# --- Workspace purge ----------------------------------------------------------------------


def remote_jobs_stop(*, workspace: Workspace, progress: registry.Progress) -> None:
    """The purge step: end every unfinished remote job of the workspace (canceled), so
    no worker starts or carries on one whose run is about to go. Idempotent."""
    ids = list(
        RemoteJob.objects.filter(workspace=workspace, status__in=Job.UNFINISHED).values_list(
            "pk", flat=True
        )
    )
    for job_id in ids:
        with transaction.atomic():
            job = RemoteJob.objects.select_for_update().filter(pk=job_id).first()
            if job is None or job.is_finished:
                continue
            now = timezone.now()
            job.cancel_requested_at = job.cancel_requested_at or now
            _end(job, Stage.CANCELED, error="Canceled: the workspace is being deleted", now=now)
            job.updated_at = now
            job.save()
            _set_run_status(job.run_id, Stage.CANCELED)
            _token_revoke(job)
            progress(1, "Stopping remote runs")


def remote_jobs_units(workspace: Workspace) -> int:
    return RemoteJob.objects.filter(workspace=workspace, status__in=Job.UNFINISHED).count()


def remote_job_queue(job: Job) -> str:
    target = ComputeTarget.objects.filter(pk=getattr(job, "compute_target_id", None)).first()
    return target.queue if target is not None else settings.COMPUTE_LOCAL_QUEUE


def _run_in_studio(job: Job, progress: registry.Progress) -> None:
    raise StudioError("Remote runs are run by compute workers, not by the studio's job runner.")


def register() -> None:
    """Called from DeploymentsConfig.ready()."""
    registry.register_job_kind(
        registry.JobKind(
            name=KIND,
            label="Remote run",
            model=RemoteJob,
            run=_run_in_studio,
            done_phase=Stage.COMPLETED.label,
            task=TASK,
            queue=remote_job_queue,
            max_attempts=1,
            stale_after=timedelta(minutes=3),
            on_fail=on_job_failed,
            retryable=False,  # a remote run is submitted again, as a new MLflow run
        )
    )
    registry.register_hook("run_cancel", on_run_cancel)
    registry.register_hook("studio_processes", workers.studio_worker_process)
    registry.register_purge_step(
        registry.PurgeStep(
            name="deployments-remote-runs", order=50, run=remote_jobs_stop, units=remote_jobs_units
        )
    )
