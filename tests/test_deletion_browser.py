"""Deleting a resource group in real headless Chromium: type the name, watch the job.

The job runs in a thread of the test (the Celery message is captured), paused after
its first batch of runs so the page can be seen under way; the page itself polls
with htmx until the job succeeds.
"""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from portal import registry, services
from portal.models import DeletionJob, ResourceGroup
from portal.services import jobs
from tests.browser import login, rg_path, shot, ws_path
from tracking.services import purge
from tracking.tests.test_purge import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")


def test_delete_a_resource_group_by_typing_its_name(
    page: Page, live_server, cast, monkeypatch
) -> None:
    populate(cast.workspace, "training", runs=6)
    sent: list[str] = []
    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: sent.append(str(job.pk)))
    login(page, "olivia")
    page.goto(rg_path(cast))
    page.get_by_role("link", name="Delete resource group").click()
    expect(page.get_by_role("heading", name="Delete resource group rg-main")).to_be_visible()
    counts = page.get_by_role("table", name="What will be deleted")
    expect(counts.get_by_role("row", name=re.compile("Workspaces"))).to_contain_text("ws-main")
    expect(counts.get_by_role("row", name=re.compile("Runs"))).to_contain_text("6")
    expect(counts.get_by_role("row", name=re.compile("Stored artifacts"))).to_contain_text(
        "7 files"
    )

    field = page.get_by_label("Type the resource group name to confirm")
    field.fill("rg-mian")
    page.get_by_role("button", name="Delete resource group").click()
    expect(page.locator(".field .errors")).to_contain_text("The name you typed does not match")
    shot(page, "deletion-confirm-error")
    assert ResourceGroup.objects.get(pk=cast.resource_group.pk).deletion_requested_at is None
    assert sent == []

    page.get_by_label("Type the resource group name to confirm").fill("rg-main")
    page.get_by_role("button", name="Delete resource group").click()
    expect(
        page.get_by_role("heading", name="Deletion of resource group Contoso › rg-main")
    ).to_be_visible()
    expect(page.locator("#job-status .badge")).to_have_text("Queued")
    job = DeletionJob.objects.get()
    assert sent == [str(job.pk)]
    shot(page, "deletion-job-queued")

    # The resource group and its workspace are gone for everyone at once.
    other = page.context.browser.new_context(base_url=live_server.url)
    try:
        carlos = other.new_page()
        login(carlos, "carlos")
        expect(carlos.locator("main")).not_to_contain_text("rg-main")
        assert carlos.goto(ws_path(cast)).status == 404
    finally:
        other.close()

    worker, release = _run_paused_after_first_batch(job, monkeypatch)
    expect(page.locator("#job-status .badge")).to_have_text("Running")
    expect(page.locator("#job-status .job-phase")).to_contain_text("Deleting runs of ws-main")
    expect(page.get_by_role("progressbar")).not_to_have_attribute("aria-valuenow", "0")
    shot(page, "deletion-job-running")

    release.set()
    worker.join(timeout=60)
    expect(page.locator("#job-status .badge")).to_have_text("Succeeded")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    back = page.get_by_role("link", name="Back to subscription Contoso")
    expect(back).to_be_visible()
    shot(page, "deletion-job-succeeded")
    assert not ResourceGroup.objects.filter(pk=cast.resource_group.pk).exists()

    back.click()
    expect(page.get_by_role("heading", name="Contoso")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Resource group Contoso › rg-main")
    shot(page, "deletion-subscription-recent")


def _run_paused_after_first_batch(
    job: DeletionJob, monkeypatch
) -> tuple[threading.Thread, threading.Event]:
    """Start the job in a thread; it stops before its second batch of runs until the
    returned event is set (its first batch and progress are committed by then)."""
    monkeypatch.setattr(purge, "BATCH_SIZE", 2)
    real = purge._purge_run_rows
    paused, release = threading.Event(), threading.Event()
    calls = []

    def gated(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            paused.set()
            release.wait(timeout=60)
        return real(*args, **kwargs)

    monkeypatch.setattr(purge, "_purge_run_rows", gated)

    def work() -> None:
        try:
            services.deletion_job_run(job_id=job.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    assert paused.wait(timeout=30), "the job did not reach its second batch"
    return thread, release


def test_delete_a_workspace_from_its_page(page: Page, live_server, cast, monkeypatch) -> None:
    populate(cast.workspace, "training", runs=2)
    sent: list[str] = []
    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: sent.append(str(job.pk)))
    login(page, "carlos")
    page.goto(ws_path(cast))
    page.get_by_role("link", name="Delete workspace").click()
    expect(page.get_by_role("heading", name="Delete workspace ws-main")).to_be_visible()
    counts = page.get_by_role("table", name="What will be deleted")
    expect(counts.get_by_role("row", name=re.compile("Runs"))).to_contain_text("2")
    expect(counts).not_to_contain_text("Workspaces")
    page.get_by_label("Type the workspace name to confirm").fill("ws-main")
    shot(page, "deletion-workspace-confirm")
    page.get_by_role("button", name="Delete workspace").click()
    expect(page.locator("#job-status .badge")).to_have_text("Queued")
    assert len(sent) == 1

    thread = threading.Thread(target=_run_job_in_thread, args=(sent[0],), daemon=True)
    thread.start()
    thread.join(timeout=60)
    expect(page.locator("#job-status .badge")).to_have_text("Succeeded")
    page.get_by_role("link", name="Back to resource group rg-main").click()
    expect(page.get_by_role("heading", name="rg-main")).to_be_visible()
    recent = page.locator(".card", has=page.get_by_role("heading", name="Recent deletions"))
    expect(recent).to_contain_text("Workspace Contoso › rg-main › ws-main")
    expect(recent).to_contain_text("Succeeded")
    expect(page.locator("table.data").first).to_contain_text("No workspaces here yet.")
    shot(page, "deletion-resource-group-recent")


def _run_job_in_thread(job_id: str) -> None:
    try:
        services.deletion_job_run(job_id=job_id)
    finally:
        connection.close()


def test_a_failed_job_shows_its_error_and_can_be_retried(
    page: Page, live_server, cast, monkeypatch
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: sent.append(str(job.pk)))
    job = services.deletion_job_request(
        actor=cast.owner, target=cast.workspace, confirm_name="ws-main"
    )

    def unreachable(**kwargs):
        raise ConnectionError(111, "Connection refused")

    monkeypatch.setattr(purge, "workspace_tracking_purge", unreachable)
    for _ in range(registry.job_kind("workspace").max_attempts):
        services.deletion_job_run(job_id=job.pk)
    login(page, "olivia")
    page.goto(f"/jobs/{job.pk}/")
    expect(page.locator("#job-status .badge")).to_have_text("Failed")
    expect(page.get_by_role("alert")).to_have_text("Storage error: Connection refused")
    shot(page, "deletion-job-failed")

    monkeypatch.undo()
    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: sent.append(str(job.pk)))
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash.success")).to_have_text("The deletion job was queued again.")
    expect(page.locator("#job-status .badge")).to_have_text("Queued")
    thread = threading.Thread(target=_run_job_in_thread, args=(str(job.pk),), daemon=True)
    thread.start()
    thread.join(timeout=60)
    expect(page.locator("#job-status .badge")).to_have_text("Succeeded")
