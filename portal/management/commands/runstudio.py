"""Run the web server, a Celery worker and what other apps add (the compute worker of
`local` targets) together; Ctrl-C stops them all cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from portal import registry


class Command(BaseCommand):
    help = "Serve the studio with gunicorn and run a Celery worker (with beat) beside it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2"))
        )
        parser.add_argument(
            "--worker-concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2"))
        )
        parser.add_argument("--no-worker", action="store_true", help="serve pages only")

    def handle(self, *args, **opts) -> None:
        python = sys.executable
        bin_dir = os.path.dirname(python)
        commands = {
            "web": [
                os.path.join(bin_dir, "gunicorn"),
                "portal.wsgi",
                "--bind",
                f"{opts['host']}:{opts['port']}",
                "--workers",
                str(opts["web_workers"]),
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "10",
                # The MLflow UI's bulk-interval history names 100 run ids in the query
                # string (~4.3 kB), and a client naming more must get the protocol's JSON
                # refusal ("must specify at most 100 run_ids"), not gunicorn's HTML 400:
                # past 8190 bytes gunicorn offers only "unlimited" (0). A front proxy caps
                # it in production (docs/mlflow-compatibility.md).
                "--limit-request-line",
                "0",
            ],
        }
        if not opts["no_worker"]:
            commands["worker"] = [
                os.path.join(bin_dir, "celery"),
                "-A",
                "portal",
                "worker",
                "--beat",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(opts["worker_concurrency"]),
                "--schedule",
                str(settings.DATA_DIR / "celerybeat-schedule"),
            ]
        # Processes other apps add (the compute worker of `local` targets): name →
        # (argv, environment).
        envs: dict[str, dict[str, str] | None] = {}
        if not opts["no_worker"]:
            studio_url = f"http://{opts['host']}:{opts['port']}"
            for extra in registry.call_hook("studio_processes", studio_url=studio_url):
                for name, (argv, env) in extra.items():
                    commands[name] = argv
                    envs[name] = env
        procs: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            # Own process groups: a Ctrl-C reaches us once, and we stop the children in order.
            procs[name] = subprocess.Popen(command, start_new_session=True, env=envs.get(name))
        self.stdout.write(
            self.style.SUCCESS(
                f"ML Studio is up on http://{opts['host']}:{opts['port']}/ — Ctrl-C stops it."
            )
        )
        exit_code = 0
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    self.stderr.write(f"{name} exited with code {proc.returncode}; stopping.")
                    exit_code = proc.returncode or 1
                    stopping = True
            time.sleep(0.3)
        self._shutdown(procs)
        self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)

    def _shutdown(self, procs: dict[str, subprocess.Popen]) -> None:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
