"""Run mlflow's own live-server tests against ML Studio and write var/compat/report.md.

    python tests/compat/run.py --mlflow-tests /path/to/mlflow-checkout [--target studio|native]
    make compat MLFLOW_TESTS=/path/to/mlflow-checkout

MLFLOW_TESTS is the folder that holds mlflow's `tests/` package (a checkout's root). The
test files run unmodified; only their server start is swapped (mlflow_compat_plugin).
`--target native` runs the same selection against mlflow's own server, their fixtures
untouched, for the reference counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TEST_FILES = [
    "tests/tracking/test_rest_tracking.py",
    "tests/tracking/test_model_registry.py",
    # Older checkouts keep it under tests/store/artifact/.
    ("tests/tracking/test_mlflow_artifacts.py", "tests/store/artifact/test_mlflow_artifacts.py"),
]


def _files(mlflow_tests: Path) -> list[str]:
    found = []
    for entry in TEST_FILES:
        for candidate in (entry,) if isinstance(entry, str) else entry:
            if (mlflow_tests / candidate).is_file():
                found.append(candidate)
                break
        else:
            print(f"compat: not found in {mlflow_tests}: {entry}", file=sys.stderr)
    return found


def run(mlflow_tests: Path, target: str, out: Path, extra: list[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    results = out / f"results-{target}.jsonl"
    for stale in (results, Path(str(results) + ".deselected")):
        stale.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DJANGO_"))}
    env.update(
        # Their `tests` package first; ours (also named `tests`) must not be importable.
        PYTHONPATH=os.pathsep.join([str(mlflow_tests), str(HERE)]),
        COMPAT_TARGET=target,
        COMPAT_RESULTS=str(results),
        COMPAT_OUT=str(out),
        # Their artifacts tests start `mlflow server` by name: this interpreter's one.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="120",
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        *_files(mlflow_tests),
        "-c",
        str(HERE / "pytest.ini"),
        "--rootdir",
        str(mlflow_tests),
        "--noconftest",
        "-p",
        "no:django",
        "-p",
        "no:cacheprovider",
        "-p",
        "mlflow_compat_plugin",
        "-q",
        "-rN",
        *extra,
    ]
    started = time.monotonic()
    code = subprocess.call(command, cwd=mlflow_tests, env=env)
    write_report(
        results,
        out / ("report.md" if target == "studio" else f"report-{target}.md"),
        target,
        time.monotonic() - started,
    )
    return code


def write_report(results: Path, report: Path, target: str, seconds: float) -> None:
    rows = (
        [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    )
    deselected_file = Path(str(results) + ".deselected")
    deselected = (
        [line.split("\t") for line in deselected_file.read_text().splitlines()]
        if deselected_file.exists()
        else []
    )
    counts = Counter(row["outcome"] for row in rows)
    other_name = "native" if target == "studio" else "studio"
    other_file = results.with_name(f"results-{other_name}.jsonl")
    other = (
        {json.loads(line)["nodeid"]: json.loads(line)["outcome"] for line in other_file.open()}
        if other_file.exists()
        else {}
    )
    lines = [
        f"# mlflow live-server tests against {target}",
        "",
        f"{len(rows)} run in {seconds:.0f}s: "
        + ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
        + f"; {len(deselected)} deselected ({dict(Counter(r[1] for r in deselected))}).",
        "",
        f"| test | outcome | on {other_name} (last run) | first line of the error |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        error = row["error"].replace("|", "\\|")
        theirs = other.get(row["nodeid"], "")
        lines.append(f"| `{row['nodeid']}` | {row['outcome']} | {theirs} | {error} |")
    lines += ["", "## Deselected", ""] + [f"- `{n}` ({why})" for n, why in deselected]
    report.write_text("\n".join(lines) + "\n")
    summary = ", ".join(
        f"{counts[k]} {k}" for k in ("passed", "failed", "error", "skipped") if counts[k]
    )
    print(f"compat ({target}): {summary or 'nothing ran'}; report: {report}")
    print(
        f"{counts['passed']} passed, {counts['failed'] + counts['error']} failed, "
        f"{counts['skipped'] + counts['xfailed']} skipped"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlflow-tests", default=os.environ.get("MLFLOW_TESTS"))
    parser.add_argument("--target", choices=["studio", "native"], default="studio")
    parser.add_argument("--out", default=str(ROOT / "var" / "compat"))
    args, extra = parser.parse_known_args()
    if not args.mlflow_tests:
        parser.error("give --mlflow-tests or MLFLOW_TESTS: the folder holding mlflow's tests/")
    return run(Path(args.mlflow_tests).resolve(), args.target, Path(args.out).resolve(), extra)


if __name__ == "__main__":
    sys.exit(main())
