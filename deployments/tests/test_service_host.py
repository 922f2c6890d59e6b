"""The local runtime through real processes: the diabetes model logged by the real client
to the live server, its image built by portal's job machinery, the service host
(`manage.py service_host`) started as its own process, deployment jobs run here by the
job machinery (the same code a Celery worker runs), and every answer read over HTTP from
the real scoring server behind the service's front.

What is checked: key 200 / no key 401 / token 200, a chunked request and keep-alive
through the front, a regenerated key working at once, an update to a new image while a
thread keeps scoring (no failed request), a SIGKILLed instance coming back, a SIGKILLed
host adopting what runs, a stopped host stopping its services and the next one starting
them again, delete (processes gone, port closed) and a workspace purge leaving no process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from conftest import ROOT, _database_url_for_tests
from deployments.models import DeploymentJob, Image, WebService
from deployments.runtimes import local
from deployments.services import images as image_svc
from deployments.services import webservices as svc
from deployments.tests.runner_support import ENV_CACHE_ROOT
from deployments.tests.test_images import log_diabetes_model, run_build
from portal.models import AuditEntry, Job
from portal.services.deletion import deletion_job_execute
from portal.services.jobs import job_run
from tracking.tests.conftest import tracking  # noqa: F401  (fixture)

pytestmark = [pytest.mark.usefixtures("tracking"), pytest.mark.slow]

ROW = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path) -> None:
    settings.IMAGE_ENV_CACHE_DIR = str(ENV_CACHE_ROOT)
    settings.DOCKER_ENABLED = "0"
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir(exist_ok=True)
    settings.SERVICE_DEPLOY_TIMEOUT = 180


class Host:
    """`manage.py service_host` as its own process, on the tests' database and folders."""

    def __init__(self, settings, studio_url: str, log: Path, docker: str = "0") -> None:
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CELERY_", "REDIS_URL", "DJANGO_"))
        }
        self.env.update(
            DATA_DIR=str(settings.DATA_DIR),
            DATABASE_URL=_database_url_for_tests(),
            SECRET_KEY=settings.SECRET_KEY,
            ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT),
            IMAGE_ENV_CACHE_DIR=str(ENV_CACHE_ROOT),
            DOCKER_ENABLED=docker,
            DEBUG="1",
        )
        self.studio_url = studio_url
        self.log = log
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "service_host", "--studio-url", self.studio_url],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = time.monotonic() + 60
        while self.log.read_text().count("service host ready") < self.starts:
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.1)

    def kill(self, signum: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(signum)
        self.process.wait(timeout=60)

    def text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def host(settings, live_server, tmp_path) -> Iterator[Host]:
    host = Host(settings, live_server.url, tmp_path / "service_host.log")
    host.start()
    yield host
    if host.process is not None and host.process.poll() is None:
        host.kill(signal.SIGTERM)
        time.sleep(0.5)  # its database session ends a moment after it exits
    # Whatever a failed test left: no process of ours outlives it.
    root = Path(settings.DATA_DIR) / "services"
    for folder in root.glob("[0-9]*"):
        local.stop_service_processes(int(folder.name))


def build_image(cast, run_id: str, name: str = "sklearn-image") -> Image:
    image = image_svc.image_build_request(
        actor=cast.contributor,
        workspace=cast.workspace,
        model_uri=f"runs:/{run_id}/model",
        model_name="sklearn-model",
        image_name=name,
    )
    job = run_build(image)
    image.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, (job.error, image.build_log)
    return image


def run_job(job: DeploymentJob, host: Host) -> DeploymentJob:
    job_run(model_label="deployments.deploymentjob", job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{job.log}\n{host.text()}"
    return job


def latest_job(service: WebService) -> DeploymentJob:
    return DeploymentJob.objects.filter(service_id=service.pk).order_by("-created_at").first()


def wait_for(check: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def host_state(service: WebService) -> dict:
    service.refresh_from_db()
    return (service.runtime_state or {}).get("host") or {}


def score(uri: str, key: str | None, session: requests.Session | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return (session or requests).post(uri, json={"data": [ROW]}, headers=headers, timeout=30)


def status(uri: str, key: str | None) -> int:
    """The answer's status, 0 when nothing answers (yet)."""
    try:
        return score(uri, key).status_code
    except requests.ConnectionError:
        return 0


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    return local.pid_alive(pid)


def test_deploy_score_update_recover_and_delete(cast, host, settings):
    run_id = log_diabetes_model()
    image = build_image(cast, run_id)
    service = svc.service_deploy(
        actor=cast.contributor,
        workspace=cast.workspace,
        name="diabetes-model-1",
        image=image,
        compute_type="aci",
        config={"cpu_cores": 1, "memory_gb": 1},
        description="Diabetes model",
        tags={"method": "sklearn"},
    )
    assert service.state == WebService.State.TRANSITIONING
    assert len(service.telemetry_token_hash) == 64
    job = run_job(latest_job(service), host)
    assert job.operation == "create" and job.progress_done == job.progress_total
    service.refresh_from_db()
    assert service.state == WebService.State.HEALTHY, service.error
    port = service.runtime_state["desired"]["port"]
    assert service.scoring_uri == f"http://127.0.0.1:{port}/score"
    assert service.swagger_uri == f"http://127.0.0.1:{port}/swagger.json"
    first = host_state(service)
    assert first["healthy"] and alive(first["pid"]) and alive(first["front_pid"])

    # --- Scoring: key 200, none 401, token 200, swagger without auth.
    primary, secondary = svc.service_keys(service=service)
    answer = score(service.scoring_uri, primary)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()
    values = predictions["predictions"] if isinstance(predictions, dict) else predictions
    assert len(values) == 1 and isinstance(values[0], float)
    assert score(service.scoring_uri, secondary).status_code == 200
    assert score(service.scoring_uri, None).status_code == 401
    assert score(service.scoring_uri, "not-a-key").status_code == 401
    token, refresh_by = svc.service_token(service=service)
    assert refresh_by > time.time() and score(service.scoring_uri, token).status_code == 200
    assert requests.get(service.swagger_uri, timeout=10).status_code == 200
    # Through the front: keep-alive, a chunked body, HEAD-less GETs in between.
    with requests.Session() as session:
        for _ in range(5):
            assert score(service.scoring_uri, primary, session).status_code == 200
            assert session.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        body = (part for part in (b'{"data": [', str(ROW).encode(), b"]}"))
        chunked = session.post(
            service.scoring_uri,
            data=body,
            headers={"Authorization": f"Bearer {primary}", "Content-Type": "application/json"},
            timeout=30,
        )
        assert chunked.status_code == 200, chunked.text
        assert chunked.json() == predictions

    # --- A regenerated key works within a second; the old one stops working.
    svc.service_regen_key(actor=cast.contributor, service=service, key="Primary")
    service.refresh_from_db()
    new_primary, same_secondary = svc.service_keys(service=service)
    assert new_primary != primary and same_secondary == secondary
    wait_for(lambda: status(service.scoring_uri, new_primary) == 200, "the new key", 5)
    assert score(service.scoring_uri, primary).status_code == 401
    assert AuditEntry.objects.filter(action="regen_key", target_id=str(service.pk)).exists()

    # --- Update to a new image while a thread keeps scoring: no request fails.
    image2 = build_image(cast, run_id)
    assert image2.version == 2
    failures: list[str] = []
    done = threading.Event()
    count = [0]

    def keep_scoring() -> None:
        with requests.Session() as session:
            while not done.is_set():
                try:
                    answer = score(service.scoring_uri, new_primary, session)
                    if answer.status_code != 200:
                        failures.append(f"{answer.status_code} {answer.text[:200]}")
                except requests.RequestException as exc:
                    failures.append(repr(exc))
                count[0] += 1

    scorer = threading.Thread(target=keep_scoring)
    scorer.start()
    try:
        time.sleep(0.5)
        svc.service_update(
            actor=cast.contributor, service=service, image=image2, tags={"method": "ridge"}
        )
        service.refresh_from_db()
        assert service.state == WebService.State.TRANSITIONING and service.tags["method"] == "ridge"
        run_job(latest_job(service), host)
        old_pid = first["pid"]
        wait_for(lambda: not alive(old_pid), "the old instance to stop", 40)
        time.sleep(0.5)
    finally:
        done.set()
        scorer.join(timeout=60)
    assert not failures, failures[:5]
    assert count[0] > 20, count
    service.refresh_from_db()
    second = host_state(service)
    assert service.image_id == image2.pk and service.state == WebService.State.HEALTHY
    assert second["pid"] != first["pid"] and second["front_pid"] == first["front_pid"]
    assert service.scoring_uri == f"http://127.0.0.1:{port}/score"

    # --- A killed instance comes back (new pid, 200 again).
    os.kill(second["pid"], signal.SIGKILL)
    third = wait_for(
        lambda: (s := host_state(service)).get("healthy") and s.get("pid") != second["pid"] and s,
        "the instance to come back",
        90,
    )
    assert third["restarts"] == 1
    assert score(service.scoring_uri, new_primary).status_code == 200
    service.refresh_from_db()
    assert service.state == WebService.State.HEALTHY

    # --- A host killed with SIGKILL: what runs keeps serving; the next host adopts it.
    host.kill(signal.SIGKILL)
    assert score(service.scoring_uri, new_primary).status_code == 200
    host.start()
    time.sleep(3)
    adopted = host_state(service)
    assert adopted["pid"] == third["pid"] and adopted["healthy"], host.text()
    assert "adopted generation" in host.text()
    assert score(service.scoring_uri, new_primary).status_code == 200

    # --- A host stopped cleanly stops its services; the next one starts them again.
    host.kill(signal.SIGTERM)
    assert not alive(third["pid"]) and not alive(third["front_pid"])
    assert not port_open(port)
    host.start()
    wait_for(lambda: status(service.scoring_uri, new_primary) == 200, "the restart", 90)
    fourth = host_state(service)
    assert fourth["pid"] != third["pid"]

    logs = svc.service_logs(service=service, tail_lines=200)
    assert "starting generation" in logs and str(settings.DATA_DIR) not in logs

    # --- Delete: the processes end, the port closes, the row goes.
    job = svc.service_delete(actor=cast.contributor, service=service)
    service.refresh_from_db()
    assert service.state == WebService.State.DELETING
    run_job(job, host)
    assert not WebService.objects.filter(pk=service.pk).exists()
    assert not alive(fourth["pid"]) and not alive(fourth["front_pid"])
    assert not port_open(port)
    assert not local.service_dir(service.pk).exists()
    time.sleep(1.5)  # the host forgets it and starts nothing again
    assert not port_open(port) and "Traceback" not in host.text()


def test_workspace_purge_stops_every_service(cast, host, settings):
    run_id = log_diabetes_model()
    image = build_image(cast, run_id)
    services = []
    for name in ("svc-one", "svc-two"):
        service = svc.service_deploy(
            actor=cast.contributor,
            workspace=cast.workspace,
            name=name,
            image=image,
            compute_type="local",
            config={},
        )
        services.append(service)
    for service in services:
        run_job(latest_job(service), host)
    pids = []
    ports = []
    for service in services:
        state = host_state(service)
        pids += [state["pid"], state["front_pid"]]
        ports.append(service.runtime_state["desired"]["port"])
    assert all(alive(p) for p in pids) and all(port_open(p) for p in ports)

    job = deletion_job_execute(actor=cast.owner, target=cast.workspace)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert not WebService.objects.filter(pk__in=[s.pk for s in services]).exists()
    assert not any(alive(p) for p in pids), [p for p in pids if alive(p)]
    # A reconcile pass that read a service's row just before the purge may start it once
    # more; its next pass sees the service gone and stops it: the ports close and stay so.
    wait_for(lambda: not any(port_open(p) for p in ports), "the services' ports to close", 15)
    time.sleep(1.5)
    assert not any(port_open(p) for p in ports), host.text()
