"""`mlstudio-worker`: join a compute target and run its jobs.

    MLSTUDIO_WORKER_TOKEN=mlsw_… mlstudio-worker --studio https://studio.example \\
        --broker redis://broker.example:6379/0 [--slots 2]

The token (made by a target's owner: `POST …/computes/<name>/worker-tokens`, or the
compute page) says which target; the studio tells the worker its queue."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
from pathlib import Path

from deployments.worker import app as worker_app
from deployments.worker.client import StudioClient, StudioError, StudioRefused
from deployments.worker.execute import Runner, WorkerConfig, default_dirs

log = logging.getLogger("mlstudio.worker")

VERSION = "1"
HEARTBEAT_SECONDS = 20.0


def _mib(value: str) -> int | None:
    number = int(value)
    return None if number == 0 else number << 20


def parser() -> argparse.ArgumentParser:
    cache, jobs = default_dirs()
    p = argparse.ArgumentParser(
        prog="mlstudio-worker",
        description="Run the remote runs of an ML Studio compute target.",
    )
    p.add_argument("--studio", default=os.environ.get("MLSTUDIO_URL"), help="the studio's URL")
    p.add_argument(
        "--broker",
        default=os.environ.get("MLSTUDIO_BROKER_URL") or os.environ.get("CELERY_BROKER_URL"),
        help="the Celery broker's URL (redis://host:6379/0)",
    )
    p.add_argument(
        "--broker-options",
        default=os.environ.get("MLSTUDIO_BROKER_OPTIONS", ""),
        help="the broker's transport options as JSON (e.g. a filesystem broker's folders)",
    )
    p.add_argument("--slots", type=int, default=int(os.environ.get("MLSTUDIO_SLOTS", "1")))
    p.add_argument("--hostname", default=socket.gethostname())
    p.add_argument("--cache-dir", type=Path, default=cache, help="environments cache")
    p.add_argument(
        "--uv-cache-dir",
        type=Path,
        default=os.environ.get("MLSTUDIO_UV_CACHE_DIR") or None,
        help="uv's download cache (default: uv-cache/ in --cache-dir); on the same "
        "filesystem as --cache-dir, so uv hardlinks from it",
    )
    p.add_argument("--jobs-dir", type=Path, default=jobs, help="jobs' work dirs")
    p.add_argument(
        "--hide", action="append", default=[], type=Path, help="a path jobs must not see"
    )
    p.add_argument("--memory-mb", type=_mib, default=4096 << 20, help="per job; 0: no limit")
    p.add_argument("--max-processes", type=int, default=512, help="per job")
    p.add_argument("--max-file-mb", type=_mib, default=4096 << 20, help="per file; 0: no limit")
    p.add_argument("--cpu-seconds", type=int, default=None, help="per process")
    p.add_argument("--require-sandbox", action="store_true", help="refuse to run unsandboxed")
    p.add_argument("--loglevel", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    token = os.environ.get("MLSTUDIO_WORKER_TOKEN", "")
    missing = [
        name
        for name, value in (("--studio", args.studio), ("--broker", args.broker), ("token", token))
        if not value
    ]
    if missing:
        print(
            f"mlstudio-worker: missing {', '.join(missing)} (the token comes from "
            "MLSTUDIO_WORKER_TOKEN)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=args.loglevel, format="%(asctime)s %(levelname)s %(message)s")
    client = StudioClient(args.studio, token)
    try:
        info = client.worker_info()
    except (StudioError, StudioRefused) as exc:
        print(f"mlstudio-worker: the studio refused or is unreachable: {exc}", file=sys.stderr)
        return 1
    where = info["target"] or "every workspace's local target"
    log.info("serving %s on queue %s with %d slot(s)", where, info["queue"], args.slots)
    config = WorkerConfig(
        studio_url=args.studio,
        hostname=args.hostname,
        cache_dir=args.cache_dir,
        uv_cache_dir=args.uv_cache_dir,
        jobs_dir=args.jobs_dir,
        hidden_paths=tuple(args.hide),
        memory_bytes=args.memory_mb,
        max_processes=args.max_processes,
        max_file_bytes=args.max_file_mb,
        cpu_seconds=args.cpu_seconds,
        require_sandbox=args.require_sandbox,
    )
    worker_app.set_runner(Runner(config, client))
    options = json.loads(args.broker_options) if args.broker_options else {}
    app = worker_app.make_app(
        broker_url=args.broker, queue=info["queue"], transport_options=options
    )
    stop = threading.Event()

    def heartbeat() -> None:
        while True:
            try:
                client.worker_heartbeat(args.hostname, args.slots, VERSION)
            except (StudioError, StudioRefused) as exc:
                log.warning("worker heartbeat failed: %s", exc)
            if stop.wait(HEARTBEAT_SECONDS):
                return

    threading.Thread(target=heartbeat, name="worker-heartbeat", daemon=True).start()
    try:
        app.worker_main(
            [
                "worker",
                "--queues",
                info["queue"],
                "--concurrency",
                str(args.slots),
                "--loglevel",
                args.loglevel,
                "--hostname",
                f"compute@{args.hostname}.%i".replace("%i", str(os.getpid())),
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
