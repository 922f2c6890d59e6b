"""The compare page (tracking.views.compare): access, content, messages, no history reads."""

from __future__ import annotations

import json
import math
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tracking.services.experiments import experiment_create
from tracking.services.runs import MetricIn, run_create, run_log_batch
from tracking.views.common import experiment_url, run_url, ws_kwargs

T0 = 1_700_000_000_000


def make_run(workspace, experiment, name, *, params=(), metrics=(), tags=()):
    run = run_create(
        workspace=workspace, experiment=experiment, user_id="t", start_time=T0, run_name=name
    )
    points = [
        MetricIn(key, 0.0 if math.isnan(v) else v, math.isnan(v), T0 + step, step)
        for key, v, step in metrics
    ]
    run_log_batch(run=run, metrics=points, params=list(params), tags=list(tags))
    return run


@pytest.fixture
def trio(cast):
    """Three runs of one experiment: lr differs, epochs is equal, optimizer is categorical."""
    experiment = experiment_create(workspace=cast.workspace, name="tuning", actor=None)
    runs = [
        make_run(
            cast.workspace,
            experiment,
            f"run-{i}",
            params=[("lr", str(0.1 / (i + 1))), ("epochs", "10"), ("optimizer", opt)],
            metrics=[("loss", 1.0 - i / 10, 0), ("loss", 0.5 - i / 10, 1), ("acc", 0.9, 1)],
            tags=[("team", "vision"), ("note", f"try {i}")],
        )
        for i, opt in enumerate(["adam", "sgd", "adam"])
    ]
    return experiment, runs


def page_url(cast, runs: str) -> str:
    return reverse("compare", kwargs=ws_kwargs(cast.workspace)) + f"?runs={runs}"


def ids(runs) -> str:
    return ",".join(run.run_uuid for run in runs)


def as_user(cast, who: str) -> Client:
    client = Client()
    client.force_login(cast.user(who))
    return client


def embedded(response) -> dict:
    match = re.search(
        r'<script id="compare-data" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, "the plot data is embedded in the page"
    return json.loads(match.group(1))


def diff_rows(response) -> dict[str, str]:
    """Diff table row key → its class ('differs' or 'same')."""
    html = response.content.decode()
    table = html[html.index('id="diff-table"') :]
    row = r'<tr class="(differs|same)">\s*<th scope="row" class="cmp-key" [^>]*>([^<]+)</th>'
    return {key: cls for cls, key in re.findall(row, table)}


# --- Access -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 200), ("contributor", 200), ("reader", 200), ("outsider", 404)],
)
def test_access(cast, trio, who, status):
    _, runs = trio
    response = as_user(cast, who).get(page_url(cast, ids(runs)))
    assert response.status_code == status
    if status == 404:
        assert b"run-0" not in response.content


def test_anonymous_is_sent_to_login(cast, trio):
    _, runs = trio
    response = Client().get(page_url(cast, ids(runs)))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- Content ------------------------------------------------------------------------------


def test_page_shows_runs_charts_and_plot_data(cast, trio):
    experiment, runs = trio
    response = as_user(cast, "reader").get(page_url(cast, ids(runs)))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Compare 3 runs" in html
    for run in runs:
        assert f'href="{run_url(run)}"' in html
    # One experiment: the breadcrumbs go through it.
    crumbs = html[html.index('class="crumbs"') : html.index("</nav>", html.index('class="crumbs"'))]
    assert f'href="{experiment_url(experiment)}"' in crumbs and "tuning" in crumbs
    # The chart component gets every run (in page order) and the union of metric keys.
    attrs = re.search(r"data-metric-charts[^>]*>", html).group(0)
    assert reverse("chart-metric", kwargs=ws_kwargs(cast.workspace)) in attrs
    runs_attr = json.loads(re.search(r'data-runs="([^"]*)"', attrs).group(1).replace("&quot;", '"'))
    assert runs_attr == [{"id": r.run_uuid, "name": r.name} for r in runs]
    assert '["acc","loss"]' in re.search(r'data-keys="([^"]*)"', attrs).group(1).replace(
        "&quot;", '"'
    )
    data = embedded(response)
    assert [r["name"] for r in data["runs"]] == ["run-0", "run-1", "run-2"]
    assert data["metrics"]["loss"] == [0.5, 0.4, 0.3]
    assert data["params"]["lr"] == {"kind": "number", "values": [0.1, 0.05, 0.1 / 3]}
    assert data["params"]["optimizer"] == {"kind": "category", "values": ["adam", "sgd", "adam"]}


def test_diff_table_marks_rows_that_differ(cast, trio):
    _, runs = trio
    response = as_user(cast, "owner").get(page_url(cast, ids(runs)))
    rows = diff_rows(response)
    assert rows == {
        "epochs": "same",
        "lr": "differs",
        "optimizer": "differs",
        "acc": "same",
        "loss": "differs",
        "note": "differs",
        "team": "same",
    }
    html = response.content.decode()
    assert "mlflow.runName" not in html.split('id="diff-table"')[1]  # system tags left out
    assert "4 of 7 rows differ" in html
    assert 'id="hide-equal"' in html


def test_runs_across_experiments_and_missing_values(cast, trio):
    _, runs = trio
    other = experiment_create(workspace=cast.workspace, name="baseline", actor=None)
    extra = make_run(
        cast.workspace,
        other,
        "run-0",  # the same name as another run: labels tell them apart
        params=[("lr", "auto")],
        metrics=[("loss", math.nan, 0), ("f1", math.inf, 0)],
    )
    response = as_user(cast, "owner").get(page_url(cast, ids([*runs, extra])))
    html = response.content.decode()
    assert "Across 2 experiments" in html
    crumbs = html[html.index('class="crumbs"') : html.index("</nav>", html.index('class="crumbs"'))]
    assert "tuning" not in crumbs and "baseline" not in crumbs
    data = embedded(response)
    labels = [r["label"] for r in data["runs"]]
    assert len(set(labels)) == 4 and labels[0].startswith("run-0 (")
    assert data["params"]["lr"]["kind"] == "category"  # "auto" is no number
    assert data["metrics"]["loss"][3] is None and data["metrics"]["f1"] == [None] * 4
    table = html.split('id="diff-table"')[1]
    assert '<td class="missing">—</td>' in table
    assert ">NaN</td>" in table and ">∞</td>" in table


def test_page_never_reads_metric_history(cast, trio):
    _, runs = trio
    client = as_user(cast, "owner")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(page_url(cast, ids(runs)))
    assert response.status_code == 200
    assert not [q for q in queries.captured_queries if "tracking_metricpoint" in q["sql"]]


def test_names_and_ids_are_escaped(cast):
    experiment = experiment_create(workspace=cast.workspace, name="<i>exp</i>", actor=None)
    runs = [
        make_run(cast.workspace, experiment, "<script>alert(1)</script>", params=[("p", "<b>")])
        for _ in range(2)
    ]
    response = as_user(cast, "owner").get(page_url(cast, ids(runs) + ",<img src=x>"))
    html = response.content.decode()
    assert "<script>alert(1)" not in html and "<img src=x>" not in html and "<b>" not in html
    assert "&lt;img src=x&gt;" in html  # named in the note, escaped


# --- Messages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, "Pick at least two runs"),
        ("ONE", 400, "Pick at least two runs"),
        (",".join(f"r{i}" for i in range(101)), 400, "Up to 100 runs"),
    ],
)
def test_bad_requests_explain_themselves(cast, trio, query, status, message):
    _, runs = trio
    query = query.replace("ONE", runs[0].run_uuid)
    response = as_user(cast, "owner").get(page_url(cast, query))
    assert response.status_code == status
    html = response.content.decode()
    assert message in html and "can't be compared" in html
    assert "Traceback" not in html and 'id="compare-data"' not in html


def test_unknown_and_foreign_ids_are_left_out_with_a_note(cast, trio):
    _, runs = trio
    foreign_exp = experiment_create(workspace=cast.other_workspace, name="theirs", actor=None)
    foreign = make_run(cast.other_workspace, foreign_exp, "secret-run")
    query = f"{runs[0].run_uuid},nope123,{foreign.run_uuid},{runs[1].run_uuid}"
    response = as_user(cast, "owner").get(page_url(cast, query))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Compare 2 runs" in html
    assert "2 run ids were not found in this workspace and left out: nope123, " in html
    assert "secret-run" not in html
    # The link to share names only the runs shown.
    assert f'value="http://testserver{page_url(cast, ids(runs[:2]))}"' in html


def test_none_found_is_404_and_one_found_explains(cast, trio):
    _, runs = trio
    client = as_user(cast, "owner")
    assert client.get(page_url(cast, "nope1,nope2")).status_code == 404
    response = client.get(page_url(cast, f"{runs[0].run_uuid},nope2"))
    assert response.status_code == 404
    html = response.content.decode()
    assert "Only one of these runs exists" in html and "nope2" in html


def test_no_metrics_or_params_show_empty_states(cast):
    experiment = experiment_create(workspace=cast.workspace, name="bare", actor=None)
    runs = [make_run(cast.workspace, experiment, f"bare-{i}") for i in range(2)]
    response = as_user(cast, "owner").get(page_url(cast, ids(runs)))
    html = response.content.decode()
    assert response.status_code == 200
    assert "None of these runs has logged a metric yet." in html
    assert "data-metric-charts" not in html
    assert "These runs have no params, metrics or tags." in html
