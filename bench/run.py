"""Benchmark ML Studio's MLflow tracking protocol against `mlflow server`, side by side.

Both servers run on this machine against the same PostgreSQL (separate databases,
recreated at every start) with the same number of worker processes, and both are
driven by the same workloads through the real `mlflow` client. Each workload runs
in a fresh client process per server, so no client state leaks from one to the other.
The `remote` workload adds a Redis of its own (the studio's broker) and, while it runs,
the studio's compute worker; it compares remote runs with `mlflow run` (remote.py).

    .venv/bin/python bench/run.py            # full sizes (make bench)
    .venv/bin/python bench/run.py --quick    # small sizes, a smoke test
    .venv/bin/python bench/run.py --only mlflow --workloads ingest,search

This module starts the servers and drives the run; `workloads.py` is the client
side (one workload per process) and `report.py` builds the table. The table goes
to stdout and, as markdown, to var/bench/last.md; server logs to var/bench/*.log.
See bench/README.md for what each figure measures.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from remote import write_project
from report import LABELS, SERVERS, build_table, render_text, write_growth, write_report
from scoring import run_scoring
from workloads import LONG_KEY, QUICK, RESULT_PREFIX, UI_PASSWORD_ENV, UI_USER_ENV, Sizes

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "var" / "bench"
BIN = Path(sys.executable).parent
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
# BENCH_DB_SUFFIX: databases of their own, so two checkouts can bench at once.
_SUFFIX = os.environ.get("BENCH_DB_SUFFIX", "")
OURS_DB, MLFLOW_DB = f"mlstudio_bench{_SUFFIX}", f"mlflow_bench{_SUFFIX}"
# `api` after `history`: it reads the search workload's runs and the history workload's run.
WORKLOADS = (
    "ingest",
    "log_metric",
    "search",
    "history",
    "api",
    "bulk",
    "memory",
    "pages",
    "remote",
    "scoring",  # no tracking server: its own two scoring servers (bench/scoring.py)
)
UI_USER = "bench"
# remote: the Python the project declares, the compute worker's slots (the local target's
# max_nodes is set to match), and the uv download cache every build shares. It outlives
# the run, like the tests' one, so only a machine's first run downloads the packages.
REMOTE_PYTHON = "3.11"
REMOTE_SLOTS = 2
UV_CACHE = Path(tempfile.gettempdir()) / f"mlstudio-bench-uv-cache-{os.getuid()}"


@dataclasses.dataclass
class Server:
    key: str  # "ours" | "mlflow"
    kind: str  # what actually runs in this slot: "studio" | "mlflow"
    port: int
    database: str
    workdir: Path
    uri: str = ""
    token: str = ""
    password: str = ""  # our studio pages' sign-in (user UI_USER)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # the studio's

    @property
    def base(self) -> str:
        return f"http://{PG_HOST}:{self.port}"

    @property
    def studio_url(self) -> str:
        """The workspace's pages: the tracking URI without its /mlflow/v1.0 prefix."""
        return self.base + self.uri[len(self.base) :].removeprefix("/mlflow/v1.0")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_connect(dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True, connect_timeout=5
    )


def ensure_postgres() -> None:
    try:
        _pg_connect().close()
        return
    except Exception as exc:
        first_error = exc
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if versions:
        print(f"PostgreSQL is down; starting cluster {versions[-1]}/main …", flush=True)
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
        )
        for _ in range(30):
            try:
                _pg_connect().close()
                return
            except Exception:
                time.sleep(0.5)
    sys.exit(f"PostgreSQL at {PG_HOST}:{PG_PORT} (user {PG_USER}) is unreachable: {first_error}")


def recreate_database(name: str) -> None:
    from psycopg import sql

    with _pg_connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("MLFLOW_TRACKING_") or name in {"MLFLOW_REGISTRY_URI"}:
            del env[name]
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _studio_env(server: Server) -> dict[str, str]:
    env = _clean_env()
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SITE_URL=server.base,
        # Plain HTTP on loopback: the HTTPS-only production defaults would redirect.
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        DATABASE_URL=f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{server.database}",
        DATA_DIR=str(server.workdir),
        ARTIFACT_ROOT=str(server.workdir / "artifacts"),
        LOG_LEVEL="WARNING",
    )
    env.pop("REDIS_URL", None)
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1].strip()


def start_server(
    server: Server, workers: int, threads: int, sgi: str, pages: bool, broker: str = ""
) -> None:
    server.workdir.mkdir(parents=True, exist_ok=True)
    recreate_database(server.database)
    if server.kind == "studio":
        env = _studio_env(server)
        if broker:  # remote runs: jobs go to the compute worker through this broker
            env.update(CELERY_BROKER_URL=broker, COMPUTE_LOCAL_SLOTS=str(REMOTE_SLOTS))
        server.env = env
        server.password = secrets.token_urlsafe(16)
        env.update(MLSTUDIO_ADMIN_USER=UI_USER, MLSTUDIO_ADMIN_PASSWORD=server.password)
        _manage(env, "migrate", "--noinput")
        if pages:  # DEBUG=0 serves the collected, hashed files (into the bench's DATA_DIR)
            _manage(env, "collectstatic", "--noinput")
        _manage(env, "ensure_admin")
        server.uri = _manage(
            env, "create_workspace", "bench", "bench-rg", "bench-ws", "--owner", UI_USER
        )
        server.token = _manage(
            env, "create_token", UI_USER, "--workspace", "bench/bench-rg/bench-ws"
        )
        command = [
            str(BIN / "gunicorn"),
            "portal.wsgi",
            "--bind",
            f"{PG_HOST}:{server.port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "600",
            "--graceful-timeout",
            "10",
            # The UI's bulk-interval GET names up to 100 run ids in the query string:
            # ~4.3 kB with our tracking URI, over gunicorn's default limit of 4094.
            "--limit-request-line",
            "8190",
        ]
        health = f"{server.base}/healthz"
    else:
        env = _clean_env()
        if sgi == "gunicorn":  # Flask on gunicorn, configured like ours
            server_opts = [
                "--gunicorn-opts",
                f"--threads {threads} --timeout 600 --limit-request-line 8190",
            ]
        else:  # the default: FastAPI + uvicorn
            server_opts = ["--uvicorn-opts", "--no-access-log"]  # ours writes none either
        command = [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{server.database}",
            "--artifacts-destination",
            str(server.workdir / "artifacts"),
            "--workers",
            str(workers),
            "--host",
            PG_HOST,
            "--port",
            str(server.port),
            *server_opts,
        ]
        server.uri = server.base
        health = f"{server.base}/health"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    server.log_path = OUT_DIR / f"{server.key}.log"
    with open(server.log_path, "w") as log:
        # Own session: Ctrl-C reaches only us, and we stop the whole server group.
        server.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    _wait_ready(server, health)


def _wait_ready(server: Server, health: str, timeout: float = 180) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{LABELS[server.key]} exited at start-up:\n{_tail(server)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(health, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{LABELS[server.key]} did not answer {health} in {timeout:.0f}s")


def _tail(server: Server, lines: int = 30) -> str:
    if not server.log_path or not server.log_path.exists():
        return ""
    return "\n".join(server.log_path.read_text(errors="replace").splitlines()[-lines:])


def stop_server(server: Server) -> None:
    if server.proc is not None:
        _stop_group(server.proc, timeout=15)


def _stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process's group (its own session), SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- memory ---------------------------------------------------------------------------


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_kb(pids: list[int]) -> dict[int, int]:
    return {pid: _rss_kb(pid) for pid in pids}


# --- driving the client ---------------------------------------------------------------


def _client_command(server: Server, workload: str, sizes: Sizes, state: dict) -> tuple:
    spec = {
        "workload": workload,
        "uri": server.uri,
        "sizes": dataclasses.asdict(sizes),
        "state": state,
    }
    env = _clean_env()
    env.update(
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",  # a failure shows, it is not retried away
        MLFLOW_HTTP_REQUEST_TIMEOUT="900",
        MLFLOW_HTTP_POOL_MAXSIZE="32",
    )
    if server.kind == "studio":
        env["MLFLOW_TRACKING_TOKEN"] = server.token
        if workload in ("pages", "growth_reads"):  # the browser signs in; not on the command line
            env.update({UI_USER_ENV: UI_USER, UI_PASSWORD_ENV: server.password})
    return [sys.executable, str(Path(__file__).with_name("workloads.py")), json.dumps(spec)], env


class ClientError(RuntimeError):
    """A client workload failed; the message is the last line of its traceback."""


def _parse(stdout: str, stderr: str, returncode: int, label: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    lines = [line for line in stderr.splitlines() if line.strip()]
    log = OUT_DIR / f"{label}-client-error.log"
    log.write_text(stderr)
    last = lines[-1].strip() if lines else f"exit code {returncode}, no output"
    if len(last) > 400:  # mlflow's messages repeat the long URL; the cause is at the end
        last = f"{last[:150]} … {last[-250:]}"
    raise ClientError(f"{last} (full traceback: {log.relative_to(ROOT)})")


def _run(server: Server, workload: str, sizes: Sizes, state: dict, sample: bool) -> dict:
    """Run one client process; while it runs, optionally sample the server's RSS every 20 ms."""
    command, env = _client_command(server, workload, sizes, state)
    pids = _process_tree(server.proc.pid) if sample else []
    baseline = _tree_rss_kb(pids)
    peak, peak_total = dict(baseline), 0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        while proc.poll() is None:
            if sample:
                now = _tree_rss_kb(pids)
                for pid, rss in now.items():
                    peak[pid] = max(peak[pid], rss)
                peak_total = max(peak_total, sum(now.values()) - sum(baseline.values()))
            time.sleep(0.02 if sample else 0.1)
        out.seek(0)
        err.seek(0)
        result = _parse(out.read(), err.read(), proc.returncode, f"{server.key}-{workload}")
    if sample:
        result["peak_increase_mb"] = peak_total / 1024
        result["max_process_increase_mb"] = max((peak[p] - baseline[p]) / 1024 for p in pids)
        result["baseline_mb"] = sum(baseline.values()) / 1024
        result["processes"] = len(pids)
    return result


def run_client(server: Server, workload: str, sizes: Sizes, state: dict | None = None) -> dict:
    return _run(server, workload, sizes, state or {}, sample=False)


def run_client_sampling(server: Server, workload: str, sizes: Sizes, state: dict) -> dict:
    return _run(server, workload, sizes, state, sample=True)


def analyze(server: Server) -> None:
    """Refresh the planner's statistics, as autovacuum would on a production database
    (this cluster may run with autovacuum off; a fresh bulk load has no statistics)."""
    with _pg_connect(server.database) as conn:
        conn.execute("ANALYZE")


def _seed(server: Server, sizes: Sizes, shared: dict) -> dict:
    """The search experiment's runs; `shared` keeps it for the long run and the pages."""
    loaded = run_client(server, "seed", sizes)
    analyze(server)
    shared.update(
        experiment_id=loaded["experiment_id"],
        experiment_name=loaded["experiment_name"],
        sample_run_ids=loaded["sample_run_ids"],
        seed_runs=loaded["runs"],
    )
    return loaded


def _long_run(server: Server, sizes: Sizes, shared: dict) -> dict:
    """The `memory_steps`-point run, logged into the seeded experiment when there is one."""
    state = {"experiment_id": shared["experiment_id"]} if "experiment_id" in shared else {}
    loaded = run_client(server, "memory_prep", sizes, state)
    analyze(server)
    if loaded["experiment_id"] == shared.get("experiment_id"):
        shared.update(long_run_id=loaded["run_id"], long_steps=sizes.memory_steps)
    return loaded


def _history_run(server: Server, sizes: Sizes, shared: dict) -> dict:
    """The `history_steps`-point run of the history workload; the api workload reads it too."""
    loaded = run_client(server, "history_prep", sizes)
    analyze(server)
    shared["history_run_id"] = loaded["run_id"]
    return loaded


def run_workload(
    name: str, server: Server, sizes: Sizes, shared: dict, remote: Remote | None = None
) -> dict:
    """Load data, ANALYZE, then measure reads — each step in a fresh client process.

    `shared` is this server's data that later workloads reuse: the search workload's seeded
    experiment gets the memory workload's long run, and the pages workload renders both
    (it creates whichever is missing when those workloads were not selected); the api
    workload reads the seeded experiment and the history workload's run (the same)."""
    prep = {"bulk": "bulk_prep"}
    if name == "search":
        loaded = _seed(server, sizes, shared)
        state = {"experiment_id": loaded["experiment_id"]}
        return {"prep": loaded, **run_client(server, name, sizes, state)}
    if name == "memory":
        loaded = _long_run(server, sizes, shared)
        return {"prep": loaded, **run_client_sampling(server, "memory_read", sizes, loaded)}
    if name == "pages":
        prepared = {}
        if "experiment_id" not in shared:
            prepared["seed"] = _seed(server, sizes, shared)
        if "long_run_id" not in shared:
            prepared["long_run"] = _long_run(server, sizes, shared)
        state = {
            **shared,
            "key": server.key,
            "kind": server.kind,
            "base": server.base,
            "studio_url": server.studio_url if server.kind == "studio" else "",
            "long_key": LONG_KEY,
        }
        load = os.getloadavg()[0]  # the page figures feel a busy machine most
        return {"prep": prepared, "load_average": load, **run_client(server, name, sizes, state)}
    if name == "api":
        prepared = {}
        if "experiment_id" not in shared:
            prepared["seed"] = _seed(server, sizes, shared)
        if "history_run_id" not in shared:
            prepared["history"] = _history_run(server, sizes, shared)
        state = {
            **{k: shared[k] for k in ("experiment_id", "experiment_name", "history_run_id")},
            "kind": server.kind,
            "base": server.base,
            "studio_url": server.studio_url if server.kind == "studio" else "",
        }
        return {"prep": prepared, **run_client(server, name, sizes, state)}
    if name == "history":
        loaded = _history_run(server, sizes, shared)
        return {"prep": loaded, **run_client(server, name, sizes, {"run_id": loaded["run_id"]})}
    if name == "remote":
        if remote is None:
            raise RuntimeError("the remote workload was not set up")
        return run_remote(server, sizes, remote)
    if name in prep:
        loaded = run_client(server, prep[name], sizes)
        analyze(server)
        state = {k: v for k, v in loaded.items() if k in ("experiment_id", "run_id", "run_ids")}
        return {"prep": loaded, **run_client(server, name, sizes, state)}
    return run_client(server, name, sizes)


def _header(args: argparse.Namespace, started: float, load: tuple[float, ...]) -> str:
    import mlflow

    mlflow_sgi = (
        "uvicorn" if args.mlflow_sgi == "uvicorn" else f"gunicorn, {args.threads} threads each"
    )
    return (
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, "
        f"mlflow {mlflow.__version__}, Python {platform.python_version()}, "
        f"{args.workers} worker processes each (ours: gunicorn, {args.threads} threads each; "
        f"mlflow: {mlflow_sgi}), PostgreSQL {PG_HOST}:{PG_PORT}. "
        f"Mode: {'quick' if args.quick else 'full'}; took {time.monotonic() - started:,.0f} s; "
        f"load average at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f}."
    )


# --- growth: how our costs grow with the experiment (ours only) ----------------------

# Code for `manage.py shell`: bench/growth_seed.py adds runs to the seeded experiment.
_SEED_HOOK = """
import json, sys
sys.path.insert(0, %r)
import growth_seed
print(json.dumps(growth_seed.seed(%r, %d, %d)))
"""


def run_growth(server: Server, sizes: Sizes, runs: list[int], points: list[int]) -> dict:
    """One experiment grown to each of `runs` (the first size through the client's seed
    workload, every further run bulk-seeded; see growth_seed.py), measured at each size:
    search, the experiment page, a run page, then ingestion (into an experiment of its own,
    in the same database). Then a metric history
    of each of `points`, read while the server's RSS is sampled (the memory workload)."""
    out: dict = {"runs": {}, "points": {}}
    first = dataclasses.replace(sizes, search_runs=runs[0])
    seeded = run_client(server, "seed", first)
    exp, template = seeded["experiment_id"], seeded["sample_run_ids"][0]
    have = runs[0]
    for n in runs:
        at: dict = {"seed": {"client": True, **seeded}} if n == runs[0] else {}
        try:
            if n > have:
                code = _SEED_HOOK % (str(Path(__file__).parent), template, have, n)
                at["seed"] = json.loads(_manage(server.env, "shell", "-c", code))
                have = n
            analyze(server)
            state = {
                "experiment_id": exp,
                "run_id": template,
                "base": server.base,
                "studio_url": server.studio_url,
            }
            size = dataclasses.replace(sizes, search_runs=n)
            print(f"  {n:,} runs:", end=" ", flush=True)
            at.update(run_client(server, "growth_reads", size, state))
            # An experiment of its own: its runs' 30 keys would widen the page's table.
            at["ingest"] = run_client(server, "ingest", size)
            print("measured", flush=True)
        except Exception as exc:  # recorded; the larger sizes build on this one
            at["error"] = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            print(f"failed: {at['error']}", flush=True)
            out["runs"][n] = at
            break
        out["runs"][n] = at
    for p in points:
        size = dataclasses.replace(sizes, memory_steps=p)
        try:
            print(f"  history of {p:,} points:", end=" ", flush=True)
            loaded = run_client(server, "memory_prep", size)
            analyze(server)
            read = run_client_sampling(server, "memory_read", size, loaded)
            out["points"][p] = {"prep": loaded, **read}
            print("measured", flush=True)
        except Exception as exc:
            out["points"][p] = {"error": str(exc).strip().splitlines()[-1]}
            print(f"failed: {out['points'][p]['error']}", flush=True)
    return out


# --- remote runs: a private Redis, the compute worker --------------------------------


@dataclasses.dataclass
class Remote:
    """What the remote workload shares: its folder (searchable by the sandbox's uid), the
    project both sides run, and the broker between the studio and its worker (a Redis of
    our own: the machine's serves others)."""

    root: Path
    project: Path
    broker: str = ""
    redis: subprocess.Popen | None = None


@contextlib.contextmanager
def remote_setup(args: argparse.Namespace) -> Iterator[Remote]:
    root = Path(tempfile.mkdtemp(prefix="mlstudio-bench-remote-"))
    root.chmod(0o711)  # the sandbox's uid reaches the worker's envs and jobs through it
    UV_CACHE.mkdir(mode=0o700, exist_ok=True)
    remote = Remote(root=root, project=root / "project")
    write_project(remote.project, REMOTE_PYTHON)
    try:
        if args.only != "mlflow" and not args.ours_as_mlflow:
            remote.redis, remote.broker = _start_redis(root / "redis")
        yield remote
    finally:
        if remote.redis is not None:
            _stop_group(remote.redis)
        shutil.rmtree(root, ignore_errors=True)


def _start_redis(folder: Path) -> tuple[subprocess.Popen | None, str]:
    """A redis-server on a free port, keeping nothing on disk; (None, "") without one."""
    binary = shutil.which("redis-server")
    if binary is None:
        print("  redis-server is not installed: the remote workload will fail", flush=True)
        return None, ""
    folder.mkdir()
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", PG_HOST, "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((PG_HOST, port)) == 0:
                return proc, f"redis://{PG_HOST}:{port}/0"
        time.sleep(0.05)
    _stop_group(proc)
    raise RuntimeError("redis-server did not start")


# What runstudio gets from the hook: the worker's command line and environment (its own
# new worker token, none of the studio's secrets).
_WORKER_HOOK = """
import json
from portal import registry
found = {}
for extra in registry.call_hook("studio_processes", studio_url=%r):
    found.update(extra)
argv, env = found["compute"]
print(json.dumps({"argv": argv, "env": env}))
"""


@contextlib.contextmanager
def compute_worker(server: Server, remote: Remote) -> Iterator[Path]:
    """The compute worker `make run` starts beside the studio (the studio_processes hook's
    command), with its caches in the bench's folder; yields its environment cache."""
    if not remote.broker:
        raise RuntimeError("no broker for the compute worker (is redis-server installed?)")
    hooked = json.loads(_manage(server.env, "shell", "-c", _WORKER_HOOK % server.base))
    cache, jobs = remote.root / "worker-envs", remote.root / "worker-jobs"
    argv = [
        *hooked["argv"],
        "--cache-dir",
        str(cache),
        "--uv-cache-dir",
        str(UV_CACHE),
        "--jobs-dir",
        str(jobs),
    ]
    log_path = OUT_DIR / "compute-worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=hooked["env"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the compute worker did not start; see {log_path}")
            time.sleep(0.1)
        yield cache
    finally:
        _stop_group(proc)


def _wait_for_bytecode(cache: Path, timeout: float = 600) -> float:
    """Wait until the worker's background bytecode compile of its envs ends; its seconds."""
    deadline, seconds = time.monotonic() + timeout, 0.0
    for env in (p for p in (cache / "envs").iterdir() if not p.name.startswith(".")):
        marker = env / "mlstudio-bytecode.json"
        while not marker.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{env.name[:12]}: no bytecode after {timeout:.0f} s")
            time.sleep(0.2)
        seconds = max(seconds, json.loads(marker.read_text())["seconds"])
    return seconds


def _drain_rows(server: Server, run_ids: list[str]) -> dict:
    """The server's side of "each job ran exactly once": attempts and claims per job row."""
    with _pg_connect(server.database) as conn:
        rows = conn.execute(
            "SELECT r.run_uuid, j.attempts, j.log FROM deployments_remotejob j "
            "JOIN tracking_run r ON r.id = j.run_id WHERE r.run_uuid = ANY(%s)",
            (run_ids,),
        ).fetchall()
    wrong = [
        f"{run_uuid[:8]}: {attempts} attempt(s), {log.count('Claimed by')} claim(s)"
        for run_uuid, attempts, log in rows
        if attempts != 1 or log.count("Claimed by") != 1
    ]
    if len(rows) != len(run_ids):
        wrong.append(f"{len(run_ids) - len(rows)} job rows missing")
    return {"rows": len(rows), "once": not wrong, "wrong": wrong[:10]}


def run_remote(server: Server, sizes: Sizes, remote: Remote) -> dict:
    """Ours: the compute worker started, one run to build its env (its bytecode waited
    for), timed runs, cold builds, the drain. mlflow: a first `mlflow run`, timed runs,
    bare uv builds."""
    state = {
        "kind": server.kind,
        "uri": server.uri,
        "base": server.base,
        "studio_url": server.studio_url if server.kind == "studio" else "",
        "project": str(remote.project),
        "root": str(remote.root),
        "uv_cache": str(UV_CACHE),
        "checkout": str(ROOT),
        "slots": REMOTE_SLOTS,
        "mlflow_env_root": str(remote.root / "mlflow-envs"),
    }
    if server.kind != "studio":
        first = run_client(server, "remote_warmup", sizes, state)
        warm = run_client(server, "remote_warm", sizes, state)
        cold = run_client(server, "remote_cold", sizes, state)
        return {"first": first, "warm": warm, "cold": cold}
    with compute_worker(server, remote) as cache:
        first = run_client(server, "remote_warmup", sizes, state)
        first["bytecode_s"] = _wait_for_bytecode(cache)
        warm = run_client(server, "remote_warm", sizes, state)
        cold = run_client(server, "remote_cold", sizes, state)
        drain = run_client(server, "remote_drain", sizes, state)
    drain.update(_drain_rows(server, drain["run_ids"]))
    drain["exactly_once"] = (
        drain["output_once"] and drain["once"] and (drain["completed"] == drain["jobs"])
    )
    return {"first": first, "warm": warm, "cold": cold, "drain": drain}


# --- main -----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, Sizes]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--only", choices=SERVERS, help="benchmark one server only")
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)}",
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes per server")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument(
        "--mlflow-sgi",
        choices=("uvicorn", "gunicorn"),
        default="uvicorn",
        help="how mlflow server serves: uvicorn (its default) or gunicorn --threads like ours",
    )
    for field in dataclasses.fields(Sizes):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            type=int,
            default=None,
            help=f"(default {field.default:,})",
        )
    parser.add_argument(
        "--scoring-seconds",
        type=float,
        default=None,
        help="scoring: measured seconds per server and connection count (default 10; quick 3)",
    )
    parser.add_argument(
        "--growth",
        action="store_true",
        help="the growth table instead of the workloads: ours only, at --growth-runs runs "
        "and --growth-points history points; written to var/bench/growth.md",
    )
    parser.add_argument(
        "--growth-runs",
        default=None,
        help="comma-separated experiment sizes (default 1000,10000,100000; quick 200,1000,5000)",
    )
    parser.add_argument(
        "--growth-points",
        default=None,
        help="comma-separated history sizes (default 10000,100000,1000000; quick 1000,10000,50000)",
    )
    # Harness self-test: run a second `mlflow server` in our slot.
    parser.add_argument("--ours-as-mlflow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = Sizes(**(QUICK if args.quick else {}))
    for field in dataclasses.fields(Sizes):
        if getattr(args, field.name) is not None:
            setattr(sizes, field.name, getattr(args, field.name))
    sizes.bulk_runs = min(sizes.bulk_runs, 100)
    chosen = {w.strip() for w in args.workloads.split(",") if w.strip()}
    unknown = chosen - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    # Always in WORKLOADS' order: `pages` renders the data `search` and `memory` load.
    args.workloads = [w for w in WORKLOADS if w in chosen]
    quick_growth = args.quick
    args.growth_runs = _sizes_list(
        args.growth_runs or ("200,1000,5000" if quick_growth else "1000,10000,100000")
    )
    args.growth_points = _sizes_list(
        args.growth_points or ("1000,10000,50000" if quick_growth else "10000,100000,1000000")
    )
    if args.growth:
        args.only, args.workloads = "ours", []
    if args.scoring_seconds is None:
        args.scoring_seconds = 3.0 if args.quick else 10.0
    return args, sizes


def _sizes_list(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def servers_running(
    args: argparse.Namespace, workdir: Path, broker: str = ""
) -> Iterator[list[Server]]:
    chosen = [args.only] if args.only else list(SERVERS)
    servers = [
        Server(
            key=key,
            kind="mlflow" if key == "mlflow" or args.ours_as_mlflow else "studio",
            port=_free_port(),
            database=OURS_DB if key == "ours" else MLFLOW_DB,
            workdir=workdir / key,
        )
        for key in chosen
    ]
    try:
        for server in servers:
            print(f"Starting {LABELS[server.key]} ({server.kind}) on {server.base} …", flush=True)
            pages = "pages" in args.workloads or args.growth
            start_server(server, args.workers, args.threads, args.mlflow_sgi, pages, broker)
            print(f"  tracking URI {server.uri}", flush=True)
        yield servers
    finally:
        for server in servers:
            stop_server(server)


def _measure(name: str, server: Server, sizes: Sizes, shared: dict, remote: Remote | None) -> dict:
    label = LABELS[server.key]
    if server.proc.poll() is not None:
        return {"error": f"{label} is not running"}
    print(f"[{name}] {label} …", end=" ", flush=True)
    started = time.monotonic()
    try:
        result = run_workload(name, server, sizes, shared, remote)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        result = {"error": lines[-1] if lines else repr(exc)}
        print(f"failed: {result['error']}", flush=True)
        if server.proc.poll() is not None:
            print(f"{label} died; the end of {server.log_path}:\n{_tail(server)}", flush=True)
        return result
    print(f"{time.monotonic() - started:.1f} s", flush=True)
    return result


def main(argv: list[str]) -> int:
    args, sizes = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    started, load = time.monotonic(), os.getloadavg()
    if load[0] > (os.cpu_count() or 1) / 2:
        print(
            f"Note: load average is {load[0]:.1f} on {os.cpu_count()} CPUs; "
            "other work on this machine makes the figures noisy.",
            flush=True,
        )
    if args.growth:
        return growth_main(args, sizes, started, load)
    # `scoring` starts its own servers (no tracking server, no database).
    tracking = [w for w in args.workloads if w != "scoring"]
    if tracking:
        ensure_postgres()
    for stale in [*OUT_DIR.glob("*-client-error.log"), *OUT_DIR.glob("pages/*.png")]:
        stale.unlink()
    results: dict[str, dict[str, dict]] = {key: {} for key in SERVERS}
    shared: dict[str, dict] = {key: {} for key in SERVERS}  # data reused across workloads
    workdir = Path(tempfile.mkdtemp(prefix="mlstudio-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            remote = None
            if "remote" in args.workloads:
                remote = stack.enter_context(remote_setup(args))
            broker = remote.broker if remote else ""
            servers = (
                stack.enter_context(servers_running(args, workdir, broker)) if tracking else []
            )
            for name in tracking:
                for server in servers:
                    data = shared[server.key]
                    results[server.key][name] = _measure(name, server, sizes, data, remote)
        if "scoring" in args.workloads:
            print("[scoring] our scoring server vs mlflow models serve …", flush=True)
            scored = run_scoring(args.scoring_seconds, OUT_DIR, args.only)
            for key in SERVERS:
                results[key]["scoring"] = scored[key]
    except KeyboardInterrupt:
        print("\nInterrupted; servers stopped.", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table, misses = build_table(results, sizes)
    print()
    print(render_text(table))
    path = OUT_DIR / "last.md"
    write_report(table, results, sizes, _header(args, started, load), path)
    if misses:
        print(f"\nTargets missed ({len(misses)}): " + "; ".join(misses))
    (OUT_DIR / "last.json").write_text(json.dumps(results, indent=2))
    print(f"\nWritten to {path.relative_to(ROOT)}; raw results in var/bench/last.json")
    return 0


def growth_main(
    args: argparse.Namespace, sizes: Sizes, started: float, load: tuple[float, ...]
) -> int:
    """`--growth`: our server alone, the growth table to stdout and var/bench/growth.md."""
    ensure_postgres()
    workdir = Path(tempfile.mkdtemp(prefix="mlstudio-bench-"))
    try:
        with servers_running(args, workdir) as servers:
            print("[growth] ML Studio …", flush=True)
            result = run_growth(servers[0], sizes, args.growth_runs, args.growth_points)
    except KeyboardInterrupt:
        print("\nInterrupted; servers stopped.", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    header = _header(args, started, load) + f" Kernel {platform.release()}."
    path = OUT_DIR / "growth.md"
    print()
    print(write_growth(result, sizes, header, path))
    (OUT_DIR / "growth.json").write_text(json.dumps(result, indent=2))
    print(f"\nWritten to {path.relative_to(ROOT)}; raw results in var/bench/growth.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
