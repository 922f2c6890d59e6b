"""The web services pages in real headless Chromium: the Monitoring tab draws its three
plotly charts from the metrics API with seeded telemetry (and redraws for another
range), "Show keys" reveals the keys to a contributor, and the services list. Each
leaves a screenshot under var/screenshots/ (and /tmp/shots/ for the issue's record)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from deployments.models import Image, ImageBuildJob, WebService
from deployments.services import images as image_svc
from deployments.tests.monitoring_support import make_image, make_service, seed_traffic
from portal.secrets import decrypt
from tests.browser import SCREENSHOTS, login, shot, ws_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots")
# What each chart draws, by trace name.
TRACES = {"requests": ["requests/min"], "latency": ["p50", "p95", "p99"], "errors": ["error rate"]}


def keep(name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCREENSHOTS / f"{name}.png", SHOTS / f"{name}.png")


def drawn(page: Page) -> dict[str, list[dict]]:
    """Each chart's plotly traces: name, points, sum of y, and whether an SVG path is drawn."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-chart]')].map(el => [
            el.dataset.chart,
            (el.data || []).map(t => ({
                name: t.name, points: t.y.length,
                sum: t.y.reduce((a, b) => a + (b || 0), 0),
                nulls: t.y.filter(v => v === null).length,
            })).concat([{svg: el.querySelectorAll('.scatterlayer .trace path.js-line').length}]),
        ]))"""
    )


def test_the_monitoring_tab_draws_its_three_charts(page: Page, cast) -> None:
    service, _ = make_service(cast)
    seed_traffic(service, minutes=26 * 60)
    login(page, "rita")  # a reader
    page.goto(ws_path(cast, suffix=f"services/{service.name}/?tab=monitoring"))
    monitor = page.locator("#service-monitor")
    expect(monitor).to_have_attribute("data-ready", "1")
    charts = drawn(page)
    for chart, names in TRACES.items():
        *traces, svg = charts[chart]
        assert [t["name"] for t in traces] == names
        assert svg["svg"] == len(names), chart  # one drawn line per trace
        assert all(55 <= t["points"] <= 61 for t in traces)  # a point per minute of the hour
    # The charts draw what the metrics API answered, point for point; the API's numbers
    # themselves are test_monitoring's.
    api = page.evaluate("() => document.getElementById('service-monitor').lastMetrics")
    shown = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-chart]')]
            .flatMap(el => el.data.map(t => [t.name, t.y])))"""
    )
    series = api["series"]
    assert shown["requests/min"] == series["requests_per_minute"]
    assert shown["p50"] == series["p50_ms"] and shown["p99"] == series["p99_ms"]
    assert shown["error rate"] == series["error_rate"]
    assert sum(series["requests"]) == api["totals"]["requests"] > 2000
    p50, _, p99 = charts["latency"][:3]
    assert p99["sum"] > p50["sum"] > 0
    tile = page.locator('[data-total="requests"]')
    expect(tile).to_have_text(f"{api['totals']['requests']:,}")
    expect(page.locator("[data-chart-status]")).to_be_hidden()
    expect(page.locator("table.samples tbody tr")).to_have_count(24)
    shot(page, "service-monitoring")
    keep("service-monitoring")

    # Another range: coarser buckets, the same three charts.
    page.get_by_role("button", name="24h").click()
    expect(page.get_by_role("button", name="24h")).to_have_attribute("aria-pressed", "true")
    expect(monitor).to_have_attribute("data-ready", "1")
    expect(page.locator("[data-range-note]")).to_contain_text("5-minute buckets")
    charts = drawn(page)
    for chart, names in TRACES.items():
        *traces, svg = charts[chart]
        assert [t["name"] for t in traces] == names and svg["svg"] == len(names)
        assert all(287 <= t["points"] <= 289 for t in traces)
    page.get_by_role("button", name="7d").click()
    expect(page.locator("[data-range-note]")).to_contain_text("30-minute buckets")
    expect(monitor).to_have_attribute("data-ready", "1")


def test_a_service_without_traffic_says_so(page: Page, cast) -> None:
    service, _ = make_service(cast)
    login(page, "rita")
    page.goto(ws_path(cast, suffix=f"services/{service.name}/?tab=monitoring"))
    expect(page.locator("#service-monitor")).to_have_attribute("data-ready", "1")
    expect(page.locator("[data-chart-status]")).to_have_text("No requests in this range yet.")
    assert all(len(c) == len(TRACES[k]) + 1 for k, c in drawn(page).items())


def test_show_keys_reveals_them_to_a_contributor_only(page: Page, new_page, cast) -> None:
    service, _ = make_service(cast)
    primary = decrypt(service.primary_key)
    login(page, "carlos")
    page.goto(ws_path(cast, suffix=f"services/{service.name}/"))
    expect(page.locator("#sample-curl")).to_contain_text("Bearer <primary key>")
    assert primary not in page.content()
    page.get_by_role("button", name="Show keys").click()
    expect(page.locator("#key-primary")).to_have_text(primary)
    expect(page.locator("#key-secondary")).to_have_text(decrypt(service.secondary_key))
    page.evaluate("window.scrollTo(0, 0)")  # the sticky bar stays on top in the shot
    shot(page, "service-overview")

    reader = new_page()
    login(reader, "rita")
    reader.goto(ws_path(cast, suffix=f"services/{service.name}/"))
    expect(reader.locator("#sample-curl")).to_be_visible()
    expect(reader.get_by_role("button", name="Show keys")).to_have_count(0)
    assert primary not in reader.content()


def test_the_services_list(page: Page, cast) -> None:
    image = make_image(cast)
    busy, _ = make_service(
        cast,
        name="diabetes-model-1",
        image=image,
        scoring_uri="http://127.0.0.1:32001/score",
    )
    seed_traffic(busy, minutes=90)
    quiet, _ = make_service(
        cast,
        name="diabetes-model-2",
        image=image,
        compute_type=WebService.ComputeType.KUBERNETES,
        scoring_uri="http://diabetes-model-2.ml.example.com/score",
        description="Canary on the cluster",
    )
    seed_traffic(quiet, minutes=20, seed=3)
    make_service(
        cast,
        name="churn-model",
        image=image,
        state=WebService.State.TRANSITIONING,
        scoring_uri="",
        compute_type=WebService.ComputeType.LOCAL,
    )
    make_service(
        cast,
        name="fraud-scorer",
        image=image,
        state=WebService.State.FAILED,
        scoring_uri="",
        error="The scoring server exited with code 1.",
    )
    login(page, "rita")
    page.goto(ws_path(cast, suffix="services/"))
    rows = page.locator("table.services tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text("churn-model")
    expect(page.locator('tr[data-service="diabetes-model-1"] .badge')).to_have_text("Healthy")
    expect(page.locator('tr[data-service="fraud-scorer"] .badge')).to_have_text("Failed")
    expect(page.locator(".sidebar a.active")).to_have_text("Web services")
    shot(page, "services-list")
    keep("services-list")
    page.locator('tr[data-service="diabetes-model-1"] a.strong').click()
    expect(page.get_by_role("heading", name="diabetes-model-1")).to_be_visible()


def test_a_building_image_shows_its_progress_until_it_is_built(page: Page, cast) -> None:
    image = make_image(
        cast,
        state=Image.State.RUNNING,
        build_log="== Copying the model: sklearn-model:1\n12 files\n",
        base_image="python:3.11-slim",
    )
    job = ImageBuildJob.objects.create(
        kind=image_svc.KIND,
        label="build",
        image=image,
        workspace=cast.workspace,
        status="running",
        phase="Building the Python environment",
        progress_done=3,
        progress_total=5,
    )
    login(page, "rita")
    page.goto(ws_path(cast, suffix="images/"))
    expect(page.locator('tr[data-image="sklearn-image:1"] [role=progressbar]')).to_have_attribute(
        "aria-valuenow", "60"
    )
    page.locator('tr[data-image="sklearn-image:1"] a.strong').click()
    status = page.locator("#image-status")
    expect(status.locator(".badge")).to_have_text("Building")
    expect(status).to_contain_text("Building the Python environment")
    shot(page, "image-building")
    # The worker finishes: the card, polling every 2 s, shows it without a reload.
    Image.objects.filter(pk=image.pk).update(
        state=Image.State.SUCCEEDED,
        build_log=image.build_log + "== Building the container image\n== Done\n",
    )
    ImageBuildJob.objects.filter(pk=job.pk).update(status="succeeded", progress_done=5)
    expect(status.locator(".badge")).to_have_text("Succeeded", timeout=6000)
    expect(status.locator("pre.build-log")).to_contain_text("== Done")
    expect(status.locator("[role=progressbar]")).to_have_count(0)
    shot(page, "image-built")
