"""Remote runs: submit, claim, report, heartbeat, logs, cancel, lost workers, purge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.models import RemoteJob, Stage
from deployments.services import compute, jobs, workers
from deployments.tests.factories import submit
from portal import registry, services
from portal.errors import InvalidParameter, NotFound, PermissionDenied
from portal.models import AuditEntry, Job
from portal.services import jobs as portal_jobs
from tracking.models import Run, RunStatus
from tracking.services.runs import run_cancel

Status = Job.Status


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, int | None]]:
    messages: list[tuple[str, int | None]] = []
    monkeypatch.setattr(
        portal_jobs,
        "job_enqueue",
        lambda job, countdown=None: messages.append((str(job.pk), countdown)),
    )
    return messages


def _run(job: RemoteJob) -> Run:
    return Run.objects.get(pk=job.run_id)


def _claimed(cast, **options) -> RemoteJob:
    job = submit(cast, **options)
    assert jobs.remote_job_claim(job_id=job.pk, worker_hostname="node-1") is not None
    return RemoteJob.objects.get(pk=job.pk)


def test_submit_makes_a_scheduled_run_and_a_queued_job_sent_on_commit(
    cast, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = submit(cast, run_name="first", tags={"team": "a"})
    assert sent == [(str(job.pk), None)]
    assert (job.kind, job.status, job.stage) == ("remote_run", Status.QUEUED, Stage.QUEUED)
    assert job.arguments == ["--alpha", "0.5"] and job.compute_name == "local"
    run = _run(job)
    assert run.status == RunStatus.SCHEDULED and run.name == "first"
    assert run.experiment.name == "my_experiment" and run.user_id == "carlos"
    tags = dict(run.tags.values_list("key", "value"))
    assert tags["mlflow.source.type"] == "JOB" and tags["mlflow.source.name"] == "train.py"
    assert tags["mlstudio.compute"] == "local" and tags["mlflow.user"] == "carlos"
    assert tags["team"] == "a"
    entry = AuditEntry.objects.get(action="submit")
    assert entry.actor_name == "carlos" and entry.changes["run"] == run.run_uuid
    # The experiment is reused by the next submit.
    assert _run(submit(cast)).experiment_id == run.experiment_id


def test_the_kind_sends_its_named_task_to_the_targets_queue(cast, monkeypatch, settings):
    from portal.celery import app

    settings.COMPUTE_LOCAL_QUEUE = "celery"
    messages: list = []
    monkeypatch.setattr(app, "send_task", lambda name, args, **o: messages.append((name, o)))
    gpu = compute.compute_target_create(actor=cast.owner, workspace=cast.workspace, name="gpu")
    local_job = submit(cast)
    gpu_job = submit(cast, compute_name="gpu")
    portal_jobs.job_enqueue(local_job)
    portal_jobs.job_enqueue(gpu_job)
    assert messages == [
        ("deployments.run_remote_job", {"countdown": None, "queue": "celery"}),
        ("deployments.run_remote_job", {"countdown": None, "queue": f"compute-{gpu.pk}"}),
    ]
    kind = registry.job_kind("remote_run")
    assert kind.max_attempts == 1 and kind.stale_after <= timedelta(minutes=5)


def test_submit_refuses_what_cannot_run(cast, sent):
    for options, error, match in (
        ({"script": "../x.py"}, InvalidParameter, "relative path"),
        ({"arguments": [True]}, InvalidParameter, "string or a number"),
        ({"max_run_duration_seconds": 0}, InvalidParameter, "max_run_duration"),
        ({"compute_name": "nowhere"}, NotFound, "compute target"),
        ({"environment": "nope"}, NotFound, "environment 'nope'"),
        ({"snapshot_hash": "0" * 64}, NotFound, "upload it first"),
    ):
        with pytest.raises(error, match=match):
            submit(cast, **options)
    assert not RemoteJob.objects.exists() and not Run.objects.exists()


def test_a_job_is_claimed_once_with_what_the_worker_needs(cast, sent):
    job = submit(cast, environment="mlstudio-sklearn")
    spec = jobs.remote_job_claim(job_id=job.pk, worker_hostname="node-1")
    run = _run(job)
    assert spec["run_id"] == run.run_uuid and spec["experiment_id"] == str(run.experiment_id)
    assert spec["script"] == "train.py" and spec["arguments"] == ["--alpha", "0.5"]
    assert spec["environment"]["name"] == "mlstudio-sklearn"
    assert "scikit-learn" in spec["environment"]["spec"]["pip_packages"]
    assert len(spec["environment"]["build_hash"]) == 64
    assert spec["snapshot_hash"] == job.snapshot_hash
    assert spec["workspace_path"].endswith("/resourceGroups/rg-main/workspaces/ws-main")
    assert spec["max_run_duration_seconds"] == 600 and spec["log_offset"] == 0
    # A duplicate message finds nothing to claim.
    assert jobs.remote_job_claim(job_id=job.pk, worker_hostname="node-2") is None
    job.refresh_from_db()
    assert (job.status, job.stage, job.attempts) == (Status.RUNNING, Stage.PREPARING, 1)
    assert job.worker_hostname == "node-1" and job.started_at is not None
    assert _run(job).status == RunStatus.SCHEDULED  # preparing is still scheduled


def test_a_worker_of_another_target_is_refused(cast, sent):
    gpu = compute.compute_target_create(actor=cast.owner, workspace=cast.workspace, name="gpu")
    gpu_token, _ = workers.worker_token_create(actor=cast.owner, target=gpu, name="gpu")
    job = submit(cast)  # on `local`
    with pytest.raises(PermissionDenied):
        jobs.remote_job_claim(job_id=job.pk, worker_hostname="n", token=gpu_token)
    on_gpu = submit(cast, compute_name="gpu")
    local_token, _ = workers.worker_token_create(actor=None, target=None, name="studio")
    with pytest.raises(PermissionDenied):  # the studio's worker serves `local` targets only
        jobs.remote_job_claim(job_id=on_gpu.pk, worker_hostname="n", token=local_token)
    assert jobs.remote_job_claim(job_id=job.pk, worker_hostname="n", token=local_token)
    assert jobs.remote_job_claim(job_id=on_gpu.pk, worker_hostname="n", token=gpu_token)
    with pytest.raises(NotFound):
        jobs.remote_job_claim(job_id="00000000-0000-0000-0000-000000000000", worker_hostname="n")


def test_max_nodes_caps_the_running_jobs_of_a_target(cast, sent):
    compute.compute_target_create(
        actor=cast.owner, workspace=cast.workspace, name="gpu", max_nodes=1
    )
    first, second = submit(cast, compute_name="gpu"), submit(cast, compute_name="gpu")
    assert jobs.remote_job_claim(job_id=first.pk, worker_hostname="n1") is not None
    with pytest.raises(jobs.ComputeBusy, match="1 of its 1 jobs"):
        jobs.remote_job_claim(job_id=second.pk, worker_hostname="n2")
    assert RemoteJob.objects.get(pk=second.pk).status == Status.QUEUED
    jobs.remote_job_report(job_id=first.pk, stage="completed", exit_code=0)
    assert jobs.remote_job_claim(job_id=second.pk, worker_hostname="n2") is not None


def test_stages_move_forward_with_the_mlflow_run_status(cast, sent):
    job = _claimed(cast)
    state = jobs.remote_job_report(job_id=job.pk, stage="running", sandboxed=True)
    assert state["stage"] == "running" and not state["ended"]
    assert _run(job).status == RunStatus.RUNNING
    jobs.remote_job_report(job_id=job.pk, stage="running")  # again: nothing changes
    jobs.remote_job_report(job_id=job.pk, stage="finalizing")
    assert _run(job).status == RunStatus.RUNNING
    with pytest.raises(InvalidParameter, match="cannot go back"):
        jobs.remote_job_report(job_id=job.pk, stage="running")
    state = jobs.remote_job_report(job_id=job.pk, stage="completed", exit_code=0)
    assert state == {**state, "stage": "completed", "status": "succeeded", "ended": True}
    run = _run(job)
    assert run.status == RunStatus.FINISHED and run.end_time is not None
    job.refresh_from_db()
    assert job.sandboxed is True and job.exit_code == 0 and job.finished_at is not None
    # A retried final report is harmless; a different one is refused.
    assert jobs.remote_job_report(job_id=job.pk, stage="completed")["stage"] == "completed"
    with pytest.raises(InvalidParameter, match="has ended"):
        jobs.remote_job_report(job_id=job.pk, stage="failed")
    with pytest.raises(InvalidParameter, match="Invalid stage"):
        jobs.remote_job_report(job_id=job.pk, stage="queued")
    assert AuditEntry.objects.filter(action="run_end", changes__stage="completed").exists()


def test_a_run_the_script_ended_itself_is_not_reopened_but_the_job_decides(cast, sent):
    from tracking.services.runs import run_update

    job = _claimed(cast)
    jobs.remote_job_report(job_id=job.pk, stage="running")
    run_update(run=_run(job), status=RunStatus.FINISHED, end_time=1)  # the script's end_run()
    jobs.remote_job_report(job_id=job.pk, stage="finalizing")
    assert _run(job).status == RunStatus.FINISHED
    jobs.remote_job_report(job_id=job.pk, stage="failed", exit_code=3)  # then it crashed
    run = _run(job)
    assert run.status == RunStatus.FAILED and run.end_time > 1


def test_a_failed_script_fails_the_job_and_the_run_with_its_error(cast, sent, settings):
    job = _claimed(cast)
    jobs.remote_job_report(job_id=job.pk, stage="running")
    error = f"Traceback ...\n  File {settings.DATA_DIR}/x.py\nValueError: bad alpha"
    jobs.remote_job_report(job_id=job.pk, stage="failed", exit_code=1, error=error)
    job.refresh_from_db()
    assert (job.status, job.stage, job.exit_code) == (Status.FAILED, Stage.FAILED, 1)
    assert "ValueError: bad alpha" in job.error and str(settings.DATA_DIR) not in job.error
    assert _run(job).status == RunStatus.FAILED


def test_an_unclaimed_job_cannot_be_reported_on(cast, sent):
    job = submit(cast)
    with pytest.raises(InvalidParameter, match="not been claimed"):
        jobs.remote_job_report(job_id=job.pk, stage="running")
    with pytest.raises(InvalidParameter, match="not been claimed"):
        jobs.remote_job_log_append(job_id=job.pk, offset=0, text="x")


def test_log_appends_are_idempotent_by_offset_and_can_be_tailed(cast, sent):
    from tracking.artifacts import list_under_uri, store_for

    job = _claimed(cast)
    assert jobs.remote_job_log_append(job_id=job.pk, offset=0, text="line 1\n") == {"log_bytes": 7}
    # The worker did not hear the answer and sends the same batch again.
    assert jobs.remote_job_log_append(job_id=job.pk, offset=0, text="line 1\n")["log_bytes"] == 7
    assert jobs.remote_job_log_append(job_id=job.pk, offset=7, text="é 2\n")["log_bytes"] == 12
    with pytest.raises(InvalidParameter, match="past the end"):
        jobs.remote_job_log_append(job_id=job.pk, offset=99, text="lost\n")
    # A batch that overlaps what arrived adds only its new part.
    assert (
        jobs.remote_job_log_append(job_id=job.pk, offset=7, text="é 2\nline 3\n")["log_bytes"] == 19
    )
    run = _run(job)
    assert [e.path for e in list_under_uri(cast.workspace, run.artifact_uri, "logs")] == [
        "logs/std_log.txt"
    ]
    path = f"{run.artifact_uri.split(':', 1)[1].lstrip('/')}/logs/std_log.txt"
    with store_for(cast.workspace).open(path) as reader:
        assert b"".join(reader).decode() == "line 1\né 2\nline 3\n"
    page = jobs.remote_job_log_read(job_id=job.pk, offset=0, limit=8)
    # 8 bytes would split "é": the page stops before it.
    assert page["text"] == "line 1\n" and page["next_offset"] == 7 and not page["ended"]
    page = jobs.remote_job_log_read(job_id=job.pk, offset=page["next_offset"])
    assert page["text"] == "é 2\nline 3\n" and page["next_offset"] == page["size"] == 19
    jobs.remote_job_report(job_id=job.pk, stage="completed", exit_code=0)
    page = jobs.remote_job_log_read(job_id=job.pk, offset=19)
    assert page["text"] == "" and page["ended"]


def test_cancel_of_a_queued_job_ends_it_at_once(cast, sent):
    job = submit(cast)
    run_cancel(run=_run(job), actor=cast.contributor)
    job.refresh_from_db()
    assert (job.stage, job.status) == (Stage.CANCELED, Status.FAILED)
    assert job.cancel_requested_at is not None and job.error == "Canceled by carlos"
    assert _run(job).status == RunStatus.KILLED
    assert jobs.remote_job_claim(job_id=job.pk, worker_hostname="n") is None  # never starts
    assert AuditEntry.objects.filter(action="cancel", target_type="remote job").exists()


def test_cancel_of_a_running_job_reaches_its_worker_on_the_heartbeat(cast, sent):
    job = _claimed(cast)
    jobs.remote_job_report(job_id=job.pk, stage="running")
    assert not jobs.remote_job_heartbeat(job_id=job.pk)["cancel_requested"]
    job = jobs.remote_job_cancel(actor=cast.contributor, job=job)
    assert job.stage == Stage.RUNNING and job.cancel_requested_at is not None
    assert _run(job).status == RunStatus.KILLED
    assert jobs.remote_job_heartbeat(job_id=job.pk)["cancel_requested"]
    # The worker killed the script; whatever the exit, the run ends canceled.
    state = jobs.remote_job_report(job_id=job.pk, stage="failed", exit_code=-9)
    assert state["stage"] == "canceled" and state["status"] == "failed"
    assert _run(job).status == RunStatus.KILLED


def test_a_lost_worker_fails_the_run_as_worker_lost_and_never_reruns_it(cast, sent):
    job = _claimed(cast)
    jobs.remote_job_report(job_id=job.pk, stage="running")
    RemoteJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    sent.clear()
    assert job.pk in services.jobs_recover()
    job.refresh_from_db()
    assert (job.status, job.stage) == (Status.FAILED, Stage.FAILED)
    assert job.error.startswith("Worker lost")
    run = _run(job)
    assert run.status == RunStatus.FAILED and run.end_time is not None
    assert sent == []  # not sent again
    assert jobs.remote_job_heartbeat(job_id=job.pk)["ended"]  # a late worker stops


def test_a_queued_job_whose_message_was_lost_is_sent_again(cast, sent):
    job = submit(cast)
    RemoteJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    sent.clear()
    assert services.jobs_recover() == [job.pk]
    assert sent == [(str(job.pk), None)]
    assert jobs.remote_job_claim(job_id=job.pk, worker_hostname="n") is not None


def test_the_workspace_purge_stops_remote_runs_before_runs_go(cast, sent):
    steps = [step.name for step in registry.purge_steps()]
    assert steps.index("deployments-remote-runs") < steps.index("tracking")
    queued, running, done = submit(cast), _claimed(cast), _claimed(cast)
    jobs.remote_job_report(job_id=done.pk, stage="completed", exit_code=0)
    step = next(s for s in registry.purge_steps() if s.name == "deployments-remote-runs")
    assert step.units(cast.workspace) == 2
    progressed: list[int] = []
    step.run(workspace=cast.workspace, progress=lambda n, phase: progressed.append(n))
    step.run(workspace=cast.workspace, progress=lambda n, phase: progressed.append(n))
    assert progressed == [1, 1]  # idempotent
    for job in (queued, running):
        job.refresh_from_db()
        assert job.stage == Stage.CANCELED and job.status == Status.FAILED
        assert jobs.remote_job_heartbeat(job_id=job.pk)["cancel_requested"]
        assert _run(job).status == RunStatus.KILLED
    assert RemoteJob.objects.get(pk=done.pk).stage == Stage.COMPLETED


def test_an_environment_in_use_stays_but_the_workspace_can_go(cast, sent):
    from django.db.models import RestrictedError

    job = submit(cast)
    with pytest.raises(RestrictedError):
        job.environment.delete()
    cast.workspace.delete()
    assert not RemoteJob.objects.exists()


def test_the_generic_retry_refuses_a_remote_run(cast, sent):
    job = _claimed(cast)
    jobs.remote_job_report(job_id=job.pk, stage="failed", exit_code=1)
    with pytest.raises(InvalidParameter, match="cannot be retried"):
        portal_jobs.job_retry(actor=cast.owner, job=RemoteJob.objects.get(pk=job.pk))
    assert RemoteJob.objects.get(pk=job.pk).status == Status.FAILED


@pytest.mark.django_db
def test_the_studios_compute_worker_gets_a_token_but_none_of_the_servers_settings(
    monkeypatch, settings
):
    """runstudio's compute worker: its own token (the previous one revoked) and the broker,
    not the database, the secret key or the Django settings module (which would make
    Celery load the studio's settings in a worker that must run without them)."""
    server = {
        "SECRET_KEY": "s",
        "DATABASE_URL": "postgres://db/x",
        "REDIS_URL": "redis://r/0",
        "DATA_DIR": "/srv/data",
        "ARTIFACT_ROOT": "/srv/artifacts",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "CELERY_BROKER_URL": "redis://r/1",
        "AZURE_STORAGE_CONNECTION_STRING": "x",
    }
    for key, value in server.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    settings.CELERY_BROKER_URL = "redis://r/1"
    first = workers.studio_worker_process(studio_url="http://127.0.0.1:8000")
    argv, env = workers.studio_worker_process(studio_url="http://127.0.0.1:8000")["compute"]
    assert not set(server) & set(env)
    assert env["SSL_CERT_FILE"]  # what uv needs to reach the index stays
    assert argv[1:3] == ["-m", "deployments.worker"]
    assert argv[argv.index("--broker") + 1] == "redis://r/1"
    assert workers.worker_token_authenticate(env["MLSTUDIO_WORKER_TOKEN"]) is not None
    assert workers.worker_token_authenticate(first["compute"][1]["MLSTUDIO_WORKER_TOKEN"]) is None
