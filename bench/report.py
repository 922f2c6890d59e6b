"""The benchmark's table: rows, ratios, targets, and the markdown report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from workloads import Sizes

SERVERS = ("ours", "mlflow")
LABELS = {"ours": "ML Studio", "mlflow": "mlflow server"}


@dataclasses.dataclass
class Row:
    label: str
    workload: str
    path: str  # dotted path into the workload's result
    unit: str
    higher_is_better: bool
    target: float | None = None
    digits: int = 1


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
    ]


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


def build_table(results: dict[str, dict[str, dict]], s: Sizes) -> tuple[list[list[str]], list]:
    header = ["Figure", "Unit", LABELS["ours"], LABELS["mlflow"], "Ratio (>1: we win)", "Target"]
    table, misses = [header], []
    for row in rows(s):
        ours = _dig(results["ours"].get(row.workload), row.path)
        theirs = _dig(results["mlflow"].get(row.workload), row.path)
        if results["ours"].get(row.workload, {}).get("error"):
            ours_cell = "error"
        else:
            ours_cell = _fmt(ours, row.digits)
        if results["mlflow"].get(row.workload, {}).get("error"):
            theirs_cell = "error"
        else:
            theirs_cell = _fmt(theirs, row.digits)
        ratio = None
        if ours is not None and theirs is not None and ours > 0 and theirs > 0:
            ratio = ours / theirs if row.higher_is_better else theirs / ours
        target = ""
        if row.target:
            if ratio is None:
                target = f"≥ {row.target:g}× — not measured"
            elif ratio >= row.target:
                target = f"≥ {row.target:g}× — met"
            else:
                target = f"≥ {row.target:g}× — **MISSED**"
                misses.append(row.label)
        ratio_cell = "—" if ratio is None else f"{ratio:,.2f}×"
        table.append([row.label, row.unit, ours_cell, theirs_cell, ratio_cell, target])
    return table, misses


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
        memory = results[key].get("memory", {})
        if memory and not memory.get("error"):
            notes.append(
                f"- {LABELS[key]} memory: {memory['processes']} processes, baseline "
                f"{memory['baseline_mb']:,.0f} MB, largest single-process increase "
                f"{memory['max_process_increase_mb']:,.1f} MB."
            )
    text = [
        "# ML Studio vs `mlflow server` — tracking benchmark",
        "",
        header,
        "",
        render_markdown(table),
        "",
    ]
    notes += _client_caps(results)
    if notes:
        text += ["Notes:", *notes, ""]
    if errors:
        text += ["Errors:", *errors, ""]
    text += [f"Sizes: `{json.dumps(dataclasses.asdict(sizes))}`", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
    if notes or errors:
        print("\n" + "\n".join(notes + errors).replace("`", ""))
