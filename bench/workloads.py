"""The client side of the benchmark: each workload, run in its own process.

`python bench/workloads.py '<json spec>'` runs one workload with the real `mlflow`
client against the spec's tracking URI (credentials come from the environment, as
for any mlflow user) and prints its figures as one JSON line after RESULT_PREFIX.
The values logged are deterministic, so both servers receive the same data.
The remote-run workloads (`remote.py`) drive the studio's remote-run API, `mlflow run`
and uv instead.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import resource
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from remote import CLIENT_WORKLOADS as REMOTE_WORKLOADS

RESULT_PREFIX = "BENCH-RESULT "
SEARCH_FILTER = "metrics.acc > 0.5 and params.model = 'a'"
SEARCH_ORDER = ["metrics.acc DESC"]
LONG_RUN_NAME, LONG_KEY = "long-history", "huge"
HISTORY_KEY = "long"  # the metric the history workload logs (the api workload reads it)


@dataclasses.dataclass
class Sizes:
    runs: int = 5  # batch ingestion: runs, each with `params` params and `metrics` × `steps` points
    metrics: int = 10
    params: int = 20
    steps: int = 1000
    log_metric_calls: int = 300
    search_runs: int = 10_000  # runs seeded (create_run + log_batch each) before searching
    seed_threads: int = 16
    search_repeats: int = 20
    history_steps: int = 100_000
    history_repeats: int = 3
    bulk_runs: int = 100  # at most 100: the server's limit for one bulk-interval request
    bulk_steps: int = 1000
    bulk_max_results: int = 320  # what the MLflow UI asks for per chart
    bulk_repeats: int = 10
    memory_steps: int = 1_000_000  # also the long run the compare page charts (`pages`)
    page_repeats: int = 5  # measured loads of each page, after one warm-up load
    page_timeout_s: int = 60  # a page not drawn by then is recorded as a timeout
    remote_repeats: int = 5  # remote runs timed per side, after one warm-up run each
    cold_repeats: int = 3  # cold environment builds per side
    drain_jobs: int = 50  # jobs queued at once on one compute worker with two slots


QUICK = {
    "runs": 2,
    "steps": 200,
    "log_metric_calls": 50,
    "search_runs": 500,
    "search_repeats": 5,
    "history_steps": 10_000,
    "history_repeats": 2,
    "bulk_runs": 20,
    "bulk_steps": 200,
    "bulk_repeats": 3,
    "memory_steps": 50_000,
    "page_repeats": 3,
    "remote_repeats": 2,
    "cold_repeats": 1,
    "drain_jobs": 20,
}


def _value(i: int, k: int = 0) -> float:
    """Deterministic pseudo-random values in [0, 1): the same data for both servers."""
    return ((i * 7919 + k * 104729) % 10007) / 10007


def _acc(i: int) -> float:
    return _value(i, 1)


def _model(i: int) -> str:
    return "abc"[i % 3]


def _expected_search_hits(n: int) -> int:
    return sum(1 for i in range(n) if _acc(i) > 0.5 and _model(i) == "a")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "mean_ms": statistics.fmean(ordered) * 1000,
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": p95 * 1000,
    }


def _experiment(client, prefix: str) -> str:
    return client.create_experiment(f"bench-{prefix}-{secrets.token_hex(4)}")


def _cpu() -> float:
    """CPU seconds this client process has used: what the client itself costs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Raw:
    """Plain HTTP to the tracking URI with the client's credentials, for server-only timings:
    request bodies are encoded before the clock starts and responses are not parsed."""

    def __init__(self, uri: str) -> None:
        import requests
        from mlflow.utils.credentials import get_default_host_creds

        creds = get_default_host_creds(uri)
        self.uri = uri
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json"
        if creds.token:
            self.session.headers["Authorization"] = f"Bearer {creds.token}"
        elif creds.username:
            self.session.auth = (creds.username, creds.password or "")

    def call(self, method: str, path: str, **kwargs):
        return self.fetch(method, f"{self.uri}/api/2.0/mlflow/{path}", **kwargs)

    def fetch(self, method: str, url: str, **kwargs):
        """Any URL of the server with the same session and credentials; 200 or an error."""
        response = self.session.request(method, url, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(
                f"{method} {url[:200]}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response


def _batch_bodies(run_id: str, r: int, s: Sizes) -> list[bytes]:
    """The requests MlflowClient.log_batch sends for one ingestion run: params ride along
    with the first 1000 metrics."""
    ts = _now_ms()
    points = [
        {"key": f"metric_{k}", "value": _value(step, k), "timestamp": ts + step, "step": step}
        for step in range(s.steps)
        for k in range(s.metrics)
    ]
    params = [{"key": f"param_{j}", "value": f"value-{r}-{j}"} for j in range(s.params)]
    first = max(0, 1000 - len(params))  # as the client splits: params fill the first request
    bodies = [{"run_id": run_id, "params": params, "metrics": points[:first]}]
    bodies += [
        {"run_id": run_id, "metrics": points[lo : lo + 1000]}
        for lo in range(first, len(points), 1000)
    ]
    return [json.dumps(body).encode() for body in bodies]


def w_ingest(client, uri: str, s: Sizes, state: dict) -> dict:
    from mlflow.entities import Metric, Param

    exp = _experiment(client, "ingest")
    seconds, cpu, points = 0.0, 0.0, 0
    for r in range(s.runs):
        run_id = client.create_run(exp, run_name=f"ingest-{r}").info.run_id
        params = [Param(f"param_{j}", f"value-{r}-{j}") for j in range(s.params)]
        ts = _now_ms()
        metrics = [
            Metric(f"metric_{k}", _value(step, k), ts + step, step)
            for step in range(s.steps)
            for k in range(s.metrics)
        ]
        started, cpu_started = time.perf_counter(), _cpu()
        client.log_batch(run_id, metrics=metrics, params=params)
        seconds += time.perf_counter() - started
        cpu += _cpu() - cpu_started
        points += len(metrics)
        client.set_terminated(run_id)
    # The same requests again, encoded beforehand and sent as plain HTTP: the server alone.
    raw, raw_seconds = Raw(uri), 0.0
    for r in range(s.runs):
        bodies = _batch_bodies(client.create_run(exp, run_name=f"raw-{r}").info.run_id, r, s)
        started = time.perf_counter()
        for body in bodies:
            raw.call("POST", "runs/log-batch", data=body)
        raw_seconds += time.perf_counter() - started
    return {
        "points": points,
        "seconds": seconds,
        "points_per_s": points / seconds,
        "client_cpu_s": cpu,
        "raw_seconds": raw_seconds,
        "raw_points_per_s": points / raw_seconds,
    }


def w_log_metric(client, uri: str, s: Sizes, state: dict) -> dict:
    run_id = client.create_run(_experiment(client, "log-metric")).info.run_id
    for i in range(5):  # connection set-up and first-request costs are not the figure
        client.log_metric(run_id, "warmup", _value(i), step=i)
    latencies = []
    for i in range(s.log_metric_calls):
        started = time.perf_counter()
        client.log_metric(run_id, "loss", _value(i), step=i)
        latencies.append(time.perf_counter() - started)
    return {"calls": len(latencies), **_ms(latencies)}


def w_seed(client, uri: str, s: Sizes, state: dict) -> dict:
    from mlflow.entities import Metric, Param

    name = f"bench-search-{secrets.token_hex(4)}"
    exp = client.create_experiment(name)
    ts = _now_ms()

    def one(i: int) -> str:
        run_id = client.create_run(exp, run_name=f"seed-{i}").info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric("acc", _acc(i), ts, 0), Metric("loss", 1 - _acc(i), ts, 0)],
            params=[Param("model", _model(i)), Param("lr", str(_value(i, 2)))],
        )
        return run_id

    started = time.perf_counter()
    with ThreadPoolExecutor(s.seed_threads) as pool:
        run_ids = list(pool.map(one, range(s.search_runs)))
    seconds = time.perf_counter() - started
    return {
        "experiment_id": exp,
        "experiment_name": name,  # the SDK finds an experiment by name (`api`)
        "runs": s.search_runs,
        "sample_run_ids": run_ids[:2],  # seed-0 and seed-1: the compare page's other two runs
        "seconds": seconds,
        "runs_per_s": s.search_runs / seconds,
    }


def w_search(client, uri: str, s: Sizes, state: dict) -> dict:
    exp = state["experiment_id"]

    def search():
        return client.search_runs([exp], SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=100)

    for _ in range(2):
        search()
    latencies = []
    for _ in range(s.search_repeats):
        started = time.perf_counter()
        runs = search()
        latencies.append(time.perf_counter() - started)
    # The same request as plain HTTP, the answer not parsed: the server's share.
    raw, raw_latencies = Raw(uri), []
    body = _search_body(exp)
    for _ in range(s.search_repeats):
        started = time.perf_counter()
        raw.call("POST", "runs/search", data=body)
        raw_latencies.append(time.perf_counter() - started)
    accs = [r.data.metrics.get("acc") for r in runs]
    expected = min(100, _expected_search_hits(s.search_runs))
    correct = (
        len(runs) == expected
        and all(a is not None and a > 0.5 for a in accs)
        and accs == sorted(accs, reverse=True)
        and all(r.data.params.get("model") == "a" for r in runs)
    )
    return {
        "returned": len(runs),
        "expected": expected,
        "correct": correct,
        "raw_mean_ms": statistics.mean(raw_latencies) * 1000,
        **_ms(latencies),
    }


def _log_series(client, run_id: str, key: str, steps: int, threads: int = 1) -> float:
    """Log `steps` points of one metric in requests of 1000; return the seconds it took."""
    from mlflow.entities import Metric

    ts = _now_ms()
    chunks = [
        [Metric(key, _value(i), ts + i, i) for i in range(lo, min(steps, lo + 1000))]
        for lo in range(0, steps, 1000)
    ]
    started = time.perf_counter()
    client.log_batch(run_id, metrics=chunks[0])  # creates the latest-value row alone
    if threads == 1:
        for chunk in chunks[1:]:
            client.log_batch(run_id, metrics=chunk)
    else:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(lambda c: client.log_batch(run_id, metrics=c), chunks[1:]):
                pass
    return time.perf_counter() - started


def w_history_prep(client, uri: str, s: Sizes, state: dict) -> dict:
    run_id = client.create_run(_experiment(client, "history")).info.run_id
    return {
        "run_id": run_id,
        "log_seconds": _log_series(client, run_id, HISTORY_KEY, s.history_steps),
    }


def _raw_history(
    raw: Raw, run_id: str, key: str, page: int = 0, parse: bool = False
) -> tuple[int, int, int]:
    """Page through get-history as the client does (25,000 a page) or `page` a page;
    (pages, bytes, points). Unparsed, the body is only searched for its page token and
    points stays 0."""
    from mlflow.tracking._tracking_service.client import GET_METRIC_HISTORY_MAX_RESULTS

    token, pages, size, points = None, 0, 0, 0
    while True:
        params = {
            "run_id": run_id,
            "metric_key": key,
            "max_results": page or GET_METRIC_HISTORY_MAX_RESULTS,
        }
        if token:
            params["page_token"] = token
        body = raw.call("GET", "metrics/get-history", params=params).content
        pages, size = pages + 1, size + len(body)
        if parse:
            answer = json.loads(body)
            points += len(answer.get("metrics", []))
            token = answer.get("next_page_token")
        else:
            found = re.search(rb'"next_page_token"\s*:\s*"([^"]+)"', body)
            token = found.group(1).decode() if found else None
        if not token:
            return pages, size, points


def w_history(client, uri: str, s: Sizes, state: dict) -> dict:
    run_id = state["run_id"]
    times, cpus = [], []
    for _ in range(s.history_repeats):
        started, cpu_started = time.perf_counter(), _cpu()
        history = client.get_metric_history(run_id, HISTORY_KEY)
        times.append(time.perf_counter() - started)
        cpus.append(_cpu() - cpu_started)
        if len(history) != s.history_steps:
            raise AssertionError(f"history has {len(history)} points, not {s.history_steps}")
    raw, raw_times = Raw(uri), []
    for _ in range(s.history_repeats):
        started = time.perf_counter()
        pages, size, _ = _raw_history(raw, run_id, HISTORY_KEY)
        raw_times.append(time.perf_counter() - started)
    best = min(times)
    return {
        "points": s.history_steps,
        "best_s": best,
        "median_s": statistics.median(times),
        "points_per_s": s.history_steps / best,
        "client_cpu_s": min(cpus),
        "raw_best_s": min(raw_times),
        "raw_pages": pages,
        "raw_mb": size / 1e6,
    }


def _search_body(exp: str) -> bytes:
    """mlflow's runs/search request for the search workload's first page, as JSON."""
    return json.dumps(
        {
            "experiment_ids": [exp],
            "filter": SEARCH_FILTER,
            "order_by": SEARCH_ORDER,
            "max_results": 100,
            "run_view_type": "ACTIVE_ONLY",
        }
    ).encode()


# --- api: our REST API v1 and SDK against mlflow server's REST API and client --------

API_HISTORY_PAGE = 25_000  # one page size for both: mlflow's own get-history page, our largest
_NEXT = re.compile(rb'"next"\s*:\s*"([^"]+)"')


def _expected_search_names(n: int) -> list[str]:
    """The names on the search's first page, in order (the seeded acc values never tie)."""
    hits = [i for i in range(n) if _acc(i) > 0.5 and _model(i) == "a"]
    return [f"seed-{i}" for i in sorted(hits, key=_acc, reverse=True)[:100]]


def _mean_ms(call: Callable[[], object], repeats: int, warmups: int = 2) -> float:
    for _ in range(warmups):
        call()
    latencies = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return statistics.fmean(latencies) * 1000


def _v1_history(raw: Raw, first_url: str, parse: bool = False) -> tuple[int, int, int]:
    """Page through our metric history by its `next` links; (pages, bytes, points).
    Unparsed, the body is only searched for its `next` link (the first key of a page)."""
    url, pages, size, points = first_url, 0, 0, 0
    while url:
        body = raw.fetch("GET", url).content
        pages, size = pages + 1, size + len(body)
        if parse:
            page = json.loads(body)
            points += len(page["results"])
            url = page["next"]
        else:
            found = _NEXT.search(body, 0, 4096)
            url = found.group(1).decode() if found else None
    return pages, size, points


def w_api(client, uri: str, s: Sizes, state: dict) -> dict:
    """The hot reads of REST API v1 and the SDK (ours) against mlflow server's REST API and
    the mlflow client: a search page, the same through the SDK, a metric history paged."""
    import requests

    studio = state["kind"] == "studio"
    exp, name, run_id = state["experiment_id"], state["experiment_name"], state["history_run_id"]
    expected = _expected_search_names(s.search_runs)
    raw, throttled = Raw(uri), []

    def count_throttled(response, *args, **kwargs) -> None:
        if response.status_code == 429:  # the SDK would wait and retry: not what we measure
            throttled.append(response.url)

    if studio:
        base = state["base"]
        path = state["studio_url"][len(base) :]  # /subscriptions/<id>/resourceGroups/…
        api = f"{base}/api/v1{path}"
        query = {
            "experiment_id": exp,
            "filter": SEARCH_FILTER,
            "order_by": SEARCH_ORDER,
            "page_size": 100,
        }
        search_url = requests.Request("GET", f"{api}/runs", params=query).prepare().url

        def rest():
            return raw.fetch("GET", search_url)

        def rest_names() -> list[str]:
            return [r["run_name"] for r in rest().json()["results"]]

        from mlstudio import Experiment, TokenAuthentication, Workspace

        _, sub, _, group, _, workspace = path.strip("/").split("/")
        token = TokenAuthentication(os.environ["MLFLOW_TRACKING_TOKEN"])
        ws = Workspace(sub, group, workspace, auth=token, server_url=base)
        ws._client.session.hooks["response"].append(count_throttled)

        def sdk() -> list:
            runs = Experiment(ws, name).get_runs(filter=SEARCH_FILTER, order_by=SEARCH_ORDER)
            return list(itertools.islice(runs, 100))

        def sdk_names() -> list[str]:
            return [run.name for run in sdk()]

        history_url = (
            requests.Request(
                "GET",
                f"{api}/runs/{run_id}/metrics/history",
                params={"key": HISTORY_KEY, "page_size": API_HISTORY_PAGE},
            )
            .prepare()
            .url
        )

        def history(parse: bool = False) -> tuple[int, int, int]:
            return _v1_history(raw, history_url, parse)
    else:
        import mlflow

        body = _search_body(exp)

        def rest():
            return raw.call("POST", "runs/search", data=body)

        def rest_names() -> list[str]:
            return [r["info"]["run_name"] for r in rest().json().get("runs", [])]

        mlflow.set_tracking_uri(uri)

        def sdk() -> list:
            return mlflow.search_runs(
                experiment_names=[name],
                filter_string=SEARCH_FILTER,
                order_by=SEARCH_ORDER,
                max_results=100,
                output_format="list",
            )

        def sdk_names() -> list[str]:
            return [run.info.run_name for run in sdk()]

        def history(parse: bool = False) -> tuple[int, int, int]:
            return _raw_history(raw, run_id, HISTORY_KEY, API_HISTORY_PAGE, parse)

    # Both servers must answer the same runs, in the same order: checked once, untimed.
    for label, names in (("REST search", rest_names()), ("SDK search", sdk_names())):
        if names != expected:
            raise AssertionError(
                f"{label} returned {len(names)} runs {names[:3]}…, expected {len(expected)} "
                f"{expected[:3]}…"
            )
    rest_ms = _mean_ms(rest, s.search_repeats)
    rest_bytes = len(rest().content)
    sdk_ms = _mean_ms(sdk, s.search_repeats)

    # The whole history once, parsed and counted (untimed), then best of history_repeats.
    _, _, points = history(parse=True)
    if points != s.history_steps:
        raise AssertionError(f"history has {points} points, not {s.history_steps}")
    pages_expected = max(1, math.ceil(s.history_steps / API_HISTORY_PAGE))
    times = []
    for _ in range(s.history_repeats):
        started = time.perf_counter()
        pages, size, _ = history()
        times.append(time.perf_counter() - started)
        if pages != pages_expected:
            raise AssertionError(f"history came in {pages} pages, not {pages_expected}")
    if throttled:
        raise RuntimeError(f"{len(throttled)} requests throttled (429), e.g. {throttled[0]}")
    return {
        "runs": s.search_runs,
        "returned": len(expected),
        "search_repeats": s.search_repeats,
        "rest_mean_ms": rest_ms,
        "rest_kb": rest_bytes / 1e3,
        "sdk_mean_ms": sdk_ms,
        "history_points": points,
        "history_page": API_HISTORY_PAGE,
        "history_pages": pages,
        "history_mb": size / 1e6,
        "history_best_s": min(times),
        "history_median_s": statistics.median(times),
    }


def w_bulk_prep(client, uri: str, s: Sizes, state: dict) -> dict:
    exp = _experiment(client, "bulk")
    with ThreadPoolExecutor(8) as pool:
        run_ids = list(
            pool.map(
                lambda i: client.create_run(exp, run_name=f"bulk-{i}").info.run_id,
                range(s.bulk_runs),
            )
        )
        for _ in pool.map(lambda r: _log_series(client, r, "loss", s.bulk_steps), run_ids):
            pass
    return {"run_ids": run_ids}


def w_bulk(client, uri: str, s: Sizes, state: dict) -> dict:
    # What the MLflow UI's charts request (run_ids repeated); the client has no method for it.
    raw = Raw(uri)
    params = {"run_ids": state["run_ids"], "metric_key": "loss", "max_results": s.bulk_max_results}

    def fetch() -> int:
        body = raw.call("GET", "metrics/get-history-bulk-interval", params=params).json()
        return len(body.get("metrics", []))

    fetch()
    latencies, points = [], 0
    for _ in range(s.bulk_repeats):
        started = time.perf_counter()
        points = fetch()
        latencies.append(time.perf_counter() - started)
    if points == 0:
        raise AssertionError("bulk-interval history returned no points")
    return {"runs": len(state["run_ids"]), "points_returned": points, **_ms(latencies)}


def w_memory_prep(client, uri: str, s: Sizes, state: dict) -> dict:
    """The long run: in the seeded search experiment when there is one, so that experiment
    holds both the 10,000 runs and the 1,000,000-step metric the pages workload renders.
    It logs neither `acc` nor `model`: the search's filter and expected hits stay as they are."""
    exp = state.get("experiment_id") or _experiment(client, "memory")
    run_id = client.create_run(exp, run_name=LONG_RUN_NAME).info.run_id
    seconds = _log_series(client, run_id, LONG_KEY, s.memory_steps, threads=4)
    return {"run_id": run_id, "experiment_id": exp, "log_seconds": seconds}


def w_memory_read(client, uri: str, s: Sizes, state: dict) -> dict:
    started = time.perf_counter()
    history = client.get_metric_history(state["run_id"], LONG_KEY)
    seconds = time.perf_counter() - started
    if len(history) != s.memory_steps:
        raise AssertionError(f"history has {len(history)} points, not {s.memory_steps}")
    return {"points": len(history), "seconds": seconds}


# --- pages: the studio pages in headless Chromium -------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}
SHOTS = Path(__file__).resolve().parent.parent / "var" / "bench" / "pages"
# Environment variables the orchestrator sets for our server's pages (not on the command line).
UI_USER_ENV, UI_PASSWORD_ENV = "BENCH_UI_USER", "BENCH_UI_PASSWORD"

# In-page checks (JS expressions over `arg`), true once the figure's content is on screen.
_OURS_ROWS = "document.querySelectorAll('table.runs tbody tr td.run-name a').length > 0"
_OURS_FIRST_ROW = (
    "(document.querySelector('table.runs tbody tr td.run-name a') || {}).textContent"
    "?.trim() === arg"
)
# MLflow's runs table is an ag-grid: one row element per container (pinned, centre) and row.
_MLFLOW_ROWS = "document.querySelectorAll('.ag-row a[href*=\"/runs/\"]').length > 0"
_MLFLOW_FIRST_ROW = (
    'Array.from(document.querySelectorAll(\'.ag-row[row-index="0"] a[href*="/runs/"]\'))'
    ".some((a) => a.textContent.trim() === arg)"
)
_OURS_CHARTS = "!!document.querySelector('[data-metric-charts][data-ready=\"1\"] .js-plotly-plot')"
# The metric page's plotly chart, with its traces' points in place (react-plotly keeps the
# figure's data on the graph element).
_MLFLOW_CHART = (
    "Array.from(document.querySelectorAll('.js-plotly-plot'))"
    ".some((g) => (g.data || []).some((t) => (t.x || []).length > 0))"
)
_MLFLOW_COMPARE = (
    "!!document.querySelector('.js-plotly-plot .parcoords') && document.body.innerText"
    ".includes(arg)"
)

# Before any page script: room for every request of a load in the resource timing buffer
# (default 250), and a record of the main thread's long tasks (> 50 ms).
_INIT_JS = """performance.setResourceTimingBufferSize(10000);
window.__benchLongTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__benchLongTasks.push([e.startTime, e.duration]);
  }).observe({type: "longtask", buffered: true});
} catch (e) {}"""
_TIMINGS_JS = """([pattern, ready]) => {
  const nav = performance.getEntriesByType("navigation")[0] || {};
  const data = performance.getEntriesByType("resource")
    .filter((e) => pattern && e.name.includes(pattern))
    .map((e) => [e.name, e.startTime, e.responseEnd]);
  const busy = (window.__benchLongTasks || [])
    .filter(([start]) => start < ready)
    .reduce((sum, [start, duration]) => sum + Math.min(duration, ready - start), 0);
  return {doc_end: nav.responseEnd || 0, dom_ready: nav.domContentLoadedEventEnd || 0, data, busy};
}"""


@dataclasses.dataclass
class Target:
    name: str  # key in the result
    url: str
    check: str  # JS expression over `arg`
    arg: str = ""
    data: str = ""  # URL substring of the page's data requests; "document" for the page itself


def _top_acc_run(n: int) -> str:
    """The run the `metrics.acc DESC` sort puts first: the seeded run with the highest acc."""
    return f"seed-{max(range(n), key=_acc)}"


def _targets(state: dict) -> list[Target]:
    exp, base, long_run = state["experiment_id"], state["base"], state["long_run_id"]
    runs = [long_run, *state["sample_run_ids"]]
    top = _top_acc_run(state["seed_runs"])
    if state["kind"] == "studio":
        pages = state["studio_url"]
        experiment = f"{pages}/experiments/{exp}/"
        return [
            Target("experiment", experiment, _OURS_ROWS, data="document"),
            Target(
                "experiment_sorted",
                f"{experiment}?order=metrics.acc%20DESC",
                _OURS_FIRST_ROW,
                top,
                data="document",
            ),
            Target(
                "compare",
                f"{pages}/compare/?runs={','.join(runs)}",
                _OURS_CHARTS,
                data="/charts/metric/",
            ),
        ]
    from urllib.parse import quote, urlencode

    def route(path: str, **query: str) -> str:
        return f"{base}/#/{path}?{urlencode(query, quote_via=quote)}"

    metric_page = {  # what the UI's own links to a metric page carry
        "runs": json.dumps(runs),
        "metric": json.dumps(state["long_key"]),
        "experiments": json.dumps([exp]),
        "plot_metric_keys": json.dumps([state["long_key"]]),
        "plot_layout": "{}",
        "x_axis": "step",
        "y_axis_scale": "linear",
        "line_smoothness": "1",
        "show_point": "false",
        "deselected_curves": "[]",
        "last_linear_y_axis_range": "[]",
    }
    return [
        Target("experiment", f"{base}/#/experiments/{exp}/runs", _MLFLOW_ROWS, data="/runs/search"),
        Target(
            "experiment_sorted",
            route(f"experiments/{exp}/runs", orderByKey="metrics.`acc`", orderByAsc="false"),
            _MLFLOW_FIRST_ROW,
            top,
            data="/runs/search",
        ),
        Target("compare", route("metric", **metric_page), _MLFLOW_CHART, data="bulk-interval"),
        Target(
            "compare_runs_page",
            route("compare-runs", runs=json.dumps(runs), experiments=json.dumps([exp])),
            _MLFLOW_COMPARE,
            LONG_RUN_NAME,
            data="/runs/search",
        ),
    ]


def _load(page, target: Target, s: Sizes) -> dict:
    """One load in a fresh document; times are from navigation start, in the page's clock."""
    captured: list = []

    def on_request(request) -> None:
        if target.data == "document":
            if request.resource_type == "document" and request.frame == page.main_frame:
                captured.append((request.method, request.url, None))
        elif target.data and target.data in request.url:
            captured.append((request.method, request.url, request.post_data))

    page.goto("about:blank")
    page.on("request", on_request)
    try:
        page.goto(target.url, wait_until="commit", timeout=s.page_timeout_s * 1000)
        ready = page.wait_for_function(
            f"(arg) => {{ try {{ return ({target.check}) ? performance.now() : null; }}"
            " catch (e) { return null; } }",
            arg=target.arg,
            polling="raf",
            timeout=s.page_timeout_s * 1000,
        ).json_value()
        pattern = "" if target.data == "document" else target.data
        timings = page.evaluate(_TIMINGS_JS, [pattern, ready])
    finally:
        page.remove_listener("request", on_request)
    if target.data == "document":
        data_end = timings["doc_end"]
    else:
        data_end = max((end for _, _, end in timings["data"] if 0 < end <= ready), default=0)
    return {
        "ready_s": ready / 1000,
        "data_end_s": data_end / 1000,  # when the last data response the page used arrived
        "dom_ready_s": timings["dom_ready"] / 1000,
        "long_tasks_s": timings["busy"] / 1000,  # main thread busy in tasks over 50 ms
        "requests": captured,
    }


def _replay(session, requests: list, repeats: int) -> dict:
    """The page's data requests again, alone and one at a time: the server's share."""
    per_request, size = [], 0
    for method, url, body in requests:
        times = []
        for _ in range(max(1, repeats)):
            headers = {"Content-Type": "application/json"} if body else {}
            started = time.perf_counter()
            response = session.request(method, url, data=body, headers=headers, timeout=300)
            times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"replaying {method} {url[:120]}: HTTP {response.status_code}")
        size += len(response.content)
        per_request.append(statistics.median(times))
    return {
        "server_s": sum(per_request),  # one after the other
        "server_max_s": max(per_request, default=0.0),
        "server_requests": len(per_request),
        "server_mb": size / 1e6,
    }


def _measure_page(page, session, target: Target, s: Sizes, label: str) -> dict:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    loads = []
    for n in range(1 + s.page_repeats):
        try:
            loads.append(_load(page, target, s))
        except PlaywrightTimeout:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{label}-{target.name}-timeout.png"))
            # The first load timing out means the others would too: no need to wait for them.
            return {
                "timeout_s": s.page_timeout_s,
                "timed_out_load": n,
                "url": target.url,
                **_summary(loads),
            }
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{label}-{target.name}.png"))
    requests = loads[-1].pop("requests")
    for load in loads:
        load.pop("requests", None)
    return {"url": target.url, **_summary(loads), **_replay(session, requests, s.page_repeats)}


def _summary(loads: list[dict]) -> dict:
    if not loads:
        return {}
    for load in loads:
        load.pop("requests", None)
    measured = loads[1:] or loads
    ready = [load["ready_s"] for load in measured]
    data_end = [load["data_end_s"] for load in measured]
    return {
        "first_s": loads[0]["ready_s"],
        "median_s": statistics.median(ready),
        "min_s": min(ready),
        "max_s": max(ready),
        "loads": len(measured),
        "data_end_s": statistics.median(data_end),
        "after_data_s": statistics.median(r - d for r, d in zip(ready, data_end, strict=True)),
        "dom_ready_s": statistics.median(load["dom_ready_s"] for load in measured),
        "long_tasks_s": statistics.median(load["long_tasks_s"] for load in measured),
    }


def _login(page, base: str) -> None:
    import os

    page.goto(f"{base}/login/")
    page.get_by_label("User name").fill(os.environ[UI_USER_ENV])
    page.get_by_label("Password").fill(os.environ[UI_PASSWORD_ENV])
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    if "/login/" in page.url:
        raise RuntimeError(f"could not sign in to {base} as {os.environ[UI_USER_ENV]}")


def w_pages(client, uri: str, s: Sizes, state: dict) -> dict:
    import requests

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("Playwright is not installed: `make install-test`") from None
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make system-deps`")
    # "ours" | "mlflow": the screenshots' names
    label = state.get("key") or ("ours" if state["kind"] == "studio" else "mlflow")
    results: dict = {"runs": state["seed_runs"], "long_steps": state["long_steps"]}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(_INIT_JS)
            page = context.new_page()
            if state["kind"] == "studio":
                _login(page, state["base"])
            session = requests.Session()
            session.trust_env = False
            for cookie in context.cookies():
                session.cookies.set(cookie["name"], cookie["value"])
            for target in _targets(state):
                results[target.name] = _measure_page(page, session, target, s, label)
        finally:
            browser.close()
    return results


# --- growth: how our costs grow with the experiment (ours only; run.py --growth) -------


def _signed_in_session(base: str):
    """A requests session signed in to the studio's pages as the bench's user (the form's
    CSRF token from the sign-in page, as a browser sends it)."""
    import requests

    session = requests.Session()
    session.trust_env = False
    form = session.get(f"{base}/login/", timeout=60)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    if token is None:
        raise RuntimeError(f"no CSRF token on {base}/login/ (HTTP {form.status_code})")
    answer = session.post(
        f"{base}/login/",
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": os.environ[UI_USER_ENV],
            "password": os.environ[UI_PASSWORD_ENV],
            "next": "",
        },
        headers={"Referer": f"{base}/login/"},
        timeout=60,
    )
    if answer.status_code != 200 or "/login/" in answer.url:
        raise RuntimeError(f"could not sign in to {base} (HTTP {answer.status_code})")
    return session


def _get_median(session, url: str, repeats: int) -> tuple[float, bytes]:
    """One warm-up GET, then `repeats` timed; (median seconds, the last body)."""
    times, body = [], b""
    for n in range(1 + repeats):
        started = time.perf_counter()
        response = session.get(url, timeout=300)
        body = response.content
        if n:
            times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: HTTP {response.status_code}")
    return statistics.median(times), body


def w_growth_reads(client, uri: str, s: Sizes, state: dict) -> dict:
    """At one size of the growing experiment: search_runs (the search workload, checked),
    the experiment page's HTML (first 100 runs) and a run page over plain HTTP with a
    session cookie, and the experiment page in Chromium when it is installed."""
    result = {"search": w_search(client, uri, s, state)}
    session = _signed_in_session(state["base"])
    page_url = f"{state['studio_url']}/experiments/{state['experiment_id']}/"
    seconds, body = _get_median(session, page_url, s.page_repeats)
    rows = body.count(b'<td class="run-name"')
    if rows != min(100, s.search_runs):
        raise AssertionError(f"the experiment page shows {rows} runs, not 100")
    result["page"] = {"median_s": seconds, "kb": len(body) / 1e3, "rows": rows}
    run_url = f"{state['studio_url']}/runs/{state['run_id']}/"
    seconds, body = _get_median(session, run_url, s.page_repeats)
    result["run_page"] = {"median_s": seconds, "kb": len(body) / 1e3}
    try:  # the browser's view of the same page; optional (the HTTP figure is the must-have)
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"{CHROMIUM} is missing")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                context = browser.new_context(viewport=VIEWPORT)
                context.add_init_script(_INIT_JS)
                page = context.new_page()
                _login(page, state["base"])
                target = Target("experiment", page_url, _OURS_ROWS, data="document")
                label = f"growth-{s.search_runs}"
                result["browser"] = _measure_page(page, session, target, s, label)
            finally:
                browser.close()
    except Exception as exc:  # recorded; the HTTP figures stand
        result["browser"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return result


CLIENT_WORKLOADS: dict[str, Callable[..., dict]] = {
    "ingest": w_ingest,
    "log_metric": w_log_metric,
    "seed": w_seed,
    "search": w_search,
    "history_prep": w_history_prep,
    "history": w_history,
    "api": w_api,
    "bulk_prep": w_bulk_prep,
    "bulk": w_bulk,
    "memory_prep": w_memory_prep,
    "memory_read": w_memory_read,
    "pages": w_pages,
    "growth_reads": w_growth_reads,
    **REMOTE_WORKLOADS,
}


def client_main(spec: dict) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=spec["uri"])
    sizes = Sizes(**spec["sizes"])
    result = CLIENT_WORKLOADS[spec["workload"]](client, spec["uri"], sizes, spec["state"])
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    client_main(json.loads(sys.argv[1]))
