"""The remote-run pages in real headless Chromium: the Job tab's live log tailing what a
worker appends while the page is open, the Cancel button, a failed run's error, and the
compute and environment pages. Each leaves a screenshot under var/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from deployments.models import ComputeTarget, ComputeWorker, RemoteJob, Stage
from deployments.services import compute, jobs
from deployments.tests.factories import register, stored_snapshot, submit
from portal.services import jobs as portal_jobs
from tests.browser import login, shot, ws_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the worker's batches may take to show: the pane asks every second.
SHOWN_WITHIN_MS = 2500


@pytest.fixture(autouse=True)
def _no_messages(monkeypatch) -> None:
    """Submitting sends nothing to a broker: the tests play the worker."""
    monkeypatch.setattr(portal_jobs, "job_enqueue", lambda job, countdown=None: None)


def job_tab(cast, job: RemoteJob) -> str:
    return ws_path(cast, suffix=f"runs/{job.run.run_uuid}/?tab=job")


def running_job(cast, **options) -> RemoteJob:
    files = {"train.py": "print('hello')\n", "lib/data.py": "X = 1\n", "config/grid.yaml": "a: 1\n"}
    options.setdefault("snapshot_hash", stored_snapshot(cast, files))
    job = submit(cast, **options)
    jobs.remote_job_claim(job_id=job.pk, worker_hostname="gpu-node-1")
    jobs.remote_job_report(job_id=job.pk, stage="running", sandboxed=True)
    return RemoteJob.objects.select_related("run").get(pk=job.pk)


class Worker:
    """Appends to a job's log as a compute worker would, in ~1 s batches."""

    def __init__(self, job: RemoteJob) -> None:
        self.job_id = job.pk
        self.offset = RemoteJob.objects.get(pk=job.pk).log_bytes

    def write(self, text: str) -> None:
        self.offset = jobs.remote_job_log_append(job_id=self.job_id, offset=self.offset, text=text)[
            "log_bytes"
        ]


def pane_scroll(page: Page) -> dict:
    return page.locator("#job-log").evaluate(
        "p => ({top: p.scrollTop, bottom: p.scrollHeight - p.clientHeight})"
    )


def test_the_live_log_tails_what_the_worker_appends(page: Page, cast) -> None:
    job = running_job(
        cast, run_name="resnet-finetune", arguments=["--epochs", "40", "--lr", "3e-4"]
    )
    worker = Worker(job)
    worker.write("Loading data from /data/imagenet-mini … 3,923 images\n")
    login(page, "rita")  # a reader watches
    page.goto(job_tab(cast, job))
    pane = page.locator("#job-log")
    expect(pane).to_contain_text("Loading data")
    expect(page.locator(".log-state")).to_have_text("Live")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)

    # A line the worker sends shows within ~2 s, and only once.
    worker.write("epoch 001  loss=2.3012  acc=0.112\n")
    expect(pane).to_contain_text("epoch 001", timeout=SHOWN_WITHIN_MS)
    # Text that looks like HTML is shown as text, never run.
    worker.write("<script>window.__ran = 1</script><img src=x onerror=window.__ran=2>\n")
    expect(pane).to_contain_text("<script>window.__ran = 1</script>", timeout=SHOWN_WITHIN_MS)
    assert page.evaluate("window.__ran") is None
    assert pane.locator("script, img").count() == 0

    # Enough output to scroll: the pane follows the end.
    worker.write(
        "".join(f"epoch {i:03}  loss={2.3 / i:.4f}  acc={1 - 1 / i:.3f}\n" for i in range(2, 80))
    )
    expect(pane).to_contain_text("epoch 079", timeout=SHOWN_WITHIN_MS)
    page.wait_for_timeout(100)
    scroll = pane_scroll(page)
    assert scroll["bottom"] > 0 and scroll["top"] >= scroll["bottom"] - 2
    shot(page, "job-running-live-log")

    # Scrolled up, the reader stays where they are and is offered the way back down.
    pane.evaluate("p => { p.scrollTop = 0; }")
    worker.write("epoch 080  loss=0.0290  acc=0.987\n")
    follow = page.get_by_role("button", name="Follow the output")
    expect(follow).to_be_visible(timeout=SHOWN_WITHIN_MS)
    assert pane_scroll(page)["top"] == 0
    follow.click()
    expect(follow).to_be_hidden()
    assert pane_scroll(page)["top"] >= pane_scroll(page)["bottom"] - 2
    assert pane.inner_text().count("epoch 001") == 1

    # The job ends: the stage card says so, and the pane stops asking.
    jobs.remote_job_report(job_id=job.pk, stage="finalizing")
    worker.write("Uploading outputs/model.pt (44.7 MB)\n")
    jobs.remote_job_report(job_id=job.pk, stage="completed", exit_code=0)
    expect(page.locator("#job-status .stage-badge")).to_have_text("Completed", timeout=5000)
    expect(page.locator(".log-state")).to_have_text("Ended", timeout=SHOWN_WITHIN_MS)
    expect(pane).to_contain_text("Uploading outputs")
    expect(page.locator(".stage-timeline .step.done")).to_have_count(4)
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.wait_for_timeout(2500)
    assert not [url for url in asked if "/job/" in url]


def test_the_cancel_button_ends_a_queued_run(page: Page, cast) -> None:
    job = submit(cast, run_name="waiting-for-gpu")
    login(page, "carlos")  # a contributor
    page.goto(job_tab(cast, job))
    expect(page.locator("#job-status .stage-badge")).to_have_text("Queued")
    expect(page.locator(".job-stage-note")).to_contain_text("Waiting for a worker of local")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator(".flash.success")).to_have_text("Canceled: the run had not started.")
    expect(page.locator("#job-status .stage-badge")).to_have_text("Canceled")
    expect(page.locator(".run-status")).to_have_text("Killed")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    expect(page.locator(".error-tail")).to_contain_text("Canceled by carlos")
    expect(page.locator(".stage-timeline .step.skipped")).to_have_count(3)
    assert RemoteJob.objects.get(pk=job.pk).stage == Stage.CANCELED
    shot(page, "job-canceled")


def test_a_dismissed_confirmation_cancels_nothing(page: Page, cast) -> None:
    job = submit(cast)
    login(page, "carlos")
    page.goto(job_tab(cast, job))
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel run").click()
    page.wait_for_timeout(300)
    assert RemoteJob.objects.get(pk=job.pk).stage == Stage.QUEUED


def test_a_failed_run_shows_its_error_tail_and_exit_code(page: Page, cast) -> None:
    register(
        cast,
        "torch-env",
        ["torch==2.3.1", "torchvision", "mlflow"],
        python_version="3.11",
        env_vars={"WANDB_MODE": "offline", "OMP_NUM_THREADS": "4"},
    )
    job = running_job(
        cast, run_name="bad-alpha", environment="torch-env", arguments=["--alpha", "-1"]
    )
    worker = Worker(job)
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "train.py", line 42, in <module>\n'
        "    model = ElasticNet(alpha=args.alpha).fit(X, y)\n"
        "ValueError: alpha must be >= 0, got -1.0\n"
    )
    worker.write("Loading data\n" + traceback)
    jobs.remote_job_report(job_id=job.pk, stage="failed", exit_code=1, error=traceback)
    login(page, "rita")
    page.goto(job_tab(cast, job))
    expect(page.locator("#job-status .stage-badge")).to_have_text("Failed")
    expect(page.locator(".error-tail pre")).to_contain_text("ValueError: alpha must be >= 0")
    expect(page.locator(".exit-code")).to_have_text("1")
    expect(page.locator(".job-stage-note")).to_contain_text("exit code 1")
    expect(page.locator(".log-state")).to_have_text("Ended")
    # The environment's spec unfolds; the snapshot lists its files when asked.
    page.locator("details.env-spec summary").click()
    expect(page.locator("details.env-spec")).to_contain_text("torch==2.3.1")
    expect(page.locator("details.env-spec")).to_contain_text("WANDB_MODE")
    page.locator("details.snapshot-files summary").click()
    expect(page.locator(".files-table")).to_contain_text("lib/data.py")
    shot(page, "job-failed")


def test_compute_pages(page: Page, cast) -> None:
    gpu = compute.compute_target_create(
        actor=cast.owner,
        workspace=cast.workspace,
        name="gpu-cluster",
        max_nodes=4,
        description="4 × A100 nodes in rack 7",
    )
    now = timezone.now()
    for n, (version, age) in enumerate(
        [("0.4.0", timedelta(0)), ("0.4.0", timedelta(seconds=75)), ("0.3.9", timedelta(days=1))]
    ):
        ComputeWorker.objects.create(
            target=gpu, hostname=f"gpu-node-{n + 1}", slots=2, version=version, last_seen=now - age
        )
    running_job(cast, compute_name="gpu-cluster", run_name="resnet-50")
    submit(cast, compute_name="gpu-cluster", run_name="vit-base")
    done = running_job(cast, compute_name="gpu-cluster", run_name="baseline")
    jobs.remote_job_report(job_id=done.pk, stage="completed", exit_code=0)
    login(page, "carlos")
    page.goto(ws_path(cast))
    expect(page.get_by_role("heading", name="Recent remote runs")).to_be_visible()
    shot(page, "workspace-recent-remote-runs")
    page.locator(".sidebar").get_by_role("link", name="Compute").click()
    expect(page.get_by_role("heading", name="Compute", exact=True)).to_be_visible()
    rows = page.locator("table.compute-targets tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="gpu-cluster")).to_contain_text("gpu-node-1 alive")
    expect(rows.filter(has_text="gpu-cluster")).to_contain_text("gpu-node-2 stale")

    # A mistake is explained and what was typed stays; then the target is made.
    page.get_by_label("Name").fill("2fast")
    page.get_by_label("Description").fill("CPU pool")
    page.get_by_role("button", name="Create target").click()
    expect(page.locator(".flash.error")).to_contain_text("starting with a letter")
    expect(page.get_by_label("Description")).to_have_value("CPU pool")
    shot(page, "compute-list-error")
    page.get_by_label("Name").fill("cpu-pool")
    page.get_by_label("Max nodes").fill("8")
    page.get_by_role("button", name="Create target").click()
    expect(page.locator(".flash.success")).to_have_text("Compute target “cpu-pool” created.")
    expect(page.get_by_role("heading", name="cpu-pool")).to_be_visible()
    expect(page.locator("#worker-command")).to_contain_text("mlstudio-worker --studio http://")
    page.locator(".crumbs").get_by_role("link", name="Compute").click()
    expect(rows).to_have_count(3)
    shot(page, "compute-list")

    page.get_by_role("link", name="gpu-cluster").click()
    expect(page.get_by_role("heading", name="gpu-cluster")).to_be_visible()
    expect(page.locator("main")).to_contain_text("gpu-node-3")
    expect(page.locator("main")).to_contain_text("resnet-50")
    shot(page, "compute-target")
    # Deleting it is refused while it has unfinished runs.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete target").click()
    expect(page.locator(".flash.error")).to_contain_text("has 2 unfinished jobs")
    assert ComputeTarget.objects.filter(pk=gpu.pk).exists()
    # The run's link opens its Job tab.
    page.get_by_role("link", name="vit-base").click()
    expect(page.locator("#job-status .stage-badge")).to_have_text("Queued")


def test_a_target_without_jobs_is_deleted(page: Page, cast) -> None:
    compute.compute_target_create(actor=cast.owner, workspace=cast.workspace, name="spare")
    login(page, "carlos")
    page.goto(ws_path(cast, suffix="compute/spare/"))
    expect(page.locator(".empty").first).to_contain_text("No worker has reported")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete target").click()
    expect(page.locator(".flash.success")).to_have_text("Compute target “spare” deleted.")
    expect(page).to_have_url(re.compile(r"/compute/$"))
    assert not ComputeTarget.objects.filter(name="spare").exists()


def test_environment_pages(page: Page, cast) -> None:
    register(
        cast,
        "tabular",
        ["pandas==2.2.2"],
        ["pandas==2.2.2", "pyarrow", "scikit-learn==1.5.1", "xgboost"],
        python_version="3.11",
        env_vars={"HF_HOME": "/tmp/hf"},
        description="Tabular models",
    )
    login(page, "rita")
    page.goto(ws_path(cast))
    page.locator(".sidebar").get_by_role("link", name="Environments").click()
    rows = page.locator("table.environments tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("curated")
    expect(rows.filter(has_text="tabular")).to_contain_text("v2")
    shot(page, "environments")
    rows.filter(has_text="tabular").get_by_role("link", name="tabular").click()
    expect(page.get_by_role("heading", name=re.compile("tabular:2"))).to_be_visible()
    expect(page.locator("main")).to_contain_text("xgboost")
    page.get_by_role("link", name="v1").click()
    expect(page.get_by_role("heading", name=re.compile("tabular:1"))).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("xgboost")
    shot(page, "environment")
