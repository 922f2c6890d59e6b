"""Deleting workspaces, resource groups and experiments with deletion jobs.

Most tests run the job in the test process (`run_job`), with the Celery message
captured (`sent`); `test_a_real_worker_deletes_a_resource_group` sends it to a real
worker process.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conftest import producer_on, start_worker, stop_worker
from portal import registry, selectors, services
from portal.errors import AlreadyExists, InvalidParameter, NotFound, PermissionDenied
from portal.models import (
    ApiToken,
    AuditEntry,
    DeletionJob,
    Membership,
    ResourceGroup,
    Workspace,
)
from portal.services import jobs
from tracking.artifacts import store_for
from tracking.models import Experiment, LoggedModel, RegisteredModel, Run
from tracking.selectors.purge import experiment_purge_job
from tracking.services import purge
from tracking.services.experiments import experiment_delete
from tracking.services.purge_jobs import experiment_purge_request
from tracking.tests.conftest import tracking  # noqa: F401 - the fixture, for the worker test
from tracking.tests.test_purge import all_points, populate

CAST = ["owner", "contributor", "reader", "outsider", "anonymous"]
Status = DeletionJob.Status


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """Job ids handed to Celery; the message itself is not sent."""
    ids: list[str] = []
    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: ids.append(str(job.pk)))
    return ids


@pytest.fixture
def done_at_success(monkeypatch) -> list[int]:
    """progress_done as the job ends, before it is set to the total: the steps counted
    up front must be the steps done, or the bar would jump."""
    seen: list[int] = []
    real = jobs.job_succeed

    def record(job: DeletionJob) -> DeletionJob:
        seen.append(DeletionJob.objects.get(pk=job.pk).progress_done)
        return real(job)

    monkeypatch.setattr(jobs, "job_succeed", record)
    return seen


def request_deletion(target, actor, name=None, capture=None) -> DeletionJob:
    confirm = name if name is not None else getattr(target, "name", None)
    if capture is None:
        return services.deletion_job_request(actor=actor, target=target, confirm_name=confirm)
    with capture(execute=True):
        return services.deletion_job_request(actor=actor, target=target, confirm_name=confirm)


def run_job(job: DeletionJob) -> DeletionJob:
    return services.deletion_job_run(job_id=job.pk)


def client_for(cast, who: str) -> Client:
    client = Client()
    if who != "anonymous":
        client.force_login(cast.user(who))
    return client


def rg_url(cast, view: str) -> str:
    return reverse(
        view,
        kwargs={"subscription_id": cast.subscription.id, "resource_group": "rg-main"},
    )


def ws_url(cast, view: str) -> str:
    return reverse(
        view,
        kwargs={
            "subscription_id": cast.subscription.id,
            "resource_group": "rg-main",
            "workspace": "ws-main",
        },
    )


def gone(model, pk) -> bool:
    return not model.objects.filter(pk=pk).exists()


# --- Requesting ----------------------------------------------------------------------------


def test_wrong_typed_name_deletes_nothing(cast, sent):
    for typed in ["", "ws-mai", "WS-MAIN", "rg-main"]:
        with pytest.raises(InvalidParameter, match="Type"):
            request_deletion(cast.workspace, cast.owner, name=typed)
    cast.workspace.refresh_from_db()
    assert cast.workspace.deletion_requested_at is None
    assert not DeletionJob.objects.exists()
    assert sent == []


def test_request_marks_the_workspace_and_queues_a_job_after_commit(
    cast, sent, django_capture_on_commit_callbacks
):
    job = request_deletion(
        cast.workspace, cast.contributor, capture=django_capture_on_commit_callbacks
    )
    assert sent == [str(job.pk)]
    assert job.status == Status.QUEUED
    assert job.kind == DeletionJob.Kind.WORKSPACE
    assert job.label == "Contoso › rg-main › ws-main"
    assert job.created_by == cast.contributor
    assert Workspace.objects.get(pk=cast.workspace.pk).deletion_requested_at is not None
    entry = AuditEntry.objects.get(action="delete_request")
    assert entry.actor == cast.contributor and entry.changes == {"job": str(job.pk)}
    # Asking again: it is gone already.
    with pytest.raises(NotFound):
        request_deletion(Workspace.objects.get(pk=cast.workspace.pk), cast.owner)


def test_readers_and_outsiders_cannot_request(cast, sent):
    with pytest.raises(PermissionDenied):
        request_deletion(cast.workspace, cast.reader)
    with pytest.raises(NotFound):
        request_deletion(cast.workspace, cast.outsider)
    with pytest.raises(NotFound):
        request_deletion(cast.resource_group, cast.reader)  # sees it, holds no role on it
    assert not DeletionJob.objects.exists()


def test_a_workspace_being_deleted_vanishes_at_once(cast, sent):
    request_deletion(cast.workspace, cast.owner)
    for who in ("owner", "contributor", "reader"):
        user = cast.user(who)
        assert cast.workspace.pk not in {ws.pk for ws in selectors.visible_workspaces(user)}
        with pytest.raises(NotFound):
            selectors.workspace_access(
                user=user,
                subscription_id=cast.subscription.id,
                resource_group="rg-main",
                workspace="ws-main",
            )
        tree_workspaces = [
            node.workspace.pk
            for sub in selectors.tenancy_tree(user)
            for group in sub.resource_groups
            for node in group.workspaces
        ]
        assert cast.workspace.pk not in tree_workspaces
    # rita's only role was on that workspace: the resource group is gone for her too.
    with pytest.raises(NotFound):
        selectors.resource_group_access(
            user=cast.reader, subscription_id=cast.subscription.id, resource_group="rg-main"
        )
    assert client_for(cast, "owner").get(ws_url(cast, "workspace")).status_code == 404


def test_a_resource_group_being_deleted_hides_its_workspaces(cast, sent):
    rg2 = services.resource_group_create(
        actor=cast.owner, subscription=cast.subscription, name="rg-two"
    )
    ws2 = services.workspace_create(actor=cast.owner, resource_group=rg2, name="ws-two")
    request_deletion(cast.resource_group, cast.contributor)
    assert list(selectors.visible_workspaces(cast.owner)) == [ws2]
    owner = client_for(cast, "owner")
    assert owner.get(rg_url(cast, "resource-group")).status_code == 404
    assert owner.get(ws_url(cast, "workspace")).status_code == 404
    page = owner.get(reverse("dashboard")).content.decode()
    assert "rg-main" not in page and "ws-main" not in page


@pytest.mark.django_db(transaction=True)
def test_the_mlflow_api_stops_serving_a_workspace_being_deleted(cast, live_server, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: None)
    _, token = services.token_create(user=cast.owner, name="t")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = selectors.tracking_uri(cast.workspace, live_server.url)
    client = mlflow.MlflowClient(uri)
    client.create_experiment("before")  # served, and the access is now cached

    services.deletion_job_request(actor=cast.owner, target=cast.workspace, confirm_name="ws-main")

    with pytest.raises(MlflowException) as caught:
        client.search_experiments()
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert caught.value.get_http_status_code() == 404


def test_names_are_reserved_while_deleting_and_free_after(cast, sent):
    job = request_deletion(cast.workspace, cast.owner)
    with pytest.raises(AlreadyExists, match="still being deleted"):
        services.workspace_create(
            actor=cast.owner, resource_group=cast.resource_group, name="ws-main"
        )
    assert run_job(job).status == Status.SUCCEEDED
    again = services.workspace_create(
        actor=cast.owner, resource_group=cast.resource_group, name="ws-main"
    )
    assert again.pk != cast.workspace.pk

    rg_job = request_deletion(cast.resource_group, cast.owner)
    with pytest.raises(AlreadyExists, match="still being deleted"):
        services.resource_group_create(
            actor=cast.owner, subscription=cast.subscription, name="rg-main"
        )
    assert run_job(rg_job).status == Status.SUCCEEDED
    services.resource_group_create(actor=cast.owner, subscription=cast.subscription, name="rg-main")


# --- Running ---------------------------------------------------------------------------------


def test_workspace_job_purges_everything_below_it(cast, sent, done_at_success):
    data = populate(cast.workspace, "exp", runs=4)
    other = populate(cast.other_workspace, "exp")
    services.tracking_token_mint(user=cast.reader, workspace=cast.workspace)
    root = Path(cast.workspace.artifact_root)
    assert root.is_dir()
    job = request_deletion(cast.workspace, cast.owner)

    job = run_job(job)

    assert job.status == Status.SUCCEEDED, job.error
    # The steps counted up front are the steps done: runs, experiments (with the
    # Default), artifacts, row.
    assert done_at_success == [job.progress_total] == [4 + 2 + 1 + 1]
    assert job.progress_done == job.progress_total
    assert job.percent == 100 and job.finished_at and job.attempts == 1
    assert gone(Workspace, cast.workspace.pk)
    assert not Run.objects.filter(workspace_id=cast.workspace.pk).exists()
    assert not Experiment.objects.filter(pk=data.experiment.pk).exists()
    assert not LoggedModel.objects.filter(pk=data.model.pk).exists()
    assert not RegisteredModel.objects.filter(workspace_id=cast.workspace.pk).exists()
    assert not Membership.objects.filter(workspace_id=cast.workspace.pk).exists()
    assert not ApiToken.objects.filter(workspace_id=cast.workspace.pk).exists()
    assert all_points() == 60  # the other workspace's
    assert not root.exists()
    assert all(store_for(cast.other_workspace).exists(p) for p in other.run_files)
    assert AuditEntry.objects.filter(
        action="delete", target_type="workspace", target_id=str(cast.workspace.pk)
    ).exists()
    # The rows are gone, the job row stays to tell the story.
    assert DeletionJob.objects.get(pk=job.pk).label == "Contoso › rg-main › ws-main"


def test_resource_group_job_deletes_its_workspaces_and_itself(cast, sent, done_at_success):
    second = services.workspace_create(
        actor=cast.owner, resource_group=cast.resource_group, name="ws-second"
    )
    populate(cast.workspace, "exp")
    populate(second, "exp2")
    job = run_job(request_deletion(cast.resource_group, cast.contributor))
    assert job.status == Status.SUCCEEDED, job.error
    assert gone(ResourceGroup, cast.resource_group.pk)
    assert not Workspace.objects.filter(pk__in=[cast.workspace.pk, second.pk]).exists()
    assert not Membership.objects.filter(resource_group_id=cast.resource_group.pk).exists()
    assert not Path(cast.workspace.artifact_root).exists()
    assert not Path(second.artifact_root).exists()
    assert Workspace.objects.filter(pk=cast.other_workspace.pk).exists()
    # 3 + 3 runs, 2 × 2 experiments (theirs and the Default), 2 × (artifacts, row), the
    # resource group's row
    assert done_at_success == [job.progress_total] == [3 + 3 + 2 * 2 + 2 * 2 + 1]


def test_a_job_interrupted_midway_is_finished_by_running_it_again(cast, sent, monkeypatch):
    monkeypatch.setattr(purge, "BATCH_SIZE", 2)
    data = populate(cast.workspace, "exp", runs=5)
    job = request_deletion(cast.workspace, cast.owner)
    real = purge._purge_run_rows
    calls = []

    def crash_after_first_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker lost its database connection")
        return real(*args, **kwargs)

    monkeypatch.setattr(purge, "_purge_run_rows", crash_after_first_batch)
    job = run_job(job)
    # The first attempt failed after one batch: recorded, and a retry scheduled.
    assert job.status == Status.QUEUED
    assert "Attempt 1 failed: RuntimeError: worker lost its database connection" in job.error
    assert sent[-1] == str(job.pk)
    assert Run.objects.filter(pk__in=[r.pk for r in data.runs]).count() == 3
    assert Workspace.objects.filter(pk=cast.workspace.pk).exists()
    done_before = job.progress_done
    assert 0 < done_before < job.progress_total

    monkeypatch.setattr(purge, "_purge_run_rows", real)
    job = run_job(job)
    assert job.status == Status.SUCCEEDED
    assert job.attempts == 2 and job.error == ""
    assert not Run.objects.filter(pk__in=[r.pk for r in data.runs]).exists()
    assert gone(Workspace, cast.workspace.pk)


def test_a_worker_killed_midway_is_recovered_from_the_row(cast, sent, monkeypatch):
    populate(cast.workspace, "exp")
    job = request_deletion(cast.workspace, cast.owner)
    # As a killed worker leaves it: claimed (running), then silence.
    DeletionJob.objects.filter(pk=job.pk).update(
        status=Status.RUNNING, attempts=1, updated_at=timezone.now() - timedelta(minutes=1)
    )
    # A duplicate message while the heartbeat is fresh does nothing.
    assert run_job(job).status == Status.RUNNING
    assert Workspace.objects.filter(pk=cast.workspace.pk).exists()
    assert services.jobs_recover() == []  # not stale yet

    recovered = services.jobs_recover(stale_after=timedelta(seconds=30))
    assert recovered == [job.pk]
    assert sent[-1] == str(job.pk)
    assert DeletionJob.objects.get(pk=job.pk).status == Status.QUEUED
    assert run_job(job).status == Status.SUCCEEDED
    assert gone(Workspace, cast.workspace.pk)


def test_a_lost_message_is_sent_again_by_the_beat_task(cast, sent):
    job = request_deletion(cast.resource_group, cast.owner)
    DeletionJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    from portal import tasks

    assert tasks.jobs_recover() == 1
    assert sent == [str(job.pk)]
    assert tasks.deletion_job_run(str(job.pk)) == "succeeded"
    assert gone(ResourceGroup, cast.resource_group.pk)


def test_failures_are_stored_shown_and_retryable(cast, sent, monkeypatch, settings):
    populate(cast.workspace, "exp")
    job = request_deletion(cast.workspace, cast.owner)

    def broken(*args, **kwargs):
        raise PermissionError(13, "Permission denied", f"{settings.ARTIFACT_ROOT}/x")

    monkeypatch.setattr(purge, "workspace_tracking_purge", broken)
    for _ in range(registry.job_kind("workspace").max_attempts):
        job = run_job(job)
    assert job.status == Status.FAILED
    assert job.error == "Storage error: Permission denied"
    assert job.finished_at is not None
    assert AuditEntry.objects.filter(
        action="delete_fail", target_id=str(cast.workspace.pk)
    ).exists()
    assert Workspace.objects.filter(pk=cast.workspace.pk).exists()  # still hidden, not gone

    page = client_for(cast, "owner").get(reverse("deletion-job", kwargs={"job_id": job.pk}))
    text = page.content.decode()
    assert "Failed" in text and "Storage error: Permission denied" in text
    assert settings.ARTIFACT_ROOT not in text and "Traceback" not in text

    monkeypatch.undo()
    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: sent.append(job.pk))
    response = client_for(cast, "owner").post(
        reverse("deletion-job-retry", kwargs={"job_id": job.pk})
    )
    assert response.status_code == 302
    assert DeletionJob.objects.get(pk=job.pk).status == Status.QUEUED
    assert run_job(job).status == Status.SUCCEEDED


# --- Experiments ---------------------------------------------------------------------------


def test_experiment_purge_job(cast, sent, django_capture_on_commit_callbacks):
    data = populate(cast.workspace, "exp")
    keep = populate(cast.workspace, "keep")
    with pytest.raises(InvalidParameter, match="Only deleted experiments"):
        experiment_purge_request(actor=cast.owner, experiment=data.experiment)
    experiment_delete(experiment=data.experiment, actor=None)
    with pytest.raises(PermissionDenied):
        experiment_purge_request(actor=cast.reader, experiment=data.experiment)
    with pytest.raises(InvalidParameter, match="does not match"):
        experiment_purge_request(actor=cast.owner, experiment=data.experiment, confirm_name="x")
    with django_capture_on_commit_callbacks(execute=True):
        job = experiment_purge_request(actor=cast.contributor, experiment=data.experiment)
    again = experiment_purge_request(actor=cast.owner, experiment=data.experiment)
    assert again.pk == job.pk  # one purge at a time
    assert job.label == "Contoso › rg-main › ws-main › exp"

    job = run_job(job)

    assert job.status == Status.SUCCEEDED, job.error
    assert gone(Experiment, data.experiment.pk)
    assert not store_for(cast.workspace).exists(str(data.experiment.pk))
    assert all(store_for(cast.workspace).exists(p) for p in keep.run_files)
    assert AuditEntry.objects.filter(action="purge_request").exists()
    assert AuditEntry.objects.filter(action="purge", target_repr="exp").exists()
    page = client_for(cast, "reader").get(reverse("deletion-job", kwargs={"job_id": job.pk}))
    assert page.status_code == 200  # rita reads the workspace the experiment was in
    assert "Back to experiments" in page.content.decode()


def test_an_experiment_restored_during_its_purge_stops_it(cast, sent, monkeypatch):
    from tracking.models import LifecycleStage

    monkeypatch.setattr(purge, "BATCH_SIZE", 1)
    data = populate(cast.workspace, "exp")
    experiment_delete(experiment=data.experiment, actor=None)
    job = experiment_purge_request(actor=cast.owner, experiment=data.experiment)
    assert experiment_purge_job(experiment_id=data.experiment.pk) == job
    real = purge._purge_run_rows

    def restore_after_first_batch(*args, **kwargs):
        real(*args, **kwargs)
        # A restore that raced the purge request (services refuse one once the job exists).
        Experiment.objects.filter(pk=data.experiment.pk).update(
            lifecycle_stage=LifecycleStage.ACTIVE, deleted_at=None
        )

    monkeypatch.setattr(purge, "_purge_run_rows", restore_after_first_batch)
    job = run_job(job)
    assert job.status == Status.FAILED  # not retried: it would fail the same way
    assert "was restored while it was being purged" in job.error
    assert Run.objects.filter(experiment=data.experiment).count() == 2
    assert experiment_purge_job(experiment_id=data.experiment.pk) is None


# --- Admin console ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_admin_deletes_a_subscription_through_deletion_jobs(cast, sent, django_user_model):
    from portal.models import Subscription

    populate(cast.workspace, "exp")
    root = Path(cast.workspace.artifact_root)
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    response = client.post(
        f"/admin/portal/subscription/{cast.subscription.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert gone(Subscription, cast.subscription.pk)
    assert gone(Workspace, cast.workspace.pk)
    assert not root.exists()
    job = DeletionJob.objects.get()
    assert job.kind == DeletionJob.Kind.RESOURCE_GROUP and job.status == Status.SUCCEEDED
    assert job.created_by == admin
    assert sent == []  # done in the request, nothing queued
    assert Workspace.objects.filter(pk=cast.other_workspace.pk).exists()


# --- Pages ----------------------------------------------------------------------------------


def test_confirm_page_lists_what_will_go(cast, sent):
    populate(cast.workspace, "exp", runs=3)
    page = client_for(cast, "contributor").get(rg_url(cast, "resource-group-delete"))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Type the resource group name to confirm" in text
    assert "ws-main" in text
    # 3 run files + 1 model file stored
    assert '<td class="num">4 files</td>' in " ".join(text.split())


def test_wrong_name_on_the_page_shows_an_error_and_deletes_nothing(cast, sent):
    response = client_for(cast, "owner").post(
        rg_url(cast, "resource-group-delete"), {"confirm_name": "rg-mian"}
    )
    text = response.content.decode()
    assert response.status_code == 400
    assert "The name you typed does not match" in text
    assert ResourceGroup.objects.get(pk=cast.resource_group.pk).deletion_requested_at is None
    assert not DeletionJob.objects.exists()
    response = client_for(cast, "owner").post(rg_url(cast, "resource-group-delete"), {})
    assert "Type the resource group name to confirm." in response.content.decode()


def test_right_name_redirects_to_the_job_page_which_polls_until_done(cast, sent):
    owner = client_for(cast, "owner")
    response = owner.post(ws_url(cast, "workspace-delete"), {"confirm_name": "ws-main"})
    job = DeletionJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("deletion-job", kwargs={"job_id": job.pk})
    page = owner.get(response.url).content.decode()
    assert "Queued" in page and 'hx-trigger="every 1s"' in page
    run_job(job)
    status = owner.get(reverse("deletion-job-status", kwargs={"job_id": job.pk}))
    text = status.content.decode()
    assert "Succeeded" in text and "hx-trigger" not in text
    assert "Back to resource group rg-main" in text
    assert "<html" not in text  # a fragment for htmx
    rg_page = owner.get(rg_url(cast, "resource-group")).content.decode()
    assert "Recent deletions" in rg_page and "Contoso › rg-main › ws-main" in rg_page
    sub_page = owner.get(reverse("subscription", args=[cast.subscription.id])).content.decode()
    assert "Contoso › rg-main › ws-main" in sub_page


def test_delete_buttons_show_only_for_contributors(cast):
    for who, expected in [("owner", True), ("contributor", True), ("reader", False)]:
        page = client_for(cast, who).get(ws_url(cast, "workspace")).content.decode()
        assert ("Delete workspace" in page) is expected, who
    for who, expected in [("owner", True), ("contributor", True)]:
        page = client_for(cast, who).get(rg_url(cast, "resource-group")).content.decode()
        assert ("Delete resource group" in page) is expected, who


# --- Permission cast -------------------------------------------------------------------------


CONFIRM_GET = dict(owner=200, contributor=200, reader=403, outsider=404, anonymous=302)
CONFIRM_POST = dict(owner=302, contributor=302, reader=403, outsider=404, anonymous=302)


@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize("view", ["workspace-delete", "resource-group-delete"])
def test_confirm_pages_cast(cast, sent, who, view):
    url = ws_url(cast, view) if view.startswith("workspace") else rg_url(cast, view)
    name = "ws-main" if view.startswith("workspace") else "rg-main"
    client = client_for(cast, who)
    assert client.get(url).status_code == CONFIRM_GET[who]
    response = client.post(url, {"confirm_name": name})
    assert response.status_code == CONFIRM_POST[who]
    if who == "anonymous":
        assert response.url.startswith(reverse("login"))
    assert DeletionJob.objects.exists() is (CONFIRM_POST[who] == 302 and who != "anonymous")


# A workspace's job is followed by readers of its resource group (and its creator); a
# resource group's by readers of the subscription.
JOB_VIEW = {
    "workspace": dict(owner=200, contributor=200, reader=404, outsider=404, anonymous=302),
    "resource_group": dict(owner=200, contributor=404, reader=404, outsider=404, anonymous=302),
}
JOB_RETRY = {
    "workspace": dict(owner=302, contributor=302, reader=404, outsider=404, anonymous=302),
    "resource_group": dict(owner=302, contributor=404, reader=404, outsider=404, anonymous=302),
}


@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize("kind", ["workspace", "resource_group"])
def test_job_pages_cast(cast, sent, who, kind):
    target = cast.workspace if kind == "workspace" else cast.resource_group
    job = request_deletion(target, cast.owner)
    client = client_for(cast, who)
    for view in ("deletion-job", "deletion-job-status"):
        response = client.get(reverse(view, kwargs={"job_id": job.pk}))
        assert response.status_code == JOB_VIEW[kind][who], view
    DeletionJob.objects.filter(pk=job.pk).update(status=Status.FAILED, error="boom")
    response = client.post(reverse("deletion-job-retry", kwargs={"job_id": job.pk}))
    assert response.status_code == JOB_RETRY[kind][who]
    retried = DeletionJob.objects.get(pk=job.pk).status == Status.QUEUED
    assert retried is (JOB_RETRY[kind][who] == 302 and who != "anonymous")


def test_the_creator_follows_the_job_without_a_role_above(cast, sent):
    job = request_deletion(cast.resource_group, cast.contributor)
    url = reverse("deletion-job", kwargs={"job_id": job.pk})
    page = client_for(cast, "contributor").get(url)
    assert page.status_code == 200
    assert "Contoso › rg-main" in page.content.decode()
    assert client_for(cast, "reader").get(url).status_code == 404


def test_unknown_job_is_404(cast):
    import uuid

    response = client_for(cast, "owner").get(
        reverse("deletion-job", kwargs={"job_id": uuid.uuid4()})
    )
    assert response.status_code == 404


# --- A real worker -------------------------------------------------------------------------


@pytest.fixture
def producer_on_worker_broker(tmp_path):
    """Point this process's Celery producer at the queue folder of the worker that
    start_worker(tmp_path, "filesystem") runs (its DATA_DIR is tmp_path/data)."""
    data = tmp_path / "data" / "celery"
    for folder in ("queue", "control"):
        (data / folder).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(data / "queue"),
        "data_folder_out": str(data / "queue"),
        "control_folder": str(data / "control"),
        "store_processed": False,
    }
    with producer_on("filesystem://", options):
        yield


def _wait_for(job_pk, statuses, worker, timeout: float = 90) -> DeletionJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = DeletionJob.objects.get(pk=job_pk)
        if job.status in statuses:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job stayed {job.status}: {job.phase}\n{worker.log.read_text()[-3000:]}")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_deletes_a_resource_group(
    cast,
    tracking,  # noqa: F811 - the fixture imported above
    tmp_path,
    producer_on_worker_broker,
):
    import mlflow

    mlflow.set_experiment("worker-exp")
    for i in range(3):
        with mlflow.start_run():
            mlflow.log_param("i", i)
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
            mlflow.log_text(f"run {i}", "notes/readme.txt")
    root = Path(cast.workspace.artifact_root)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 3

    worker = start_worker(tmp_path, "filesystem")
    try:
        owner = Client()
        owner.force_login(cast.owner)
        response = owner.post(rg_url(cast, "resource-group-delete"), {"confirm_name": "rg-main"})
        assert response.status_code == 302, response.content.decode()[:500]
        job = DeletionJob.objects.get()
        # The MLflow API stopped serving the workspace at once.
        with pytest.raises(mlflow.exceptions.MlflowException) as caught:
            mlflow.search_experiments()
        assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"

        job = _wait_for(job.pk, {Status.SUCCEEDED, Status.FAILED}, worker)
        assert job.status == Status.SUCCEEDED, job.error
        assert job.progress_done == job.progress_total
        assert "portal.tasks.deletion_job_run" in worker.log.read_text()
    finally:
        stop_worker(worker)
    assert not root.exists()
    assert gone(ResourceGroup, cast.resource_group.pk)
    assert gone(Workspace, cast.workspace.pk)
    assert not Run.objects.filter(workspace_id=cast.workspace.pk).exists()
    assert Workspace.objects.filter(pk=cast.other_workspace.pk).exists()


def test_workspace_job_stops_remote_runs_then_removes_them_with_their_targets(cast, sent):
    from deployments.models import ComputeTarget, Environment, RemoteJob, Stage
    from deployments.services import compute
    from deployments.services import jobs as remote_jobs
    from deployments.tests.factories import submit

    compute.compute_target_create(actor=cast.owner, workspace=cast.workspace, name="gpu")
    queued = submit(cast, compute_name="gpu")
    running = submit(cast, environment="mlstudio-sklearn")
    assert remote_jobs.remote_job_claim(job_id=running.pk, worker_hostname="n") is not None
    seen: list[str] = []
    real = remote_jobs.remote_jobs_stop

    def stop(**kwargs):  # what the stopped jobs looked like before tracking removed them
        real(**kwargs)
        seen.extend(RemoteJob.objects.values_list("stage", flat=True))

    step = next(s for s in registry.purge_steps() if s.name == "deployments-remote-runs")
    with registry.override() as current:
        current.purge_steps[current.purge_steps.index(step)] = registry.PurgeStep(
            name=step.name, order=step.order, run=stop, units=step.units
        )
        job = run_job(request_deletion(cast.workspace, cast.owner))
    assert job.status == Status.SUCCEEDED, job.error
    assert seen == [Stage.CANCELED, Stage.CANCELED]
    assert gone(Workspace, cast.workspace.pk)
    for model in (RemoteJob, ComputeTarget, Environment):
        assert not model.objects.exists()
    assert gone(RemoteJob, queued.pk)
