"""The one job machinery and the registry, with kinds registered by the tests.

Portal runs kinds it knows nothing about: these tests register their own (inside
`registry.override()`, so nothing leaks) and drive them through create, claim, run,
retry, recovery and the workspace purge steps.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal import registry, services, tasks
from portal.errors import InvalidParameter
from portal.models import DeletionJob
from portal.services import jobs

Status = DeletionJob.Status


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, int | None]]:
    """(job id, countdown) of every message the machinery would send."""
    messages: list[tuple[str, int | None]] = []
    monkeypatch.setattr(
        jobs, "job_enqueue", lambda job, countdown=None: messages.append((str(job.pk), countdown))
    )
    return messages


@pytest.fixture
def kinds():
    with registry.override() as current:
        yield current


def _kind(name: str = "test-kind", **options) -> registry.JobKind:
    options.setdefault("run", lambda job, progress: progress(1, "Working"))
    kind = registry.JobKind(name=name, label="Test thing", model=DeletionJob, **options)
    registry.register_job_kind(kind)
    return kind


def _create(cast, kind: str = "test-kind", capture=None) -> DeletionJob:
    def create() -> DeletionJob:
        return services.job_create(
            DeletionJob,
            kind=kind,
            actor=cast.owner,
            label="a › thing",
            subscription_id=cast.subscription.id,
            workspace_id=cast.workspace.id,
        )

    if capture is None:
        return create()
    with capture(execute=True):
        return create()


def _run(job: DeletionJob) -> DeletionJob:
    return services.job_run(model_label="portal.deletionjob", job_id=job.pk)


def test_a_registered_kind_runs_with_progress_and_a_log(
    cast, kinds, sent, django_capture_on_commit_callbacks
):
    steps: list[str] = []

    def run(job, progress):
        for step in ("one", "two", "three"):
            steps.append(step)
            progress(1, f"Step {step}")

    _kind(run=run, units=lambda job: 3, done_phase="All done")
    job = _create(cast, capture=django_capture_on_commit_callbacks)
    assert sent == [(str(job.pk), None)]  # sent once the transaction committed
    assert job.status == Status.QUEUED and job.kind_label == "Test thing"
    job = _run(job)
    assert steps == ["one", "two", "three"]
    assert job.status == Status.SUCCEEDED and job.phase == "All done" and job.percent == 100
    assert (job.progress_done, job.progress_total, job.attempts) == (3, 3, 1)
    lines = job.log.splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == [
        "Attempt 1 started",
        "Step one",
        "Step two",
        "Step three",
        "Finished",
    ]


def test_a_kind_nobody_registered_is_refused(cast, kinds):
    with pytest.raises(LookupError):
        _create(cast, kind="nobody-runs-this")
    assert not DeletionJob.objects.exists()


def test_a_duplicate_message_never_runs_a_job_twice(cast, kinds, sent):
    runs: list[str] = []
    _kind(run=lambda job, progress: runs.append(str(job.pk)))
    job = _create(cast)
    # A second worker got the same message while the first is working on it.
    assert jobs.job_claim(DeletionJob, job.pk) is not None
    assert _run(job).status == Status.RUNNING
    assert runs == []
    # The first worker finishes; a late duplicate finds a finished job.
    DeletionJob.objects.filter(pk=job.pk).update(status=Status.QUEUED)
    assert _run(job).status == Status.SUCCEEDED
    assert _run(job).status == Status.SUCCEEDED
    assert len(runs) == 1


def test_transient_errors_are_retried_with_backoff_then_fail(cast, kinds, sent):
    def broken(job, progress):
        progress(0, "Copying files")
        raise OSError(5, "Input/output error")

    _kind(run=broken, max_attempts=3, retry_delays=(7, 11))
    job = _create(cast)
    sent.clear()
    job = _run(job)
    assert job.status == Status.QUEUED and job.phase == "Waiting to retry"
    assert "Attempt 1 failed: Storage error: Input/output error" in job.error
    assert sent == [(str(job.pk), 7)]
    assert _run(job).status == Status.QUEUED and sent[-1] == (str(job.pk), 11)
    job = _run(job)
    assert job.status == Status.FAILED and job.finished_at is not None
    assert job.error == "Storage error: Input/output error"
    assert job.phase == "Stopped at “Copying files”"
    assert len(sent) == 2  # no fourth attempt on its own
    # Someone retries it by hand: queued again, attempts counted afresh.
    job = jobs.job_retry(actor=cast.owner, job=job)
    assert job.status == Status.QUEUED and job.attempts == 0
    assert "Retried by olivia" in job.log


def test_domain_errors_fail_at_once(cast, kinds, sent):
    def refuse(job, progress):
        raise InvalidParameter("The thing was restored meanwhile.")

    _kind(run=refuse)
    job = _run(_create(cast))
    assert job.status == Status.FAILED and job.attempts == 1
    assert job.error == "The thing was restored meanwhile."


def test_errors_shown_to_people_hide_server_paths(cast, kinds, sent, settings):
    def leak(job, progress):
        raise RuntimeError(f"cannot open {settings.DATA_DIR}/secret.key")

    _kind(run=leak, max_attempts=1)
    job = _run(_create(cast))
    assert str(settings.DATA_DIR) not in job.error and str(settings.DATA_DIR) not in job.log
    assert job.error == "RuntimeError: cannot open …/secret.key"


def test_stale_jobs_of_every_kind_are_recovered_after_their_own_delay(cast, kinds, sent):
    _kind(name="quick", stale_after=timedelta(seconds=30))
    _kind(name="slow", stale_after=timedelta(hours=1))
    quick, slow = _create(cast, kind="quick"), _create(cast, kind="slow")
    minute_ago = timezone.now() - timedelta(minutes=1)
    DeletionJob.objects.update(status=Status.RUNNING, attempts=1, updated_at=minute_ago)
    sent.clear()
    assert services.jobs_recover() == [quick.pk]
    assert sent == [(str(quick.pk), None)]
    quick.refresh_from_db()
    assert quick.status == Status.QUEUED and "Recovered" in quick.log
    assert DeletionJob.objects.get(pk=slow.pk).status == Status.RUNNING
    assert tasks.jobs_recover() == 0  # touched just now: nothing stale any more


def test_purge_steps_run_in_order_before_the_workspace_row_goes(cast, kinds, sent):
    calls: list[str] = []

    def stop_live_things(*, workspace, progress):
        calls.append(f"stop {workspace.name}")
        progress(2, "Stopping services")

    registry.register_purge_step(
        registry.PurgeStep(name="test-live", order=10, run=stop_live_things, units=lambda ws: 2)
    )
    names = [step.name for step in registry.purge_steps()]
    assert names.index("test-live") < names.index("tracking")  # registered by tracking
    job = services.deletion_job_request(
        actor=cast.owner, target=cast.workspace, confirm_name="ws-main"
    )
    job = services.deletion_job_run(job_id=job.pk)
    assert job.status == Status.SUCCEEDED, job.error
    assert calls == ["stop ws-main"]
    assert "Stopping services" in job.log
    assert job.progress_done == job.progress_total


def test_registering_twice_is_an_error_and_override_forgets(kinds):
    step = registry.PurgeStep(name="twice", order=1, run=lambda **kw: None)
    registry.register_purge_step(step)
    with pytest.raises(ValueError, match="registered already"):
        registry.register_purge_step(step)
    with pytest.raises(ValueError, match="registered already"):
        _kind(name="workspace")  # portal's own kind


def test_override_leaves_the_real_registry_as_it_was():
    before = [step.name for step in registry.purge_steps()]
    with registry.override():
        registry.register_purge_step(registry.PurgeStep(name="x", order=0, run=print))
        registry.register_hook("run_cancel", print)
    assert [step.name for step in registry.purge_steps()] == before
    assert registry.call_hook("nobody-listens") == []


def test_hooks_call_every_registered_function(kinds):
    registry.register_hook("test_hook", lambda *, value: value + 1)
    registry.register_hook("test_hook", lambda *, value: value * 10)
    assert registry.call_hook("test_hook", value=4) == [5, 40]


PANEL = '<div class="card" id="test-panel">{{ greeting }} {{ ws.name }}</div>'


def test_registered_panels_are_drawn_on_the_workspace_page(cast, kinds, memory_templates):
    panel_template = memory_templates({"test/panel.html": PANEL})[0]
    registry.register_workspace_panel(
        registry.Panel(
            name="greeting",
            order=1,
            template=panel_template,
            context=lambda request, ws: {"greeting": f"Hello {request.user.get_username()}"},
        )
    )
    registry.register_workspace_panel(
        registry.Panel(name="hidden", order=2, template=panel_template, context=lambda r, ws: None)
    )
    client = Client()
    client.force_login(cast.reader)
    page = client.get(
        reverse(
            "workspace",
            kwargs={
                "subscription_id": cast.subscription.id,
                "resource_group": "rg-main",
                "workspace": "ws-main",
            },
        )
    ).content.decode()
    assert page.count('id="test-panel"') == 1
    assert "Hello rita ws-main" in page
    assert "Recent experiments" in page  # the tracking app's panel


def test_a_kind_names_its_own_task_and_queue(cast, kinds, monkeypatch, settings):
    from portal.celery import app

    messages: list[tuple] = []
    monkeypatch.setattr(
        app, "send_task", lambda name, args, **options: messages.append((name, args, options))
    )
    _kind(name="remote", task="compute.run", queue=lambda job: f"compute-{job.target_id}")
    _kind(name="plain")
    remote = services.job_create(
        DeletionJob,
        kind="remote",
        actor=cast.owner,
        label="x",
        subscription_id=cast.subscription.id,
        target_id="gpu",
    )
    jobs.job_enqueue(remote)
    plain = _create(cast, kind="plain")
    jobs.job_enqueue(plain, countdown=30)
    assert messages == [
        (
            "compute.run",
            ("portal.deletionjob", str(remote.pk)),
            {"countdown": None, "queue": "compute-gpu"},
        ),
        ("portal.tasks.job_run", ("portal.deletionjob", str(plain.pk)), {"countdown": 30}),
    ]


def test_a_broker_that_is_down_leaves_the_job_queued_for_recovery(cast, kinds, monkeypatch):
    from portal.celery import app

    def down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(app, "send_task", down)
    _kind()
    job = _create(cast)
    jobs.job_enqueue(job)  # logged, not raised
    assert DeletionJob.objects.get(pk=job.pk).status == Status.QUEUED


def test_a_job_whose_worker_died_on_its_last_attempt_fails_as_worker_lost(cast, kinds, sent):
    failed: list[str] = []
    _kind(name="once", max_attempts=1, on_fail=lambda job: failed.append(job.error))
    _kind(name="thrice", max_attempts=3)
    once, thrice = _create(cast, kind="once"), _create(cast, kind="thrice")
    hour_ago = timezone.now() - timedelta(hours=1)
    DeletionJob.objects.update(status=Status.RUNNING, attempts=1, updated_at=hour_ago)
    sent.clear()
    assert set(services.jobs_recover()) == {once.pk, thrice.pk}
    once.refresh_from_db()
    assert once.status == Status.FAILED and once.error.startswith("Worker lost")
    assert failed == [once.error]
    assert DeletionJob.objects.get(pk=thrice.pk).status == Status.QUEUED
    assert sent == [(str(thrice.pk), None)]  # only the one with attempts left goes again
