"""A real Celery worker process takes the health task through each kind of broker."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT, redis_available, require, start_worker, stop_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_worker_answers_the_health_task(tmp_path, broker):
    if broker == "redis":
        require(redis_available(), "Redis is not running on 127.0.0.1:6379")
    worker = start_worker(tmp_path, broker)
    try:
        result = worker.run_manage("check_worker", "--timeout", "60")
        assert result.returncode == 0, result.stderr + worker.log.read_text()[-2000:]
        assert "answered" in result.stdout
        log = worker.log.read_text()
        assert "portal.tasks.ping" in log and "succeeded" in log
        expected = "redis://" if broker == "redis" else "filesystem://"
        assert expected in log  # the worker's banner names the transport it used
    finally:
        stop_worker(worker)


def test_check_worker_fails_when_no_worker_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_URL"))}
    env.update(DATA_DIR=str(tmp_path), DEBUG="1")
    result = subprocess.run(
        [sys.executable, "manage.py", "check_worker", "--timeout", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "No worker answered" in result.stderr
