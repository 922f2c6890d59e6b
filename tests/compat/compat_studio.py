"""Start ML Studio for the harness and hand out a fresh workspace per test.

The studio runs as `make run` serves it (gunicorn on portal.wsgi), on a database and
DATA_DIR of its own under the run's output folder, so a harness run never touches a
developer's data. Workspaces are created through the REST API v1 with an admin's token.
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from compat_proxy import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "compat-admin"


class Studio:
    def __init__(self, out_dir: Path, database_url: str | None = None) -> None:
        self.out_dir = out_dir
        self.data_dir = out_dir / "studio-data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CELERY_", "REDIS_URL", "MLFLOW_", "DJANGO_"))
        }
        self.env.update(
            PYTHONPATH=str(ROOT),
            DATA_DIR=str(self.data_dir),
            DATABASE_URL=database_url or f"sqlite:///{self.data_dir / 'studio.sqlite3'}",
            DEBUG="1",
            SECRET_KEY="compat-harness-" + secrets.token_hex(32),
            ACCESS_CACHE_SECONDS="0",
            MLSTUDIO_ADMIN_USER=ADMIN,
            MLSTUDIO_ADMIN_PASSWORD=secrets.token_urlsafe(16),
        )
        self.process: subprocess.Popen | None = None
        self.base = ""
        self.token = ""
        self._subscription_id = ""
        self._counter = itertools.count(1)
        self._run = secrets.token_hex(3)

    def _manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self) -> Studio:
        self._manage("migrate", "--noinput")
        self._manage("ensure_admin")
        self.token = (
            self._manage("create_token", ADMIN, "--name", "compat").strip().splitlines()[-1]
        )
        port = free_port()
        log = (self.out_dir / "studio.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "portal.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--timeout",
                "300",
                # As runstudio and the Dockerfile serve it.
                "--limit-request-line",
                "0",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{self.base}/healthz", timeout=10).ok:
                    break
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the studio did not start; see {self.out_dir / 'studio.log'}")
            time.sleep(0.3)
        response = self._api("post", "subscriptions", {"name": f"compat-{self._run}"})
        self._subscription_id = response["id"]
        self._api(
            "post",
            f"subscriptions/{self._subscription_id}/resourceGroups",
            {"name": "compat", "location": "local"},
        )
        return self

    def _api(self, method: str, path: str, body: dict | None = None) -> dict:
        response = requests.request(
            method,
            f"{self.base}/api/v1/{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=120,
        )
        if not response.ok:
            raise RuntimeError(
                f"{method.upper()} /api/v1/{path}: {response.status_code} {response.text}"
            )
        return response.json()

    def new_workspace(self) -> str:
        """Create a workspace and return its tracking URI."""
        name = f"t{self._run}-{next(self._counter):05d}"
        rg = f"subscriptions/{self._subscription_id}/resourceGroups/compat"
        self._api("post", f"{rg}/workspaces", {"name": name})
        return f"{self.base}/mlflow/v1.0/{rg}/workspaces/{name}"

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
