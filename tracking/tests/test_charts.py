"""Chart data: the `chart-metric` endpoint and the downsampling selector behind it
(tracking.selectors.metrics.chart_history)."""

from __future__ import annotations

import math
import random

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tracking.selectors.metrics import chart_history
from tracking.services.experiments import experiment_create
from tracking.services.runs import MetricIn, run_create, run_log_batch
from tracking.views.common import ws_kwargs

T0 = 1_700_000_000_000
SPIKE_STEP, SPIKE = 12_345, 1e6
DIP_STEP, DIP = 777, -1e6


# --- Builders ---------------------------------------------------------------------------


def make_run(workspace, name: str, experiment=None):
    experiment = experiment or experiment_create(
        workspace=workspace, name=f"exp-{name}", actor=None
    )
    return run_create(
        workspace=workspace, experiment=experiment, user_id="t", start_time=T0, run_name=name
    )


def log_points(run, key: str, points: list[tuple[int, float]], *, ts=lambda step: T0 + step):
    """(step, value) points through the logging service, 1000 a batch as clients send them."""
    metrics = [
        MetricIn(key, 0.0 if math.isnan(v) else v, math.isnan(v), ts(step), step)
        for step, v in points
    ]
    for start in range(0, len(metrics), 1000):
        run_log_batch(run=run, metrics=metrics[start : start + 1000])


def wave(n: int) -> list[tuple[int, float]]:
    """n steps of a smooth curve, with one spike and one dip that sampling must keep."""
    values = [(step, 1.0 / (1 + step / 1000) + 0.01 * math.sin(step / 40)) for step in range(n)]
    values[SPIKE_STEP] = (SPIKE_STEP, SPIKE)
    values[DIP_STEP] = (DIP_STEP, DIP)
    return values


def url(cast) -> str:
    return reverse("chart-metric", kwargs=ws_kwargs(cast.workspace))


def get(client: Client, cast, **params):
    return client.get(url(cast), params)


@pytest.fixture
def owner(cast) -> Client:
    client = Client()
    client.force_login(cast.owner)
    return client


@pytest.fixture
def long_run(cast):
    run = make_run(cast.workspace, "long")
    log_points(run, "loss", wave(20_000))
    return run


# --- Access -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 200), ("contributor", 200), ("reader", 200), ("outsider", 404)],
)
def test_access(cast, who, status):
    run = make_run(cast.workspace, "r")
    log_points(run, "loss", [(0, 1.0), (1, 0.5)])
    client = Client()
    client.force_login(cast.user(who))
    response = get(client, cast, key="loss", runs=run.run_uuid)
    assert response.status_code == status
    if status == 200:
        assert response.json()["series"][0]["value"] == [1.0, 0.5]


def test_anonymous_is_sent_to_login(cast):
    response = get(Client(), cast, key="loss", runs="abc")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_another_workspaces_runs_are_left_out(cast, owner):
    mine = make_run(cast.workspace, "mine")
    theirs = make_run(cast.other_workspace, "theirs")
    for run in (mine, theirs):
        log_points(run, "loss", [(0, 1.0)])
    body = get(owner, cast, key="loss", runs=f"{theirs.run_uuid},{mine.run_uuid}").json()
    assert [s["run_id"] for s in body["series"]] == [mine.run_uuid]


# --- Downsampling -----------------------------------------------------------------------


def test_spike_and_dip_survive_downsampling(cast, owner, long_run):
    body = get(owner, cast, key="loss", runs=long_run.run_uuid).json()
    (series,) = body["series"]
    assert body["points"] == 2000
    assert series["downsampled"] is True
    assert series["total"] == 20_000
    assert 500 <= len(series["step"]) <= 2000
    assert series["step"] == sorted(series["step"])
    assert series["step"][0] == 0 and series["step"][-1] == 19_999
    at = dict(zip(series["step"], series["value"], strict=True))
    assert at[SPIKE_STEP] == SPIKE and max(series["value"]) == SPIKE
    assert at[DIP_STEP] == DIP and min(series["value"]) == DIP
    assert series["time"][series["step"].index(SPIKE_STEP)] == T0 + SPIKE_STEP


def test_zoomed_range_returns_raw_points(cast, owner, long_run):
    body = get(
        owner, cast, key="loss", runs=long_run.run_uuid, min_step=12_000, max_step=12_999
    ).json()
    (series,) = body["series"]
    assert (body["min_step"], body["max_step"]) == (12_000, 12_999)
    assert series["downsampled"] is False
    assert series["step"] == list(range(12_000, 13_000))
    expected = dict(wave(20_000))
    assert series["value"] == [expected[step] for step in series["step"]]


def test_wide_zoom_is_still_downsampled_within_the_range(cast, owner, long_run):
    body = get(
        owner, cast, key="loss", runs=long_run.run_uuid, min_step=5000, max_step=15_000
    ).json()
    (series,) = body["series"]
    assert series["downsampled"] is True and series["total"] == 10_001
    assert series["step"][0] == 5000 and series["step"][-1] == 15_000
    assert SPIKE in series["value"] and DIP not in series["value"]


def test_short_series_come_back_whole_in_run_order(cast, owner):
    experiment = experiment_create(workspace=cast.workspace, name="e", actor=None)
    a, b, c = (make_run(cast.workspace, name, experiment) for name in "abc")
    log_points(a, "acc", [(step, step / 10) for step in range(50)])
    log_points(c, "acc", [(3, 0.3), (1, 0.1)])
    body = get(owner, cast, key="acc", runs=f"{c.run_uuid},{b.run_uuid},{a.run_uuid}").json()
    assert [s["name"] for s in body["series"]] == ["c", "b", "a"]
    assert body["series"][0]["step"] == [1, 3]
    assert body["series"][1] == {
        "run_id": b.run_uuid,
        "name": "b",
        "start_time": T0,
        "step": [],
        "time": [],
        "value": [],
        "downsampled": False,
        "total": 0,
    }
    assert body["series"][2]["value"] == [step / 10 for step in range(50)]


def test_non_finite_values_are_null(cast, owner):
    run = make_run(cast.workspace, "odd")
    log_points(run, "x", [(0, 1.0), (1, math.nan), (2, math.inf), (3, -math.inf), (4, 2.0)])
    body = get(owner, cast, key="x", runs=run.run_uuid).json()
    assert body["series"][0]["value"] == [1.0, None, None, None, 2.0]


def test_non_finite_values_do_not_hide_extremes_when_downsampled(cast, owner):
    run = make_run(cast.workspace, "gappy")
    points = [(step, math.nan if step % 7 == 0 else float(step % 100)) for step in range(6000)]
    points[3001] = (3001, 500.0)
    log_points(run, "x", points)
    (series,) = get(owner, cast, key="x", runs=run.run_uuid, points=400).json()["series"]
    assert series["downsampled"] is True and len(series["step"]) <= 400
    assert max(v for v in series["value"] if v is not None) == 500.0


def test_many_points_at_one_step_are_sampled_by_rank(cast, owner):
    """mlflow.log_metric without a step logs everything at step 0, at distinct times."""
    run = make_run(cast.workspace, "stepless")
    metrics = [MetricIn("x", float(i % 50), False, T0 + i, 0) for i in range(5000)]
    metrics[2500].value = 99.0
    for start in range(0, len(metrics), 1000):
        run_log_batch(run=run, metrics=metrics[start : start + 1000])
    (series,) = get(owner, cast, key="x", runs=run.run_uuid).json()["series"]
    assert series["downsampled"] is True and series["total"] == 5000
    assert len(series["time"]) <= 2002
    assert series["time"][0] == T0 and series["time"][-1] == T0 + 4999
    assert 99.0 in series["value"]
    assert series["time"] == sorted(series["time"])


@pytest.mark.parametrize("first", [0, -(2**62)])
def test_huge_and_negative_steps(cast, owner, first):
    """Steps are any int64: wide spans neither overflow nor lose the spike."""
    run = make_run(cast.workspace, "huge")
    gap = 2**50 if first == 0 else 2**52  # 3000 steps: spans of 2^61.6 (cut) and 2^63.6
    points = [(first + i * gap, float(i % 10)) for i in range(3000)]
    points[1234] = (points[1234][0], 77.0)
    log_points(run, "x", points, ts=lambda step: T0)
    response = get(owner, cast, key="x", runs=run.run_uuid)
    assert response.status_code == 200
    (series,) = response.json()["series"]
    assert series["downsampled"] is True and series["total"] == 3000
    assert 77.0 in series["value"] and len(series["step"]) <= 2002


def test_points_parameter_bounds_the_answer(cast, owner, long_run):
    (series,) = get(owner, cast, key="loss", runs=long_run.run_uuid, points=100).json()["series"]
    assert len(series["step"]) <= 100 and SPIKE in series["value"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"runs": "abc"}, "Say which metric"),
        ({"key": "loss"}, "Say which runs"),
        ({"key": "loss", "runs": "abc", "points": "many"}, "'points' must be a whole number"),
        ({"key": "loss", "runs": "abc", "points": "inf"}, "'points' must be a whole number"),
        ({"key": "loss", "runs": "abc", "min_step": "5"}, "both min_step and max_step"),
        ({"key": "loss", "runs": "abc", "min_step": "9", "max_step": "2"}, "not be greater"),
        ({"key": "loss", "runs": "abc", "min_step": "1e30", "max_step": "2e30"}, "out of range"),
        ({"key": "loss", "runs": ",".join(f"r{i}" for i in range(101))}, "At most 100 runs"),
    ],
)
def test_bad_parameters_get_a_json_message(cast, owner, params, message):
    response = get(owner, cast, **params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert message in response.json()["error"]


# --- The selector against a brute-force reference -----------------------------------------


def _reference(rows, buckets):
    """Per step bucket of equal width: every point, as the selector should cut them."""
    lo, hi = rows[0][0], rows[-1][0]
    width = -(-(hi - lo + 1) // buckets)
    cut: dict[int, list] = {}
    for row in rows:
        cut.setdefault((row[0] - lo) // width, []).append(row)
    return cut


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_bucket_keeps_its_first_last_min_and_max(cast, seed):
    rng = random.Random(seed)
    run = make_run(cast.workspace, f"random-{seed}")
    steps = sorted(rng.sample(range(50_000), 8000))
    value, points = 0.0, []
    for step in steps:
        value += rng.gauss(0, 1)
        spike = rng.random() < 0.003
        points.append((step, math.nan if rng.random() < 0.01 else value * (50 if spike else 1)))
    # A second point at some steps, later: the first/last of a step differ by timestamp.
    extra = [(step, rng.uniform(-5, 5)) for step in rng.sample(steps, 200)]
    log_points(run, "walk", points)
    log_points(run, "walk", extra, ts=lambda step: T0 + step + 1)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.step, p.timestamp, p.value, p.is_nan FROM tracking_metricpoint p "
            "JOIN tracking_latestmetric s ON s.id = p.series_id "
            "WHERE s.run_id = %s ORDER BY p.step, p.timestamp, p.value",
            [run.pk],
        )
        everything = [(a, b, c, bool(d)) for a, b, c, d in cursor.fetchall()]

    for start, end in [(None, None), (10_000, 30_000)]:
        full = [r for r in everything if start is None or start <= r[0] <= end]
        got = chart_history([run.pk], "walk", points=1000, start_step=start, end_step=end)[run.pk]
        assert got.downsampled and got.total == len(full)
        assert got.rows == sorted(set(got.rows)) and set(got.rows) <= set(full)
        kept = set(got.rows)
        for bucket in _reference(full, 250).values():
            assert bucket[0] in kept and bucket[-1] in kept
            finite = [r for r in bucket if not r[3]]
            if finite:
                assert min(r[2] for r in finite) in {r[2] for r in kept if r in bucket}
                assert max(r[2] for r in finite) in {r[2] for r in kept if r in bucket}
        assert len(got.rows) <= 1000
