"""The local runtime with a Docker engine: the service host runs the image built by the
engine as a container (host network, CPU and memory limits, the config mounted read-only)
under the same supervision: scored with its key, restarted when the container is killed,
removed on delete.

Skipped without an engine or the base image (a failure in CI, as test_images_docker.py);
SKIP_DOCKER_TESTS=1 skips it."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

from deployments.models import WebService
from deployments.services import webservices as svc
from deployments.tests.test_images import log_diabetes_model
from deployments.tests.test_images_docker import docker_client  # noqa: F401  (fixture)
from deployments.tests.test_service_host import (
    Host,
    build_image,
    host_state,
    latest_job,
    port_open,
    run_job,
    score,
    status,
    wait_for,
)
from tracking.tests.conftest import tracking  # noqa: F401  (fixture)

pytestmark = [pytest.mark.usefixtures("tracking"), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path) -> None:
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir(exist_ok=True)
    settings.SERVICE_DEPLOY_TIMEOUT = 180


def test_a_service_runs_as_a_container(cast, docker_client, settings, live_server, tmp_path):  # noqa: F811
    run_id = log_diabetes_model()
    image = build_image(cast, run_id, name=f"svc-docker-{os.getpid()}")
    assert image.docker_image_id
    host = Host(settings, live_server.url, tmp_path / "service_host.log", docker="1")
    host.start()
    container_id = None
    service = None
    try:
        service = svc.service_deploy(
            actor=cast.contributor,
            workspace=cast.workspace,
            name="diabetes-docker",
            image=image,
            compute_type="aci",
            config={"cpu_cores": 1, "memory_gb": 1},
        )
        run_job(latest_job(service), host)
        service.refresh_from_db()
        assert service.state == WebService.State.HEALTHY, service.error
        state = host_state(service)
        container_id = state["container"]
        assert container_id and state["pid"] is None
        container = docker_client.containers.get(container_id)
        limits = container.attrs["HostConfig"]
        assert limits["NanoCpus"] == 10**9 and limits["Memory"] == 1024**3
        assert limits["NetworkMode"] == "host"
        mounts = container.attrs["Mounts"]
        assert any(m["Destination"] == "/mlstudio/config" and not m["RW"] for m in mounts)
        primary, _ = svc.service_keys(service=service)
        assert score(service.scoring_uri, primary).status_code == 200
        assert score(service.scoring_uri, None).status_code == 401
        assert "model loaded" in svc.service_logs(service=service, tail_lines=100)

        # A killed container is replaced.
        container.kill(signal="SIGKILL")
        state = wait_for(
            lambda: (
                (s := host_state(service)).get("healthy")
                and s.get("container") not in (None, container_id)
                and s
            ),
            "a new container",
            120,
        )
        assert status(service.scoring_uri, primary) == 200
        container_id = state["container"]

        # Delete: the container goes, the port closes.
        run_job(svc.service_delete(actor=cast.contributor, service=service), host)
        port = int(service.scoring_uri.rsplit(":", 1)[1].split("/")[0])
        assert not port_open(port)
        with pytest.raises(Exception, match=r"No such container|not found"):
            docker_client.containers.get(container_id)
        container_id = None
    finally:
        if host.process is not None and host.process.poll() is None:
            host.kill(signal.SIGTERM)
        if service is not None:  # whatever a failed test left behind
            label = f"mlstudio.service={service.pk}"
            for stale in docker_client.containers.list(all=True, filters={"label": label}):
                with contextlib.suppress(Exception):
                    stale.remove(force=True)
