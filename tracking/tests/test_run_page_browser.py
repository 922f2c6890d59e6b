"""The run page in real headless Chromium: data logged with the real `mlflow` client, the
tabs, the artifact tree expanding through htmx, previews, and delete/restore. Every
page visited leaves a screenshot under var/screenshots/run-*.png."""

from __future__ import annotations

import io
import json
import math
import re

import mlflow
import pytest
from playwright.sync_api import Page, expect

from tests.browser import login, shot, ws_path
from tracking.artifacts import artifact_uri_path, join, store_for
from tracking.models import LatestMetric, Param, Run, RunTag
from tracking.services.experiments import now_ms

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")


def _png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 200), "white")
    draw = ImageDraw.Draw(image)
    for i in range(20):
        draw.rectangle([10 + i * 15, 190 - i * 8, 20 + i * 15, 190], fill=(37, 99, 235))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def log_training_run(tmp_path) -> tuple[str, str, str]:
    """A realistic run: params, tags, metric history, a dataset, child runs, artifacts
    and a registered sklearn model. Returns (run id, child run id, model id)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import ElasticNet

    mlflow.set_experiment("diabetes-regression")
    files = tmp_path / "upload"
    (files / "data").mkdir(parents=True)
    frame = pd.DataFrame(
        {"age": np.linspace(0.01, 0.2, 40), "bmi": np.linspace(0.3, -0.1, 40), "target": range(40)}
    )
    frame.to_csv(files / "data" / "predictions.csv", index=False)
    (files / "data" / "features.tsv").write_text("feature\timportance\nbmi\t0.61\nage\t0.12\n")
    (files / "plots").mkdir()
    (files / "plots" / "residuals.png").write_bytes(_png())
    (files / "plots" / "pipeline.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
        '<script>document.title = "svg ran"</script>'
        '<rect width="120" height="40" rx="6" fill="#2563eb"/></svg>'
    )
    X, y = frame[["age", "bmi"]].to_numpy(), frame["target"].to_numpy()
    with mlflow.start_run(
        run_name="elasticnet-tuning", description="Grid over alpha and l1_ratio."
    ) as run:
        mlflow.log_params(
            {"alpha": 0.05, "l1_ratio": 0.3, "max_iter": 1000, "solver": "coordinate-descent"}
        )
        mlflow.set_tags({"team": "health", "dataset.version": "2024-06"})
        for step in range(60):
            mlflow.log_metrics(
                {"rmse": 60 * math.exp(-step / 15) + 5, "r2": 1 - math.exp(-step / 12)},
                step=step,
            )
        mlflow.log_input(
            mlflow.data.from_pandas(frame, source="s3://data/diabetes.csv", name="diabetes"),
            context="training",
        )
        mlflow.log_text(
            "".join(f"epoch {i:03} rmse={60 * math.exp(-i / 15) + 5:.3f}\n" for i in range(60)),
            "logs/train.log",
        )
        mlflow.log_dict({"alpha": 0.05, "grid": {"l1_ratio": [0.1, 0.3, 0.5]}}, "config.json")
        mlflow.log_artifacts(str(files))
        model = ElasticNet(alpha=0.05, l1_ratio=0.3).fit(X, y)
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X[:2], registered_model_name="diabetes-elasticnet"
        )
        child_id = ""
        for fold in range(3):
            with mlflow.start_run(run_name=f"fold-{fold}", nested=True) as child:
                mlflow.log_metric("rmse", 7 + fold * 0.4)
                mlflow.log_metric("r2", 0.8 - fold * 0.03)
                child_id = child_id or child.info.run_id
    return run.info.run_id, child_id, info.model_id


def run_page(cast, run_id: str, query: str = "") -> str:
    return ws_path(cast, suffix=f"runs/{run_id}/{query}")


def test_run_page_tabs_tree_and_previews(page: Page, tracking, cast, tmp_path) -> None:
    run_id, child_id, model_id = log_training_run(tmp_path)
    login(page, "olivia")
    page.goto(run_page(cast, run_id))
    expect(page.get_by_role("heading", name=re.compile("elasticnet-tuning"))).to_be_visible()
    expect(page.locator(".run-status")).to_have_text("Finished")
    expect(page.locator("#params-table")).to_contain_text("coordinate-descent")
    expect(page.locator("#metrics-table")).to_contain_text("rmse")
    expect(page.locator("main")).to_contain_text("Grid over alpha and l1_ratio.")
    expect(page.locator("main")).to_contain_text("s3://data/diabetes.csv")
    expect(page.locator(".crumbs")).to_contain_text("diabetes-regression")
    expect(page.get_by_role("button", name="Delete", exact=True)).to_be_visible()
    shot(page, "run-overview")

    # System tags stay folded until asked for.
    system = page.locator("details.system-tags")
    expect(system.locator("table")).to_be_hidden()
    system.locator("summary").click()
    expect(system.locator("table")).to_contain_text("mlflow.user")

    # Metrics: the shared chart component's container, with what it needs.
    page.get_by_role("link", name=re.compile("^Metrics")).click()
    charts = page.locator("[data-metric-charts]")
    assert json.loads(charts.get_attribute("data-keys")) == ["r2", "rmse"]
    expect(charts).to_have_attribute("data-ready", "1")
    expect(charts.locator(".js-plotly-plot")).to_have_count(2)
    shot(page, "run-metrics")

    # Artifacts: expand a folder (htmx), then preview each kind.
    page.get_by_role("link", name="Artifacts").click()
    tree = page.locator(".artifact-browser")
    expect(tree).to_contain_text("config.json")
    expect(tree).not_to_contain_text("predictions.csv")
    tree.locator("summary", has_text="data").click()
    expect(tree.get_by_role("link", name="predictions.csv", exact=True)).to_be_visible()
    shot(page, "run-artifacts-expanded")

    pane = page.locator("#artifact-preview")
    tree.get_by_role("link", name="predictions.csv", exact=True).click()
    expect(pane.locator("table")).to_contain_text("bmi")
    expect(pane).to_contain_text("40 rows")
    expect(page).to_have_url(re.compile(r"tab=artifacts&path=data/predictions.csv"))
    shot(page, "run-preview-csv")

    tree.get_by_role("link", name="features.tsv", exact=True).click()
    expect(pane.locator("table")).to_contain_text("importance")

    tree.locator("summary", has_text="plots").click()
    tree.get_by_role("link", name="residuals.png", exact=True).click()
    image = pane.locator(".preview-image img")
    expect(image).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('.preview-image img');"
        " return i && i.complete && i.naturalWidth === 320; }"
    )
    shot(page, "run-preview-image")

    # SVG only ever as an <img>: it shows, and its script never runs.
    tree.get_by_role("link", name="pipeline.svg", exact=True).click()
    page.wait_for_function(
        "() => { const i = document.querySelector('.preview-image img');"
        " return i && i.src.includes('pipeline.svg') && i.complete && i.naturalWidth === 120; }"
    )
    assert page.title() != "svg ran"

    tree.locator("summary", has_text="logs").click()
    tree.get_by_role("link", name="train.log", exact=True).click()
    expect(pane.locator("pre")).to_contain_text("epoch 059")
    shot(page, "run-preview-log")

    tree.get_by_role("link", name="config.json", exact=True).click()
    expect(pane.locator("pre")).to_contain_text('"l1_ratio": [')
    shot(page, "run-preview-json")

    # The logged model's own files: a root of its own, listed when opened.
    model_root = page.locator("details.artifact-root", has_text=model_id)
    model_root.locator("summary").first.click()
    expect(model_root.get_by_role("link", name="MLmodel", exact=True)).to_be_visible()
    model_root.get_by_role("link", name="MLmodel", exact=True).click()
    expect(pane.locator(".mlmodel")).to_contain_text("python_function")
    expect(pane.locator(".mlmodel")).to_contain_text("sklearn_version")
    expect(pane.locator(".signature")).to_contain_text("Inputs")
    shot(page, "run-preview-mlmodel")

    # Reloading keeps the file open: the URL pushed is the page's own.
    page.reload()
    expect(pane.locator(".mlmodel")).to_contain_text("python_function")
    expect(page.locator(".node.file.selected")).to_have_text(re.compile("MLmodel"))

    # Child runs and models.
    page.get_by_role("link", name=re.compile("^Child runs")).click()
    expect(page.locator("table.children tbody tr")).to_have_count(3)
    expect(page.locator("table.children")).to_contain_text("fold-2")
    shot(page, "run-children")
    page.locator("table.children").get_by_role("link", name="fold-0").click()
    expect(page.locator("main")).to_contain_text("elasticnet-tuning")  # parent link
    assert child_id in page.url

    page.goto(run_page(cast, run_id, "?tab=models"))
    expect(page.locator("main")).to_contain_text(model_id)
    expect(page.get_by_role("link", name="diabetes-elasticnet")).to_be_visible()
    shot(page, "run-models")


def test_errors_and_empty_states(page: Page, tracking, cast) -> None:
    mlflow.set_experiment("empty")
    with mlflow.start_run(run_name="nothing-yet") as run:
        pass
    run_id = run.info.run_id
    login(page, "rita")
    page.goto(run_page(cast, run_id))
    expect(page.locator("main")).to_contain_text("No parameters logged.")
    expect(page.get_by_role("button", name="Delete", exact=True)).to_have_count(0)
    shot(page, "run-empty-overview")
    page.goto(run_page(cast, run_id, "?tab=artifacts"))
    expect(page.locator(".artifact-browser")).to_contain_text("No artifacts logged")
    shot(page, "run-empty-artifacts")
    page.goto(run_page(cast, run_id, "?tab=metrics"))
    expect(page.locator("main")).to_contain_text("No metrics yet")
    shot(page, "run-empty-metrics")
    page.goto(run_page(cast, run_id, "?tab=artifacts&path=..%2F..%2Fetc%2Fpasswd"))
    expect(page.locator("#artifact-preview .pane-message")).to_contain_text("Invalid path")
    shot(page, "run-artifact-bad-path")
    page.goto(run_page(cast, run_id, "artifacts/file/?path=missing.txt"))
    expect(page.locator(".flash.error")).to_contain_text("No such artifact")
    shot(page, "run-artifact-missing")
    response = page.goto(run_page(cast, "0" * 32))
    assert response is not None and response.status == 404

    # A file removed after the tree was drawn: the pane says so (an htmx 404 is swapped in).
    with mlflow.start_run(run_name="short-lived-files") as other:
        mlflow.log_text("soon gone", "notes/gone.txt")
    page.goto(run_page(cast, other.info.run_id, "?tab=artifacts"))
    page.locator(".artifact-browser summary", has_text="notes").click()
    link = page.get_by_role("link", name="gone.txt", exact=True)
    expect(link).to_be_visible()
    store_for(cast.workspace).delete(
        join(artifact_uri_path(Run.objects.get(run_uuid=other.info.run_id).artifact_uri), "notes")
    )
    link.click()
    expect(page.locator("#artifact-preview .pane-message")).to_have_text(
        "No such artifact: 'notes/gone.txt'."
    )
    shot(page, "run-artifact-vanished")


def test_big_run_stays_readable(page: Page, tracking, cast) -> None:
    mlflow.set_experiment("sweep")
    with mlflow.start_run(run_name="wide-run") as run:
        pass
    db_run = Run.objects.get(run_uuid=run.info.run_id)
    Param.objects.bulk_create(
        [
            Param(run=db_run, key=f"layer_{i:03}.units", value=str(16 * (i % 9 + 1)))
            for i in range(500)
        ]
    )
    RunTag.objects.bulk_create(
        [RunTag(run=db_run, key=f"note_{i:02}", value="x" * (i * 7)) for i in range(30)]
    )
    LatestMetric.objects.bulk_create(
        [
            LatestMetric(
                run=db_run, key=f"val/loss_{i:03}", value=1 / (i + 1), timestamp=now_ms(), step=i
            )
            for i in range(200)
        ]
    )
    login(page, "olivia")
    page.goto(run_page(cast, run.info.run_id))
    rows = page.locator("#params-table tbody tr:not(.no-match)")
    expect(rows).to_have_count(500)
    # The panels scroll inside themselves: the page stays about one screen long.
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 2000, height
    page.get_by_label("Filter parameters").fill("layer_042")
    expect(page.locator("#params-table tbody tr:visible")).to_have_count(1)
    page.get_by_label("Filter metrics").fill("nothing-like-this")
    expect(page.locator("#metrics-table tr.no-match")).to_be_visible()
    shot(page, "run-big-filtered")


def test_contributor_deletes_and_restores(page: Page, tracking, cast) -> None:
    mlflow.set_experiment("lifecycle")
    with mlflow.start_run(run_name="short-lived") as run:
        mlflow.log_param("x", 1)
    login(page, "carlos")
    page.goto(run_page(cast, run.info.run_id))
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".run-banner")).to_contain_text("This run is deleted.")
    expect(page.locator(".flash")).to_contain_text("Deleted 1 run")
    shot(page, "run-deleted-contributor")
    page.get_by_role("button", name="Restore").click()
    expect(page.locator(".run-banner")).to_have_count(0)
    expect(page.locator(".flash")).to_contain_text("Restored 1 run")

    mlflow.MlflowClient().delete_run(run.info.run_id)
    reader = page.context.browser.new_context(base_url=page.url.split("/subscriptions")[0])
    reader_page = reader.new_page()
    login(reader_page, "rita")
    reader_page.goto(run_page(cast, run.info.run_id))
    expect(reader_page.locator(".run-banner")).to_contain_text("Ask a contributor")
    expect(reader_page.get_by_role("button", name="Restore")).to_have_count(0)
    shot(reader_page, "run-deleted-reader")
    reader.close()
