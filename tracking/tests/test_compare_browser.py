"""The compare page and the metric chart component (static/js/charts.js) in real Chromium,
on runs logged with the real mlflow client. Screenshots go to var/screenshots/compare-*.png."""

from __future__ import annotations

import json
import re
import time

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag
from playwright.sync_api import Page, expect

from tests.browser import SCREENSHOTS, login, shot, ws_path

pytestmark = pytest.mark.browser

LOSS_PLOT = '.mc-card[data-key="loss"] .mc-plot'


def log_runs(specs: list[dict]) -> list[str]:
    """Log runs through the mlflow client as a user would; returns their ids."""
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("compare-ui")
    ids = []
    for spec in specs:
        run_id = client.create_run(experiment, run_name=spec["name"]).info.run_id
        client.log_batch(
            run_id,
            metrics=spec.get("metrics", []),
            params=[Param(k, v) for k, v in spec.get("params", {}).items()],
            tags=[RunTag(k, v) for k, v in spec.get("tags", {}).items()],
        )
        client.set_terminated(run_id)
        ids.append(run_id)
    return ids


def start() -> int:
    """A moment just after the runs are created: points come after their run's start."""
    return int(time.time() * 1000) + 5000


def loss_curve(run: int, steps: int, spike_at: int | None = None) -> list[Metric]:
    t0 = start()
    return [
        Metric(
            "loss",
            1 / (1 + step / 200) + 0.03 * run + (2.5 if step == spike_at else 0),
            t0 + step * 1000,
            step,
        )
        for step in range(steps)
    ]


def three_runs() -> list[str]:
    """run-0 has a 5000-step loss with a spike (downsampled at the page's 2000 points)."""
    specs = []
    for i, (lr, optimizer) in enumerate([("0.1", "adam"), ("0.05", "sgd"), ("0.01", "adam")]):
        steps = 5000 if i == 0 else 400
        specs.append(
            {
                "name": f"run-{i}",
                "metrics": [
                    *loss_curve(i, steps, spike_at=3210 if i == 0 else None),
                    Metric("acc", 0.8 + i * 0.05, start() + steps * 1000, steps),
                ],
                "params": {"lr": lr, "optimizer": optimizer, "epochs": "10"},
                "tags": {"team": "vision", "note": f"try {i}"},
            }
        )
    return log_runs(specs)


def open_compare(page: Page, cast, ids: list[str]) -> list[str]:
    """Open the page and wait for the charts in view; returns the chart requests made."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/charts/metric/" in r.url else None)
    page.goto(ws_path(cast, suffix=f"compare/?runs={','.join(ids)}"))
    expect(page.locator("[data-metric-charts]")).to_have_attribute("data-ready", "1")
    return requests


def plot_eval(page: Page, script: str):
    return page.evaluate(f"() => {{ const p = document.querySelector('{LOSS_PLOT}'); {script} }}")


def test_compare_three_runs(page: Page, tracking, cast) -> None:
    ids = three_runs()
    login(page, "olivia")
    requests = open_compare(page, cast, ids)
    expect(page.get_by_role("heading", name="Compare 3 runs")).to_be_visible()
    expect(page.locator(".crumbs")).to_contain_text("compare-ui")
    for i in range(3):
        expect(page.locator(".cmp-runs").get_by_role("link", name=f"run-{i}")).to_have_attribute(
            "href", re.compile(rf"/runs/{ids[i]}/$")
        )

    loss = page.locator('.mc-card[data-key="loss"]')
    expect(loss).to_have_attribute("data-state", "drawn")
    expect(loss.locator(".legendtext")).to_have_text(["run-0", "run-1", "run-2"])
    expect(loss.locator(".scatterlayer .trace")).to_have_count(3)
    expect(loss.locator(".g-xtitle")).to_have_text("Step")
    expect(loss.locator(".g-ytitle")).to_have_text("loss")
    expect(loss.locator(".mc-foot")).to_contain_text("of 5,000 points")
    acc = page.locator('.mc-card[data-key="acc"]')
    expect(acc.locator(".scatterlayer .point")).to_have_count(3)  # one point each: markers
    # Each run has its palette colour in the chart and in the runs table.
    colours = plot_eval(page, "return p.data.map(t => t.line.color);")
    swatch = page.locator(".cmp-runs .cmp-swatch").first.evaluate(
        "s => getComputedStyle(s).backgroundColor"
    )
    assert len(set(colours)) == 3
    assert swatch == page.evaluate(
        "c => { const s = document.createElement('i'); s.style.color = c; document.body.append(s);"
        " const v = getComputedStyle(s).color; s.remove(); return v; }",
        colours[0],
    )
    # The spike at step 3210 survives the downsampling.
    assert plot_eval(page, "return p.data[0].x.includes(3210) && Math.max(...p.data[0].y);") > 2
    # Hover: run name, step, value and time.
    plot_eval(page, "Plotly.Fx.hover(p, [{curveNumber: 1, pointNumber: 10}]);")
    hover = loss.locator(".hoverlayer .hovertext")
    expect(hover).to_contain_text("run-1")
    expect(hover).to_contain_text("step 10")
    expect(hover).to_contain_text("value 0.98")
    expect(hover).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\+\d"))
    shot(page, "compare-01-page")
    plot_eval(page, "Plotly.Fx.unhover(p);")

    # Zoom in step mode: the visible range is fetched again, as raw points.
    before = len(requests)
    plot_eval(page, "return Plotly.relayout(p, {'xaxis.range': [3000, 3400]});")
    expect(loss).to_have_attribute("data-detail", "3000-3400")
    zoomed = [u for u in requests[before:] if "min_step=3000" in u and "max_step=3400" in u]
    assert len(zoomed) == 1
    assert plot_eval(page, "return p.data[0].x;") == list(range(3000, 3401))
    expect(loss.locator(".mc-foot")).to_contain_text("raw points")
    loss.scroll_into_view_if_needed()
    shot(page, "compare-02-zoomed")
    # Double-click (autorange) goes back to the overview without asking again.
    count = len(requests)
    plot_eval(page, "return Plotly.relayout(p, {'xaxis.autorange': true});")
    expect(loss.locator(".mc-foot")).to_contain_text("of 5,000 points")
    assert len(requests) == count

    # Toolbar: smoothing keeps the raw line faint, log scale, relative time.
    page.locator('[data-mc="smoothing"]').fill("0.8")
    expect(loss.locator(".scatterlayer .trace")).to_have_count(6)
    assert plot_eval(page, "return p.data.filter(t => t.opacity === 0.25).length;") == 3
    page.get_by_label("Log scale").check()
    page.wait_for_function(f"document.querySelector('{LOSS_PLOT}').layout.yaxis.type === 'log'")
    page.get_by_label("X axis").select_option("relative")
    expect(loss.locator(".g-xtitle")).to_have_text("Relative time (min)")
    page.get_by_label("X axis").select_option("wall")
    expect(loss.locator(".g-xtitle")).to_have_text("Wall time")
    shot(page, "compare-03-smoothed-log-walltime")

    # Latest values, scatter and parallel coordinates from the embedded data.
    bars = page.locator("#bar-plot")
    expect(bars.locator(".barlayer .point")).to_have_count(3)
    page.locator("#bar-metric").select_option("loss")
    expect(bars.locator(".g-ytitle")).to_have_text("loss")
    scatter = page.locator("#scatter-plot")
    expect(scatter.locator(".scatterlayer .point")).to_have_count(3)
    expect(scatter.locator(".g-xtitle")).to_have_text("lr")
    page.locator("#scatter-x").select_option("param:optimizer")
    expect(scatter.locator(".xtick text")).to_have_text(["adam", "sgd"])
    parcoords = page.locator("#parcoords-plot")
    parcoords.scroll_into_view_if_needed()
    expect(parcoords.locator(".parcoords")).to_have_count(1)
    labels = parcoords.evaluate("p => p.data[0].dimensions.map(d => d.label)")
    assert labels == ["lr", "optimizer", "acc"]  # epochs is equal everywhere: left out
    expect(page.locator("#parcoords-note")).to_contain_text("1 param with the same value")

    # Diff table: hide the equal rows and back.
    table = page.locator("#diff-table")
    epochs = table.locator("tr", has=page.locator("th", has_text=re.compile(r"^epochs$")))
    lr = table.locator("tr", has=page.locator("th", has_text=re.compile(r"^lr$")))
    expect(epochs).to_be_visible()
    expect(epochs).to_have_class("same")
    expect(lr).to_have_class("differs")
    page.get_by_label("Hide equal rows").check()
    expect(epochs).to_be_hidden()
    expect(lr).to_be_visible()
    expect(table.locator("tr", has_text="team")).to_be_hidden()
    table.scroll_into_view_if_needed()
    shot(page, "compare-04-hide-equal")
    page.get_by_label("Hide equal rows").uncheck()
    expect(epochs).to_be_visible()


def test_many_metrics_load_lazily_and_filter(page: Page, tracking, cast) -> None:
    keys = [f"metric_{i:02d}" for i in range(14)]
    ids = log_runs(
        [
            {
                "name": f"lazy-{r}",
                "metrics": [
                    Metric(key, (k + 1) * (r + 1) / (step + 1), start() + step, step)
                    for k, key in enumerate(keys)
                    for step in range(20)
                ],
            }
            for r in range(2)
        ]
    )
    login(page, "rita")  # a reader
    requests = open_compare(page, cast, ids)
    drawn = page.locator('.mc-card[data-state="drawn"]')
    first = len(requests)
    assert 0 < first < len(keys), "only the charts in view load at first"
    assert drawn.count() == first
    cards = page.locator(".mc-grid .mc-card")
    for index in range(cards.count()):  # scroll down the page as a person would
        cards.nth(index).scroll_into_view_if_needed()
    expect(drawn).to_have_count(len(keys))
    assert len(requests) == len(keys)

    search = page.get_by_label("Filter metrics")
    search.fill("1")
    expect(page.locator(".mc-card:visible")).to_have_count(5)  # 01 and 10..13
    expect(page.locator(".mc-count")).to_have_text("5 of 14 metrics")
    page.locator(".mc-toolbar").scroll_into_view_if_needed()
    shot(page, "compare-05-filtered")
    search.fill("nothing-like-this")
    expect(page.locator(".mc-nomatch")).to_be_visible()
    expect(page.locator(".mc-card:visible")).to_have_count(0)


def test_chart_empty_and_error_states(page: Page, tracking, cast) -> None:
    ids = log_runs([{"name": f"s-{i}", "metrics": loss_curve(i, 30)} for i in range(2)])
    login(page, "carlos")  # a contributor
    open_compare(page, cast, ids)
    url = page.locator("[data-metric-charts]").get_attribute("data-url")
    runs = json.dumps([{"id": i, "name": f"s-{n}"} for n, i in enumerate(ids)])
    page.evaluate(
        """([url, runs]) => {
          const section = document.querySelector("#history-title").parentElement;
          for (const [id, runList, keys] of [["empty", runs, '["never-logged"]'],
                                             ["broken", "[]", '["loss"]']]) {
            const div = document.createElement("div");
            div.id = id;
            div.dataset.metricCharts = "";
            div.dataset.url = url;
            div.dataset.runs = runList;
            div.dataset.keys = keys;
            section.append(div);
            MetricCharts.init(div);
          }
        }""",
        [url, runs],
    )
    empty = page.locator('#empty .mc-card[data-key="never-logged"]')
    empty.scroll_into_view_if_needed()  # charts load when they come into view
    expect(empty).to_have_attribute("data-state", "empty")
    expect(empty).to_contain_text("No data points for “never-logged” in these runs.")
    empty.screenshot(path=str(SCREENSHOTS / "compare-06-empty-chart.png"))
    broken = page.locator('#broken .mc-card[data-key="loss"]')
    broken.scroll_into_view_if_needed()
    expect(broken).to_have_attribute("data-state", "error")
    expect(broken.get_by_role("alert")).to_have_text(
        "Could not load this chart. Say which runs: ?runs=<run id>,<run id>."
    )
    shot(page, "compare-06-empty-and-error")

    # Fewer than two runs, and ids that exist nowhere: a message, not a stack trace.
    page.goto(ws_path(cast, suffix=f"compare/?runs={ids[0]}"))
    expect(page.get_by_role("heading", name="These runs can't be compared")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Pick at least two runs")
    shot(page, "compare-07-too-few")
    page.goto(ws_path(cast, suffix=f"compare/?runs={ids[0]},{ids[1]},not-a-run"))
    expect(page.get_by_role("status").filter(has_text="not-a-run")).to_contain_text(
        "1 run id was not found in this workspace and left out: not-a-run."
    )
    expect(page.locator("[data-metric-charts]")).to_have_attribute("data-ready", "1")
    shot(page, "compare-08-unknown-id-note")
