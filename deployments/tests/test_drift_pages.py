"""The Drift tab of a service's page in headless Chromium: seeded windows charted per
feature over time, the newest window's contributions, the create form (a CSV upload) for
contributors and none for readers. Leaves /tmp/shots/service-drift.png."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from deployments.models import DriftMonitor
from deployments.services import drift as svc
from deployments.tests.drift_support import csv_bytes, frame, make_service, seed_samples
from portal.services import jobs as portal_jobs
from tests.browser import login, shot, ws_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 14
SHOTS = Path("/tmp/shots")


@pytest.fixture(autouse=True)
def _no_messages(monkeypatch) -> None:
    """Backfills from the page send nothing to a broker here."""
    monkeypatch.setattr(portal_jobs, "job_enqueue", lambda job, countdown=None: None)


def _seeded_monitor(cast, settings, tmp_path) -> DriftMonitor:
    """Two weeks of daily windows: calm, then bmi creeping up and the region mix tilting."""
    settings.DATA_DIR = tmp_path / "data"
    service = make_service(cast.workspace)
    monitor = svc.drift_monitor_create(
        actor=cast.owner,
        service=service,
        name="inputs",
        baseline_csv=csv_bytes(frame(1, 3000)),
        threshold=0.2,
        alert_emails=["ops@example.com"],
    )
    for day in range(DAYS):
        start = FIRST + timedelta(days=day)
        data = frame(100 + day, 250)
        if day >= 8:
            data["bmi"] += (day - 7) * 1.2
        if day >= 11:
            data["region"] = frame(200 + day, 250, shift=1.0)["region"]
        seed_samples(service, start, data)
        svc.drift_window_compute(
            monitor=monitor, start=start, end=start + timedelta(days=1), send_alerts=False
        )
    return monitor


def test_the_drift_tab_charts_each_feature_over_time(page, cast, settings, tmp_path):
    monitor = _seeded_monitor(cast, settings, tmp_path)
    drifted = monitor.results.filter(drifted=True).count()
    assert 0 < drifted < DAYS
    login(page, cast.owner.username)
    page.goto(ws_path(cast, suffix="services/diabetes-svc/?tab=drift"))
    expect(page.locator("#drift-magnitude-chart[data-ready='1']")).to_be_attached()
    assert page.locator("#drift-feature-charts .chart-box").count() == 4
    # The feature that moved most is charted first; its caption names its statistic.
    first = page.locator("#drift-feature-charts figcaption").first
    expect(first).to_contain_text("bmi · normed Wasserstein")
    expect(page.locator("[data-drift='drifted']")).to_have_text(f"{drifted} / {DAYS}")
    table = page.locator("#drift-latest-title").locator("xpath=ancestor::section")
    expect(table.locator("tbody tr").first).to_contain_text("bmi")
    expect(table).to_contain_text("Drifted")
    expect(page.get_by_role("link", name="monitoring run")).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "service-drift.png"), full_page=True)
    shot(page, "service-drift")


def test_contributors_create_a_monitor_from_a_csv_and_readers_only_look(
    new_page, cast, settings, tmp_path
):
    settings.DATA_DIR = tmp_path / "data"
    make_service(cast.workspace)
    baseline = tmp_path / "reference.csv"
    baseline.write_bytes(csv_bytes(frame(1, 500)))
    page = new_page()
    login(page, cast.contributor.username)
    page.goto(ws_path(cast, suffix="services/diabetes-svc/?tab=drift"))
    expect(page.get_by_text("No drift monitor watches this service")).to_be_visible()
    page.get_by_label("Name").fill("uploaded")
    page.get_by_label("Upload a CSV").check()
    page.get_by_label("Baseline CSV").set_input_files(str(baseline))
    page.get_by_label("Categorical").fill("region")
    page.get_by_label("Threshold").fill("0.3")
    page.get_by_role("button", name="Create monitor").click()
    expect(page.get_by_text("Drift monitor “uploaded” created.")).to_be_visible()
    monitor = DriftMonitor.objects.get(name="uploaded")
    assert monitor.baseline_kind == "csv" and monitor.threshold == 0.3
    assert monitor.categorical_features == ["region"]
    expect(page.get_by_text("uploaded CSV reference.csv · 500 rows, 4 columns")).to_be_visible()
    # A bad baseline is said on the page, not a server error.
    page.get_by_label("Name").fill("second")
    page.get_by_label("Training data of a run").check()
    page.get_by_role("button", name="Create monitor").click()
    expect(page.get_by_text("A run_input baseline needs run_id.")).to_be_visible()
    # The schedule switch.
    page.get_by_role("button", name="Turn schedule off").click()
    expect(page.get_by_text("Schedule off for “uploaded”.")).to_be_visible()
    monitor.refresh_from_db()
    assert monitor.enabled is False

    reader = new_page()
    login(reader, cast.reader.username)
    reader.goto(ws_path(cast, suffix="services/diabetes-svc/?tab=drift"))
    expect(reader.get_by_role("heading", name="uploaded")).to_be_visible()
    assert reader.get_by_role("button", name="Create monitor").count() == 0
    assert reader.get_by_role("button", name="Backfill").count() == 0
