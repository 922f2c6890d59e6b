"""The benchmark's table: rows, ratios, targets, and the markdown report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from workloads import SEARCH_FILTER, SEARCH_ORDER, Sizes

SERVERS = ("ours", "mlflow")
LABELS = {"ours": "ML Studio", "mlflow": "mlflow server"}


@dataclasses.dataclass
class Row:
    label: str
    workload: str
    path: str  # dotted path into the workload's result
    unit: str
    higher_is_better: bool
    target: float | None = None  # a ratio to reach against mlflow server
    digits: int = 1
    limit: float | None = None  # an absolute bound for ours, in `unit` (lower is better)
    max_slowdown: float | None = None  # ours at most this many times theirs (lower is better)
    check: str | None = None  # path to a boolean of ours that must hold (correctness)
    max_added: float | None = None  # ours at most theirs + this, in `unit` (lower is better)


def rows(s: Sizes) -> list[Row]:
    pts = s.runs * s.metrics * s.steps
    hist, mem = f"{s.history_steps:,}", f"{s.memory_steps:,}"
    return [
        Row(
            f"Batch ingestion: log_batch, {s.runs} runs × {s.metrics} metrics × {s.steps:,} "
            f"steps + {s.params} params ({pts:,} points)",
            "ingest",
            "points_per_s",
            "points/s",
            True,
            10,
            0,
        ),
        Row(
            "↳ same requests, server only (pre-encoded, plain HTTP)",
            "ingest",
            "raw_points_per_s",
            "points/s",
            True,
            None,
            0,
        ),
        Row(
            f"log_metric latency, mean of {s.log_metric_calls}",
            "log_metric",
            "mean_ms",
            "ms",
            False,
            5,
            2,
        ),
        Row("log_metric latency, p50", "log_metric", "p50_ms", "ms", False, None, 2),
        Row("log_metric latency, p95", "log_metric", "p95_ms", "ms", False, None, 2),
        Row(
            f"create_run throughput: {s.search_runs:,} × (create_run + log_batch), "
            f"{s.seed_threads} threads",
            "search",
            "prep.runs_per_s",
            "runs/s",
            True,
            None,
            0,
        ),
        Row(
            f"search_runs over {s.search_runs:,} runs (filter + order, 100 results), "
            f"mean of {s.search_repeats}",
            "search",
            "mean_ms",
            "ms",
            False,
            10,
            1,
        ),
        Row(
            "↳ same request, server only (plain HTTP, response not parsed)",
            "search",
            "raw_mean_ms",
            "ms",
            False,
            None,
            1,
        ),
        Row(
            f"get_metric_history, {hist} points (best of {s.history_repeats})",
            "history",
            "best_s",
            "s",
            False,
            5,
            3,
        ),
        Row("get_metric_history throughput", "history", "points_per_s", "points/s", True, 5, 0),
        Row(
            "↳ same pages, server only (plain HTTP, responses not parsed)",
            "history",
            "raw_best_s",
            "s",
            False,
            None,
            3,
        ),
        Row(
            f"Single-metric ingestion: {hist} points in log_batch of 1,000",
            "history",
            "prep.log_seconds",
            "s",
            False,
            None,
            2,
        ),
        *api_rows(s),
        Row(
            f"get-history-bulk-interval, {s.bulk_runs} runs × {s.bulk_steps:,} steps, "
            f"max_results={s.bulk_max_results}, mean of {s.bulk_repeats}",
            "bulk",
            "mean_ms",
            "ms",
            False,
            None,
            1,
        ),
        Row(f"get_metric_history, {mem} points", "memory", "seconds", "s", False, None, 2),
        Row(
            f"Server RSS peak increase serving {mem} points (all workers)",
            "memory",
            "peak_increase_mb",
            "MB",
            False,
            None,
            1,
        ),
        *page_rows(s),
        *remote_rows(s),
        *scoring_rows(),
    ]


def api_rows(s: Sizes) -> list[Row]:
    """REST API v1 and the SDK (ours) vs mlflow server's REST API and client: no targets.
    Ours: GET /api/v1/…/runs, mlstudio's Experiment.get_runs, …/metrics/history; mlflow:
    POST runs/search, mlflow.search_runs, metrics/get-history (see bench/README.md)."""
    return [
        Row(
            f"REST runs search page, 100 of {s.search_runs:,} runs (filter + order), "
            f"mean of {s.search_repeats}, plain HTTP",
            "api",
            "rest_mean_ms",
            "ms",
            False,
            None,
            1,
        ),
        Row(
            f"↳ SDK: get_runs, first 100 (mlflow: search_runs), mean of {s.search_repeats}",
            "api",
            "sdk_mean_ms",
            "ms",
            False,
            None,
            1,
        ),
        Row(
            f"REST metric history, {s.history_steps:,} points in pages of 25,000 "
            f"(best of {s.history_repeats}), plain HTTP",
            "api",
            "history_best_s",
            "s",
            False,
            None,
            3,
        ),
    ]


def page_rows(s: Sizes) -> list[Row]:
    median = f"median of {s.page_repeats} after a warm-up"
    return [
        Row(
            f"Experiment page, {s.search_runs:,} runs: first 100 rows on screen ({median})",
            "pages",
            "experiment.median_s",
            "s",
            False,
            digits=2,
            limit=2,
        ),
        Row(
            "↳ sorted by a metric (metrics.acc DESC): the top run first on screen",
            "pages",
            "experiment_sorted.median_s",
            "s",
            False,
            digits=2,
            limit=2,
        ),
        Row(
            "↳ its data request alone, replayed (ours: the HTML page; mlflow: runs/search)",
            "pages",
            "experiment.server_s",
            "s",
            False,
            digits=3,
        ),
        Row(
            f"Compare page, 3 runs incl. a {s.memory_steps:,}-step metric: charts drawn "
            "(mlflow: its metric page)",
            "pages",
            "compare.median_s",
            "s",
            False,
            digits=2,
            limit=2,
        ),
        Row(
            "↳ its chart data alone, replayed (ours: charts/metric JSON; "
            "mlflow: get-history-bulk-interval)",
            "pages",
            "compare.server_s",
            "s",
            False,
            digits=3,
        ),
    ]


def remote_rows(s: Sizes) -> list[Row]:
    """Remote runs: ours (studio + compute worker) vs MLflow Projects (`mlflow run`) and bare
    uv; the drain has no mlflow equivalent (see bench/README.md)."""
    return [
        Row(
            f"Remote run, submit → script's first line, warm env, median of {s.remote_repeats} "
            "(mlflow: `mlflow run --env-manager uv`)",
            "remote",
            "warm.median_s",
            "s",
            False,
            target=3,
            digits=2,
            limit=2,
        ),
        Row(
            f"Environment build, cold, warm uv cache, median of {s.cold_repeats} "
            "(mlflow column: bare `uv venv` + `uv pip install`)",
            "remote",
            "cold.median_s",
            "s",
            False,
            digits=2,
            max_slowdown=1.5,
        ),
        Row(
            "↳ its bytecode, compiled in the background once the env is ready (ours)",
            "remote",
            "cold.compile_s",
            "s",
            False,
            digits=1,
        ),
        Row(
            f"Drain: {s.drain_jobs} queued jobs, 1 worker × 2 slots, each run once "
            "(ours only: mlflow has no queue)",
            "remote",
            "drain.seconds",
            "s",
            False,
            digits=1,
            check="drain.exactly_once",
        ),
        Row("↳ drain throughput", "remote", "drain.jobs_per_s", "jobs/s", True, digits=2),
    ]


def scoring_rows() -> list[Row]:
    """Our scoring server (key auth and telemetry on) vs `mlflow models serve`, the
    diabetes model, one `dataframe_split` row a request (see bench/scoring.py)."""
    out = []
    for n in (1, 8):
        conns = f"{n} connection{'s' if n > 1 else ''}"
        out += [
            Row(
                f"Scoring throughput, {conns} (ours: key auth + telemetry on; "
                "mlflow: `mlflow models serve`)",
                "scoring",
                f"c{n}.rps",
                "req/s",
                True,
                target=1,
                digits=0,
            ),
            Row(
                f"↳ scoring p50 latency, {conns}",
                "scoring",
                f"c{n}.p50_ms",
                "ms",
                False,
                digits=2,
                max_added=1,
            ),
            Row(
                f"↳ scoring p95 latency, {conns}", "scoring", f"c{n}.p95_ms", "ms", False, digits=2
            ),
        ]
    out += [
        Row(
            "Scoring server cold start: process start → health 200 (mlflow: → /ping 200)",
            "scoring",
            "cold_start_s",
            "s",
            False,
            digits=2,
            target=1,
        ),
        Row(
            "↳ telemetry: requests counted in the batches the sink received (ours)",
            "scoring",
            "telemetry.requests",
            "requests",
            True,
            digits=0,
            check="telemetry_ok",
        ),
    ]
    return out


def _dig(result: dict | None, path: str) -> float | None:
    value: Any = result
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _timeout(result: dict | None, path: str) -> float | None:
    """The time limit a page's render time ran into (its dict has `timeout_s`); the page's
    other figures (the replayed data) were then not measured."""
    parent, _, leaf = path.rpartition(".")
    if leaf != "median_s":
        return None
    holder = _dig_dict(result, parent) if parent else result
    value = (holder or {}).get("timeout_s")
    return float(value) if isinstance(value, int | float) else None


def _dig_dict(result: dict | None, path: str) -> dict | None:
    value: Any = result
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value if isinstance(value, dict) else None


def _cell(result: dict | None, row: Row) -> tuple[str, float | None, float | None]:
    """(text, value, timeout) of one server's figure."""
    if (result or {}).get("error"):
        return "error", None, None
    timeout = _timeout(result, row.path)
    if timeout is not None:
        return f"> {timeout:g} (timeout)", None, timeout
    value = _dig(result, row.path)
    return _fmt(value, row.digits), value, None


def _ratio(row: Row, ours: float | None, theirs: float | None, theirs_timeout: float | None):
    """(ratio, text); a timeout on mlflow's side gives a lower bound."""
    if ours is not None and theirs is not None and ours > 0 and theirs > 0:
        ratio = ours / theirs if row.higher_is_better else theirs / ours
        return ratio, f"{ratio:,.2f}×"
    if ours and theirs_timeout and not row.higher_is_better:
        ratio = theirs_timeout / ours
        return ratio, f"> {ratio:,.1f}×"
    return None, "—"


def build_table(results: dict[str, dict[str, dict]], s: Sizes) -> tuple[list[list[str]], list]:
    header = ["Figure", "Unit", LABELS["ours"], LABELS["mlflow"], "Ratio (>1: we win)", "Target"]
    table, misses = [header], []
    for row in rows(s):
        ours_cell, ours, ours_timeout = _cell(results["ours"].get(row.workload), row)
        theirs_cell, theirs, theirs_timeout = _cell(results["mlflow"].get(row.workload), row)
        ratio, ratio_cell = _ratio(row, ours, theirs, theirs_timeout)
        holds = _dig_bool(results["ours"].get(row.workload), row.check) if row.check else None
        verdicts = _verdicts(row, ratio, ours, ours_timeout, holds, theirs)
        if any(met is False for _, met in verdicts):
            misses.append(row.label)
        target = "; ".join(f"{bound} — {VERDICTS[met]}" for bound, met in verdicts)
        table.append([row.label, row.unit, ours_cell, theirs_cell, ratio_cell, target])
    return table, misses


VERDICTS = {True: "met", False: "**MISSED**", None: "not measured"}


def _verdicts(
    row: Row,
    ratio: float | None,
    ours: float | None,
    ours_timeout: float | None,
    holds: bool | None,
    theirs: float | None = None,
) -> list[tuple[str, bool | None]]:
    """Each of the row's targets and whether it is met (None: not measured)."""
    out: list[tuple[str, bool | None]] = []
    if row.target:
        out.append((f"≥ {row.target:g}×", None if ratio is None else ratio >= row.target))
    if row.max_slowdown:
        met = None if ratio is None else ratio * row.max_slowdown >= 1
        out.append((f"ours ≤ {row.max_slowdown:g}× theirs", met))
    if row.limit:
        bound = f"< {row.limit:g} {row.unit}"
        if ours_timeout is not None:  # a timeout is a miss, however long it was
            out.append((bound, False))
        else:
            out.append((bound, None if ours is None else ours < row.limit))
    if row.max_added is not None:
        met = None if ours is None or theirs is None else ours <= theirs + row.max_added
        out.append((f"ours ≤ theirs + {row.max_added:g} {row.unit}", met))
    if row.check:
        out.append(("correct", holds))
    return out


def _dig_bool(result: dict | None, path: str) -> bool | None:
    parent, _, leaf = path.rpartition(".")
    holder = _dig_dict(result, parent) if parent else result
    value = (holder or {}).get(leaf)
    return value if isinstance(value, bool) else None


def render_text(table: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for n, r in enumerate(table):
        cells = [
            c.ljust(w) if i in (0, 1, 5) else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip().replace("**", ""))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(table: list[list[str]]) -> str:
    out = [
        "| " + " | ".join(table[0]) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * 3 + ["---"]) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in table[1:]]
    return "\n".join(out)


def _client_caps(results: dict) -> list[str]:
    """The best ratio the real client allows: mlflow's time over our client's own CPU time
    (what a server answering instantly would still cost)."""
    notes = []
    for name, time_key, label in (
        ("ingest", "seconds", "batch ingestion"),
        ("history", "best_s", "get_metric_history"),
    ):
        ours, theirs = results["ours"].get(name, {}), results["mlflow"].get(name, {})
        if ours.get("client_cpu_s") and theirs.get(time_key):
            notes.append(
                f"- Client floor for {label}: the mlflow client alone used "
                f"{ours['client_cpu_s']:.2f} s of CPU, so against mlflow's "
                f"{theirs[time_key]:.2f} s no server can show more than "
                f"{theirs[time_key] / ours['client_cpu_s']:.1f}× through the real client."
            )
    return notes


PAGE_NAMES = {
    "experiment": "experiment page",
    "experiment_sorted": "experiment page sorted by acc",
    "compare": "compare page",
    "compare_runs_page": "#/compare-runs page (parallel coordinates + table; no history)",
}
MLFLOW_PAGE_NAMES = {"compare": "metric page (its chart of the long metric)"}


def _page_notes(results: dict) -> list[str]:
    """Where each page's time goes: data in (server) vs the browser's work after it."""
    notes = []
    for key in SERVERS:
        pages = results[key].get("pages", {})
        if not pages or pages.get("error"):
            continue
        if "load_average" in pages:
            notes.append(
                f"- {LABELS[key]} pages: load average {pages['load_average']:.1f} when they "
                "started (Chromium, the servers and PostgreSQL share these CPUs)."
            )
        for name, default in PAGE_NAMES.items():
            figure = pages.get(name)
            if not isinstance(figure, dict):
                continue
            title = (MLFLOW_PAGE_NAMES if key == "mlflow" else {}).get(name, default)
            if "timeout_s" in figure:
                notes.append(
                    f"- {LABELS[key]} {title}: not drawn within {figure['timeout_s']} s "
                    f"(load {figure['timed_out_load'] + 1}; screenshot in var/bench/pages/)."
                )
                continue
            notes.append(
                f"- {LABELS[key]} {title}: {figure['median_s']:.2f} s "
                f"({figure['min_s']:.2f}–{figure['max_s']:.2f}; first load "
                f"{figure['first_s']:.2f} s); its data was in at {figure['data_end_s']:.2f} s, "
                f"then {figure['after_data_s']:.2f} s in the browser (main thread in long "
                f"tasks {figure.get('long_tasks_s', 0):.2f} s in all); replayed alone the data "
                f"took {figure['server_s']:.3f} s ({figure['server_requests']} "
                f"request{'s' if figure['server_requests'] != 1 else ''}, "
                f"{figure['server_mb']:.2f} MB)."
            )
    return notes


def _remote_notes(results: dict) -> list[str]:
    """Where the remote figures come from: ours split in parts, the first (cold) runs, the
    build's parts on both sides, the drain's checks."""
    ours, theirs = results["ours"].get("remote", {}), results["mlflow"].get("remote", {})
    notes = []
    warm = ours.get("warm", {})
    if "median_s" in warm:
        notes.append(
            f"- {LABELS['ours']} remote run (medians): submit {warm['submit_s']:.2f} s (zip, "
            f"HEAD/PUT snapshot, POST jobs), queued → claimed {warm['queued_s']:.2f} s, "
            f"claimed → the script's first line {warm['prepare_s']:.2f} s; sandboxed "
            f"(bubblewrap): {warm['sandboxed']}; each run: "
            + ", ".join(f"{v:.2f}" for v in warm["runs_s"])
            + " s."
        )
    if "median_s" in theirs.get("warm", {}):
        notes.append(
            "- `mlflow run` each run: "
            + ", ".join(f"{v:.2f}" for v in theirs["warm"]["runs_s"])
            + " s (from the process start: its CLI's imports are in the figure)."
        )
    firsts = [
        f"{name} {res['first']['seconds']:.1f} s"
        for name, res in (("ours", ours), ("mlflow run", theirs))
        if "seconds" in res.get("first", {})
    ]
    if firsts:
        notes.append(
            "- First run, environment built on the way (not in the table): "
            + ", ".join(firsts)
            + (
                f"; the worker's background bytecode compile then took "
                f"{ours['first']['bytecode_s']:.1f} s (waited for before the timed runs)."
                if "bytecode_s" in ours.get("first", {})
                else "."
            )
        )
    cold, bare = ours.get("cold", {}), theirs.get("cold", {})
    if "median_s" in cold:
        notes.append(
            f"- Cold build, ours (EnvironmentCache.ensure, medians): venv {cold['create_s']:.2f} "
            f"s, install {cold['install_s']:.2f} s, the rest (locks, marker, permissions, "
            f"rename) {cold['other_s']:.2f} s; then bytecode {cold['compile_s']:.1f} s in the "
            "background while jobs may already run."
        )
    if "median_s" in bare:
        notes.append(
            f"- Cold build, bare uv (medians): venv {bare['create_s']:.2f} s, install "
            f"{bare['install_s']:.2f} s; packages {', '.join(bare['packages'])}."
        )
    drain = ours.get("drain", {})
    if "seconds" in drain:
        verdict = (
            "each ran exactly once"
            if drain.get("exactly_once")
            else "NOT exactly once: " + "; ".join(drain["problems"] + drain["wrong"])
        )
        notes.append(
            f"- Drain: {drain['completed']} of {drain['jobs']} completed, {verdict} (job rows: "
            f'attempts = 1 and one "Claimed by" each; logs: the job\'s output line once); '
            f"submitting them took {drain['submit_s']:.1f} s of the {drain['seconds']:.1f} s "
            "(first submit → last job's end). mlflow has no queue or workers to compare."
        )
    return notes


def _scoring_notes(results: dict) -> list[str]:
    """Each round's throughput (the figure is their median) and what the sink received."""
    notes = []
    for key in SERVERS:
        scoring = results[key].get("scoring", {})
        for n in (1, 8):
            rounds = scoring.get(f"c{n}", {}).get("rounds")
            if rounds:
                each = ", ".join(f"{r['rps']:,.0f}" for r in rounds)
                notes.append(f"- {LABELS[key]} scoring, {n} conn.: rounds {each} req/s.")
    telemetry = results["ours"].get("scoring", {}).get("telemetry")
    if telemetry:
        notes.append(
            f"- {LABELS['ours']} scoring telemetry: {telemetry['batches']} batches, "
            f"{telemetry['requests']:,} requests counted of {telemetry['sent']:,} sent "
            f"(warm-ups included), {telemetry['samples']:,} samples."
        )
    return notes


def write_report(
    table: list[list[str]], results: dict, sizes: Sizes, header: str, path: Path
) -> None:
    """The table as markdown with its notes and errors; notes and errors also to stdout."""
    errors = [
        f"- {LABELS[key]}, {name}: {res['error']}"
        for key in SERVERS
        for name, res in results[key].items()
        if res.get("error")
    ]
    notes = []
    for key in SERVERS:
        search = results[key].get("search", {})
        if search and not search.get("error") and not search.get("correct", True):
            notes.append(
                f"- {LABELS[key]}: search returned {search['returned']} runs, expected "
                f"{search['expected']} matching and ordered — results are wrong."
            )
        ingest, history = results[key].get("ingest", {}), results[key].get("history", {})
        if "client_cpu_s" in ingest and "client_cpu_s" in history:
            notes.append(
                f"- {LABELS[key]}: the mlflow client's own CPU time was "
                f"{ingest['client_cpu_s']:.2f} s of {ingest['seconds']:.2f} s of batch "
                f"ingestion and {history['client_cpu_s']:.2f} s of {history['best_s']:.2f} s "
                f"of get_metric_history ({history['raw_mb']:.1f} MB in "
                f"{history['raw_pages']} pages)."
            )
        api = results[key].get("api", {})
        if api and not api.get("error"):
            notes.append(
                f"- {LABELS[key]} api: a search page is {api['rest_kb']:,.1f} kB "
                f"({api['returned']} runs, the expected names in order through REST and SDK); "
                f"the metric history came in {api['history_pages']} pages of "
                f"{api['history_page']:,}, {api['history_mb']:.1f} MB (median of the reads "
                f"{api['history_median_s']:.3f} s)."
            )
        memory = results[key].get("memory", {})
        if memory and not memory.get("error"):
            notes.append(
                f"- {LABELS[key]} memory: {memory['processes']} processes, baseline "
                f"{memory['baseline_mb']:,.0f} MB, largest single-process increase "
                f"{memory['max_process_increase_mb']:,.1f} MB."
            )
    text = [
        "# ML Studio vs `mlflow server` and `mlflow run` — benchmark",
        "",
        header,
        "",
        render_markdown(table),
        "",
    ]
    notes += _client_caps(results)
    notes += _page_notes(results)
    notes += _remote_notes(results)
    notes += _scoring_notes(results)
    if notes:
        text += ["Notes:", *notes, ""]
    if errors:
        text += ["Errors:", *errors, ""]
    text += [f"Sizes: `{json.dumps(dataclasses.asdict(sizes))}`", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
    if notes or errors:
        print("\n" + "\n".join(notes + errors).replace("`", ""))


# --- growth (run.py --growth): ours only, at growing sizes ------------------------------

# (label, path into one size's result, unit, scale, digits)
GROWTH_RUN_ROWS = [
    ("Experiment page, first 100 runs: HTML over HTTP, median", "page.median_s", "ms", 1000, 1),
    ("↳ in Chromium, until the rows are on screen, median", "browser.median_s", "ms", 1000, 0),
    ("search_runs, filter + order, 100 results, mean", "search.mean_ms", "ms", 1, 1),
    ("↳ same request, server only (plain HTTP)", "search.raw_mean_ms", "ms", 1, 1),
    ("Run page (a seeded run): HTML over HTTP, median", "run_page.median_s", "ms", 1000, 1),
    ("Ingestion (log_batch, a new experiment beside it)", "ingest.points_per_s", "points/s", 1, 0),
    ("↳ same requests, server only (plain HTTP)", "ingest.raw_points_per_s", "points/s", 1, 0),
]
GROWTH_POINT_ROWS = [
    ("get_metric_history through the client", "seconds", "s", 1, 2),
    ("↳ throughput", "throughput", "points/s", 1, 0),
    ("Server's peak RSS increase while reading (process tree)", "peak_increase_mb", "MB", 1, 1),
    ("Logging it: log_batch of 1,000, 4 threads", "prep.log_seconds", "s", 1, 2),
]


def _growth_table(
    measured: dict, rows: list[tuple[str, str, str, float, int]], noun: str
) -> list[list[str]]:
    sizes = sorted(measured, key=int)
    first = sizes[0] if sizes else None
    header = ["Figure", "Unit", *(f"{int(n):,} {noun}" for n in sizes)]
    header += [f"× at {int(n):,} (size ×{int(n) // int(first):,})" for n in sizes[1:]]
    table = [header]
    for label, path, unit, scale, digits in rows:
        values = []
        for n in sizes:
            result = measured[n]
            value = None if result.get("error") else _dig(result, path)
            values.append(None if value is None else value * scale)
        cells = [_fmt(v, digits) if v is not None else "—" for v in values]
        factors = [
            f"{v / values[0]:,.2f}×" if v is not None and values[0] else "—" for v in values[1:]
        ]
        table.append([label, unit, *cells, *factors])
    return table


def _growth_notes(result: dict) -> list[str]:
    notes = []
    for n, at in sorted(result["runs"].items(), key=lambda kv: int(kv[0])):
        seed = at.get("seed", {})
        if seed.get("client"):
            how = f"through the client, {seed['runs_per_s']:,.0f} runs/s"
        elif seed:
            how = f"+{seed['runs']:,} bulk-seeded in {seed['seconds']:.1f} s"
        else:
            how = "not seeded"
        page, browser = at.get("page", {}), at.get("browser", {})
        line = f"- {int(n):,} runs ({how})"
        if page:
            line += f": experiment page {page['kb']:,.0f} kB, {page['rows']} rows"
        if browser.get("error"):
            line += f"; Chromium: {browser['error']}"
        elif browser:
            line += (
                f"; Chromium: first load {browser['first_s'] * 1000:,.0f} ms, HTML in "
                f"{browser['data_end_s'] * 1000:,.0f} ms"
            )
        search = at.get("search", {})
        if search and not search.get("correct", True):
            line += f"; search WRONG ({search['returned']} of {search['expected']})"
        if at.get("error"):
            line += f"; error: {at['error']}"
        notes.append(line + ".")
    for p, at in sorted(result["points"].items(), key=lambda kv: int(kv[0])):
        if at.get("error"):
            notes.append(f"- history of {int(p):,} points: error: {at['error']}")
        else:
            notes.append(
                f"- history of {int(p):,} points: {at['processes']} server processes, "
                f"baseline {at['baseline_mb']:,.0f} MB, largest single-process increase "
                f"{at['max_process_increase_mb']:,.1f} MB."
            )
    return notes


def write_growth(result: dict, sizes: Sizes, header: str, path: Path) -> str:
    """The two growth tables as markdown to `path`; returns them as text for stdout."""
    for at in result["points"].values():
        if "seconds" in at and at["seconds"] > 0:
            at["throughput"] = at["points"] / at["seconds"]
    runs = _growth_table(result["runs"], GROWTH_RUN_ROWS, "runs")
    points = _growth_table(result["points"], GROWTH_POINT_ROWS, "points")
    notes = _growth_notes(result)
    text = [
        "# ML Studio — how its cost grows (ours only)",
        "",
        header,
        "",
        f"One experiment at each size (search: `{SEARCH_FILTER}`, order by "
        f"`{SEARCH_ORDER[0]}`, mean of {sizes.search_repeats}; pages: median of "
        f"{sizes.page_repeats} after a warm-up; ingestion: {sizes.runs} runs × "
        f"{sizes.metrics} metrics × {sizes.steps:,} steps + {sizes.params} params):",
        "",
        _markdown(runs),
        "",
        "A metric history of each size, read once with `client.get_metric_history`:",
        "",
        _markdown(points),
        "",
        "Notes:",
        *notes,
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
    return "\n\n".join([_text(runs), _text(points), "\n".join(notes)])


def _text(table: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for n, r in enumerate(table):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown(table: list[list[str]]) -> str:
    out = ["| " + " | ".join(table[0]) + " |"]
    out.append("|" + "|".join(["---", "---"] + ["---:"] * (len(table[0]) - 2)) + "|")
    out += ["| " + " | ".join(r) + " |" for r in table[1:]]
    return "\n".join(out)
