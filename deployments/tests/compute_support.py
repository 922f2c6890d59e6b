"""A real compute worker for the tests: `python -m deployments.worker` as its own process,
talking to the test's live server over HTTP and consuming a Redis broker, the way a
worker on another machine would. And a private Redis server, which a test may restart
without disturbing anything else using the machine's Redis."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, producer_on, require
from deployments.models import ComputeTarget, RemoteJob
from deployments.services.workers import worker_token_create
from deployments.tests.runner_support import ENV_CACHE_ROOT

SERVER_VARIABLES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DATA_DIR", "TEST_REDIS_URL"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RedisServer:
    """A redis-server of our own (no persistence: a restart empties it, as the
    machine's Redis, started with --save "" --appendonly no, would)."""

    port: int
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisServer]:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    folder = Path(tempfile.mkdtemp(prefix="mlstudio-redis-"))
    server = RedisServer(_free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class ComputeWorker:
    process: subprocess.Popen
    log: Path
    jobs_dir: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: a machine lost mid-run."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_compute_worker(
    *,
    studio_url: str,
    broker_url: str,
    token: str,
    folder: Path,
    slots: int = 2,
    hide: tuple[Path, ...] = (),
    extra_args: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> ComputeWorker:
    """Start `mlstudio-worker` (the module) and wait until it consumes its queue."""
    jobs_dir = Path(tempfile.mkdtemp(prefix="compute-jobs-", dir="/tmp"))
    jobs_dir.chmod(0o711)
    log = folder / f"compute-worker-{time.monotonic_ns()}.log"
    # The machine's environment (its proxy and certificate settings, which uv needs to
    # reach the index), without the studio's: a worker knows only the broker and the URL.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SERVER_VARIABLES and not k.startswith(("CELERY_", "DJANGO_"))
    }
    env.update(MLSTUDIO_WORKER_TOKEN=token, **(extra_env or {}))
    argv = [
        sys.executable,
        "-m",
        "deployments.worker",
        "--studio",
        studio_url,
        "--broker",
        broker_url,
        "--slots",
        str(slots),
        "--cache-dir",
        str(ENV_CACHE_ROOT),
        "--jobs-dir",
        str(jobs_dir),
        *[arg for path in hide for arg in ("--hide", str(path))],
        *extra_args,
    ]
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = ComputeWorker(process, log, jobs_dir)
    deadline = time.monotonic() + 60
    while " ready." not in worker.text():
        if process.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"the compute worker did not start:\n{worker.text()[-3000:]}")
        time.sleep(0.1)
    return worker


def studio_worker_token(target: ComputeTarget | None = None) -> str:
    """A worker token (for the studio's own worker, serving `local`, unless a target)."""
    return worker_token_create(actor=None, target=target, name="test worker")[1]


def wait_for_stage(
    job: RemoteJob, stages: set[str], worker: ComputeWorker | None, timeout: float = 120
) -> RemoteJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.stage in stages:
            return job
        time.sleep(0.2)
    where = worker.text()[-4000:] if worker is not None else ""
    raise AssertionError(f"job stayed {job.stage} ({job.phase}): {job.error}\n{where}")


@pytest.fixture
def producer_on_redis(private_redis: RedisServer) -> Iterator[RedisServer]:
    """The studio's job messages go to the private Redis the compute workers consume."""
    with producer_on(private_redis.url):
        yield private_redis
