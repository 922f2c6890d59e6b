"""The walk a data scientist takes through the studio, end to end, in real Chromium.

Runs are logged by the real `mlflow` client against the live server; the resource
group is deleted by a real Celery worker process. The walk: log in, open the
workspace, find an experiment by typing part of its name, filter its runs, compare
three runs in charts, preview an artifact, delete a run and restore it, then delete
the resource group by typing its name and watch the job finish with the stored
artifacts gone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from conftest import start_worker, stop_worker
from portal.models import DeletionJob, ResourceGroup, Workspace
from tests.browser import login, rg_path, shot, ws_path
from tests.test_deletion import producer_on_worker_broker  # noqa: F401 - fixture
from tracking.models import Run
from tracking.tests.conftest import tracking  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def log_runs() -> dict[str, str]:
    """Two experiments; the fraud one has four runs with histories, one with artifacts."""
    import mlflow

    mlflow.set_experiment("churn-baseline")
    with mlflow.start_run(run_name="churn-0"):
        mlflow.log_metric("auc", 0.61)
    mlflow.set_experiment("fraud-detection-xgb")
    ids = {}
    for i, (depth, lr) in enumerate([(4, 0.1), (6, 0.1), (6, 0.03), (8, 0.03)]):
        with mlflow.start_run(run_name=f"xgb-{i}") as run:
            mlflow.log_params({"max_depth": depth, "learning_rate": lr})
            for step in range(40):
                mlflow.log_metric("loss", 1.0 / (1 + step * lr * depth), step=step)
            mlflow.log_metric("auc", 0.8 + i / 50)
            if i == 1:
                mlflow.log_text("epoch 1: loss 0.52\nepoch 2: loss 0.31\n", "logs/train.log")
                mlflow.log_dict({"max_depth": depth, "features": ["amount", "hour"]}, "cfg.json")
            ids[f"xgb-{i}"] = run.info.run_id
    return ids


def test_the_studio_walk(
    page: Page,
    live_server,
    cast,
    tracking,  # noqa: F811 - the real mlflow client against the live server
    tmp_path,
    producer_on_worker_broker,  # noqa: F811 - this process enqueues to the worker's folder
) -> None:
    ids = log_runs()
    artifact_root = Path(cast.workspace.artifact_root)
    assert any(artifact_root.rglob("train.log"))

    # Log in and open the workspace.
    login(page, "olivia")
    page.get_by_role("link", name="ws-main").first.click()
    expect(page.get_by_role("heading", name="ws-main")).to_be_visible()
    page.locator(".sidebar").get_by_role("link", name="Experiments").click()
    rows = page.locator("#experiment-table tbody tr")
    expect(rows).to_have_count(3)  # the two logged, and the Default every workspace has
    expect(rows.filter(has_text="Default")).to_have_count(1)
    shot(page, "walk-01-experiments")

    # Find the experiment by typing part of its name.
    page.get_by_label("Search experiments by name").fill("XGB")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("fraud-detection-xgb")
    expect(page).to_have_url(re.compile(r"\?q=XGB"))
    shot(page, "walk-02-search")
    rows.first.get_by_role("link", name="fraud-detection-xgb").click()
    expect(page.get_by_role("heading", name="fraud-detection-xgb")).to_be_visible()
    run_rows = page.locator("table.runs tbody tr")
    expect(run_rows).to_have_count(4)

    # Filter the runs with MLflow's syntax; a mistake is explained, then fixed.
    page.get_by_label("Filter runs (MLflow search syntax)").fill("params.max_depth = 6 and")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".filter-error")).to_contain_text("search with this filter")
    page.get_by_label("Filter runs (MLflow search syntax)").fill('params.max_depth = "6"')
    page.get_by_role("button", name="Search").click()
    expect(run_rows).to_have_count(2)
    expect(page.locator("table.runs")).to_contain_text("xgb-1")
    expect(page.locator("table.runs")).not_to_contain_text("xgb-3")
    shot(page, "walk-03-filtered")

    # Compare three runs in charts.
    page.get_by_label("Filter runs (MLflow search syntax)").fill("")
    page.get_by_role("button", name="Search").click()
    expect(run_rows).to_have_count(4)
    for name in ("xgb-0", "xgb-1", "xgb-2"):
        page.get_by_label(f"Select {name}").check()
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"/compare/\?runs="))
    charts = page.locator("[data-metric-charts]")
    expect(charts).to_have_attribute("data-ready", "1")
    loss_chart = page.locator(".js-plotly-plot", has_text="loss").first
    expect(loss_chart.locator(".legendtext")).to_have_count(3)
    expect(page.locator("#diff-table")).to_contain_text("max_depth")
    shot(page, "walk-04-compare")

    # Open an artifact preview on a run page.
    page.get_by_role("link", name="xgb-1").first.click()
    expect(page.get_by_role("heading", name="xgb-1")).to_be_visible()
    page.get_by_role("link", name=re.compile("^Artifacts")).click()
    page.locator("summary", has_text="logs").click()
    page.get_by_role("link", name="train.log", exact=True).click()
    expect(page.locator("#artifact-preview")).to_contain_text("epoch 2: loss 0.31")
    shot(page, "walk-05-artifact-preview")

    # Delete the run and restore it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".flash.success")).to_contain_text("Deleted 1 run")
    assert Run.objects.get(run_uuid=ids["xgb-1"]).lifecycle_stage == "deleted"
    page.goto(ws_path(cast, suffix=f"runs/{ids['xgb-1']}/"))
    expect(page.get_by_role("alert").filter(has_text="deleted")).to_be_visible()
    shot(page, "walk-06-run-deleted")
    page.get_by_role("button", name="Restore").click()
    expect(page.locator(".flash.success")).to_contain_text("Restored 1 run")
    assert Run.objects.get(run_uuid=ids["xgb-1"]).lifecycle_stage == "active"

    # Delete the resource group by typing its name; a real worker purges it.
    worker = start_worker(tmp_path, "filesystem")
    try:
        page.goto(rg_path(cast))
        page.get_by_role("link", name="Delete resource group").click()
        page.get_by_label("Type the resource group name to confirm").fill("rg-main")
        shot(page, "walk-07-delete-confirm")
        page.get_by_role("button", name="Delete resource group").click()
        expect(page.locator("#job-status .badge")).to_have_text("Succeeded", timeout=90_000)
        expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
        shot(page, "walk-08-delete-done")
        assert "portal.tasks.deletion_job_run" in worker.log.read_text()
    finally:
        stop_worker(worker)
    job = DeletionJob.objects.get()
    assert job.status == "succeeded", job.error
    assert not artifact_root.exists()
    assert not ResourceGroup.objects.filter(pk=cast.resource_group.pk).exists()
    assert not Workspace.objects.filter(pk=cast.workspace.pk).exists()
    assert not Run.objects.filter(run_uuid__in=ids.values()).exists()
