"""The `remote` workloads' client side: remote runs on our studio and its compute worker
against MLflow Projects (`mlflow run --env-manager uv`), on the same project.

Each function runs in its own client process (workloads.py dispatches to them) and
returns its figures; run.py starts what they talk to (the studio, a private Redis, the
compute worker, mlflow server) and the project they run (`write_project`). The state
names the project folder, the shared uv cache and, for ours, the studio's API.

- `remote_warmup` / `remote_warm`: submit → first line of the script (it prints
  `time.time()` first), one run to build the environment, then `remote_repeats` timed.
  Ours: zip + HEAD/PUT the snapshot + POST the job over HTTP as the SDK does, the clock
  started before the zip; mlflow: `mlflow run` from the process start.
- `remote_cold`: a cold environment build. Ours: `EnvironmentCache.ensure` (the worker's
  code) into a fresh cache root; mlflow's column: a bare `uv venv` + `uv pip install`
  into a fresh folder. Both with the same, already warm, uv cache.
- `remote_drain` (ours only): `drain_jobs` trivial jobs queued at once on one worker with
  two slots; each must run exactly once.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path

EXPERIMENT = "bench-remote"
ENVIRONMENT = "bench-remote"
START_MARK = "script-start"  # the script's first line: "script-start <time.time()>"
DRAIN_MARK = "drain-output"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, as the SDK zips: the same files, the same hash

TRAIN = f'''\
import time

print(f"{START_MARK} {{time.time():.6f}}", flush=True)  # first: the bench's finish line

import mlflow  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402

X, y = load_diabetes(return_X_y=True)
model = Ridge(alpha=0.5).fit(X, y)
with mlflow.start_run():  # the run `mlflow run` or the studio made for this script
    mlflow.log_param("alpha", 0.5)
    mlflow.log_metric("r2", model.score(X, y))
print("r2", round(model.score(X, y), 4))
'''

DRAIN = f'''\
import sys

print("{DRAIN_MARK}", sys.argv[1])
'''

MLPROJECT = """\
name: bench-remote
python_env: python_env.yaml
entry_points:
  main:
    command: "python train.py"
"""


def write_project(folder: Path, python_version: str) -> list[str]:
    """The MLflow project both sides run: MLproject, python_env.yaml (mlflow pinned to the
    installed version, scikit-learn) and train.py; returns the packages."""
    import mlflow

    packages = [f"mlflow=={mlflow.__version__}", "scikit-learn"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLproject").write_text(MLPROJECT)
    (folder / "python_env.yaml").write_text(
        f'python: "{python_version}"\ndependencies:\n' + "".join(f"  - {p}\n" for p in packages)
    )
    (folder / "train.py").write_text(TRAIN)
    return packages


def _python_env(project: Path) -> dict:
    """The project's declared environment: both sides read this one file."""
    import yaml

    declared = yaml.safe_load((project / "python_env.yaml").read_text())
    return {"python": str(declared["python"]), "packages": list(declared["dependencies"])}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _script_start(text: str) -> float:
    for line in text.splitlines():
        if line.startswith(START_MARK + " "):
            return float(line.split()[1])
    raise RuntimeError(f"the script's start line never came; output:\n{text[-2000:]}")


def _iso(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


# --- our studio over HTTP ---------------------------------------------------------------


class Studio:
    """The remote-run API of one workspace, called as the SDK calls it (plain requests)."""

    def __init__(self, state: dict):
        import requests

        base = state["base"]
        self.api = f"{base}/api/v1{state['studio_url'][len(base) :]}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201), **kwargs):
        response = self.session.request(method, f"{self.api}/{path}", timeout=60, **kwargs)
        if response.status_code not in ok:
            raise RuntimeError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:500]}"
            )
        return response

    def upload(self, folder: Path) -> str:
        """Zip the folder, then HEAD the snapshot and PUT it only when the studio lacks it."""
        data = zip_folder(folder)
        sha = hashlib.sha256(data).hexdigest()
        if self.call("HEAD", f"snapshots/{sha}", ok=(200, 404)).status_code == 404:
            self.call(
                "PUT", f"snapshots/{sha}", data=data, headers={"Content-Type": "application/zip"}
            )
        return sha

    def submit(self, sha: str, script: str, environment: dict, **fields) -> dict:
        body = {
            "experiment_name": EXPERIMENT,
            "script": script,
            "arguments": [],
            "compute": "local",
            "environment": environment,
            "snapshot_hash": sha,
            **fields,
        }
        return self.call("POST", "jobs", json=body).json()

    def job(self, run_id: str) -> dict:
        return self.call("GET", f"jobs/{run_id}").json()

    def log(self, run_id: str, *, poll: float = 0.1, timeout: float = 300) -> str:
        """The job's whole log, tailed until it has ended."""
        text, offset, deadline = [], 0, time.monotonic() + timeout
        while True:
            page = self.call(
                "GET", f"jobs/{run_id}/logs", params={"offset": offset, "limit": 1 << 20}
            ).json()
            text.append(page["text"])
            offset = page["next_offset"]
            if page["ended"] and offset >= page["log_bytes"]:
                return "".join(text)
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {run_id} did not end in {timeout:.0f} s")
            if offset >= page["log_bytes"]:
                time.sleep(poll)


def zip_folder(folder: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return out.getvalue()


def _environment(project: Path) -> dict:
    declared = _python_env(project)
    return {
        "name": ENVIRONMENT,
        "python_version": declared["python"],
        "pip_packages": declared["packages"],
    }


def _ours_once(studio: Studio, project: Path, run_name: str) -> dict:
    started = time.time()
    sha = studio.upload(project)
    job = studio.submit(sha, "train.py", _environment(project), run_name=run_name)
    submitted = time.time()
    text = studio.log(job["run_id"])
    script_start = _script_start(text)
    job = studio.job(job["run_id"])
    if job["stage"] != "completed":
        raise RuntimeError(f"run {job['run_id']} ended {job['stage']}: {job['error']}\n{text}")
    claimed = _iso(job["started_at"])
    return {
        "seconds": script_start - started,
        "submit_s": submitted - started,  # zip + HEAD (+ PUT) + POST jobs
        "queued_s": claimed - _iso(job["created_at"]),  # the row made → claimed by the worker
        "prepare_s": script_start - claimed,  # claimed → the script's first line
        "sandboxed": job["sandboxed"],
        "run_id": job["run_id"],
        "built": "built in" in text,
    }


# --- mlflow run -------------------------------------------------------------------------


def _mlflow_env(state: dict) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env.update(
        MLFLOW_TRACKING_URI=state["uri"],
        MLFLOW_ENV_ROOT=state["mlflow_env_root"],  # its environments, built by the warm-up
        UV_CACHE_DIR=state["uv_cache"],
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",  # `uv`, which mlflow calls by name
    )
    return env


def _mlflow_once(state: dict) -> dict:
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "run",
        state["project"],
        "--env-manager",
        "uv",
        "--experiment-name",
        EXPERIMENT,
    ]
    started = time.time()
    done = subprocess.run(
        command,
        env=_mlflow_env(state),
        cwd=state["root"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mlflow run exited {done.returncode}:\n{done.stdout[-3000:]}")
    return {"seconds": _script_start(done.stdout) - started}


# --- the workloads ----------------------------------------------------------------------


def w_remote_warmup(client, uri: str, s, state: dict) -> dict:
    """One run that builds the environment (each side's cache starts empty)."""
    if state["kind"] == "studio":
        return _ours_once(Studio(state), Path(state["project"]), "warm-up")
    return _mlflow_once(state)


def w_remote_warm(client, uri: str, s, state: dict) -> dict:
    if state["kind"] == "studio":
        studio = Studio(state)
        runs = [
            _ours_once(studio, Path(state["project"]), f"warm-{i}") for i in range(s.remote_repeats)
        ]
        if any(r["built"] for r in runs):
            raise RuntimeError("a measured run built its environment: it was not warm")
        out = {
            key: _median([r[key] for r in runs])
            for key in ("seconds", "submit_s", "queued_s", "prepare_s")
        }
        out["sandboxed"] = all(r["sandboxed"] for r in runs)
    else:
        runs = [_mlflow_once(state) for _ in range(s.remote_repeats)]
        out = {"seconds": _median([r["seconds"] for r in runs])}
    out["runs_s"] = [r["seconds"] for r in runs]
    out["median_s"] = out.pop("seconds")
    return out


def w_remote_cold(client, uri: str, s, state: dict) -> dict:
    """Cold builds into fresh folders with the shared uv cache, `cold_repeats` times."""
    declared = _python_env(Path(state["project"]))
    builds = [
        (_ours_build if state["kind"] == "studio" else _bare_uv_build)(state, declared)
        for _ in range(s.cold_repeats)
    ]
    out = {key: _median([b[key] for b in builds]) for key in builds[0]}
    out["runs_s"] = [b["seconds"] for b in builds]
    out["median_s"] = out.pop("seconds")
    out["packages"] = declared["packages"]
    return out


def _use_checkout(state: dict) -> None:
    """Import the worker's code from this checkout (not another one installed editable)."""
    if state["checkout"] not in sys.path:
        sys.path.insert(0, state["checkout"])


def _ours_build(state: dict, declared: dict) -> dict:
    _use_checkout(state)
    from deployments.runner.envcache import EnvironmentCache, EnvSpec

    root = Path(tempfile.mkdtemp(prefix="cold-ours-", dir=state["root"]))
    try:
        cache = EnvironmentCache(root, uv_cache_dir=Path(state["uv_cache"]))
        spec = EnvSpec(declared["python"], tuple(declared["packages"]))
        started = time.monotonic()
        env = cache.ensure(spec)
        seconds = time.monotonic() - started
        info = env.build_info()
        # Not part of the figure: jobs start before it ends. Waited for so that it does not
        # slow the next build down.
        compiled = cache.wait_for_bytecode(env, timeout=600)
        if compiled is None:
            raise RuntimeError("the bytecode compile did not end in 600 s")
        return {
            "seconds": seconds,
            "create_s": info["create_s"],
            "install_s": info["install_s"],
            "other_s": seconds - info["create_s"] - info["install_s"],
            "compile_s": compiled["seconds"],
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _bare_uv_build(state: dict, declared: dict) -> dict:
    """`uv venv` + `uv pip install`, no options, choosing among the interpreters the
    worker chooses from (its search path: here pyenv's shims on PATH would add ~0.15 s of
    interpreter discovery to `uv venv` that has nothing to do with the worker)."""
    from uv import find_uv_bin

    _use_checkout(state)
    from deployments.runner.envcache import DEFAULT_PYTHON_SEARCH_PATH

    uv = find_uv_bin()
    env = {**os.environ, "UV_CACHE_DIR": state["uv_cache"], "PATH": DEFAULT_PYTHON_SEARCH_PATH}
    root = Path(tempfile.mkdtemp(prefix="cold-uv-", dir=state["root"]))
    venv = root / "venv"
    try:
        started = time.monotonic()
        for command in (
            [uv, "venv", "--python", declared["python"], str(venv)],
            [uv, "pip", "install", "--python", str(venv / "bin" / "python"), *declared["packages"]],
        ):
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command[1:3])} failed:\n{done.stderr[-2000:]}")
            if command[1] == "venv":
                created = time.monotonic()
        finished = time.monotonic()
        return {
            "seconds": finished - started,
            "create_s": created - started,
            "install_s": finished - created,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def w_remote_drain(client, uri: str, s, state: dict) -> dict:
    """`drain_jobs` jobs queued at once on the local target (2 at a time): all complete,
    each ran once (its output line once in its own log, nowhere else)."""
    studio = Studio(state)
    studio.call("PATCH", "computes/local", json={"max_nodes": state["slots"]})
    with tempfile.TemporaryDirectory(prefix="drain-", dir=state["root"]) as folder:
        (Path(folder) / "drain.py").write_text(DRAIN)
        environment = _environment(Path(state["project"]))  # warm: built by remote_warmup
        started = time.time()
        sha = studio.upload(Path(folder))
        jobs = [
            studio.submit(sha, "drain.py", environment, arguments=[str(i)], run_name=f"drain-{i}")
            for i in range(s.drain_jobs)
        ]
    submitted = time.time()
    wanted = {job["run_id"]: i for i, job in enumerate(jobs)}
    ended = _wait_all(studio, set(wanted), timeout=max(120.0, 10.0 * s.drain_jobs))
    seen = time.time()
    finished = max(_iso(job["finished_at"]) for job in ended.values())
    stages = [job["stage"] for job in ended.values()]
    problems = []
    for run_id, i in wanted.items():
        text = studio.log(run_id)
        lines = [line for line in text.splitlines() if line.startswith(DRAIN_MARK)]
        if lines != [f"{DRAIN_MARK} {i}"]:
            problems.append(f"drain-{i}: output lines {lines!r}")
    completed = stages.count("completed")
    if completed != len(wanted):
        problems.append(f"{len(wanted) - completed} of {len(wanted)} jobs did not complete")
    return {
        "jobs": len(wanted),
        "completed": completed,
        "seconds": finished - started,
        "jobs_per_s": len(wanted) / (finished - started),
        "submit_s": submitted - started,
        "observed_s": seen - started,
        "run_ids": sorted(wanted),
        "output_once": not problems,
        "problems": problems[:10],
    }


def _wait_all(studio: Studio, run_ids: set[str], timeout: float) -> dict[str, dict]:
    """Poll the job list until every job of `run_ids` has ended; their last state."""
    deadline, ended = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        page = studio.call("GET", "jobs", params={"compute": "local", "page_size": 100}).json()
        while True:
            for job in page["results"]:
                if job["run_id"] in run_ids and job["finished_at"]:
                    ended[job["run_id"]] = job
            if not page["next"]:
                break
            page = studio.session.get(page["next"], timeout=60).json()
        if len(ended) == len(run_ids):
            return ended
        time.sleep(0.25)
    raise RuntimeError(f"{len(run_ids) - len(ended)} of {len(run_ids)} jobs never ended")


CLIENT_WORKLOADS = {
    "remote_warmup": w_remote_warmup,
    "remote_warm": w_remote_warm,
    "remote_cold": w_remote_cold,
    "remote_drain": w_remote_drain,
}
