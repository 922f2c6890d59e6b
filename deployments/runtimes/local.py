"""The `local` runtime (compute types `local` and `aci`): services run on this machine,
supervised by the service host (`manage.py service_host`, deployments.servicehost).

The database carries the intent, the service host does the work:

- `deploy` (in a deployment job) records the desired instance in
  `service.runtime_state["desired"]` — a new generation with the image, the public port and
  the limits — and waits, reporting progress, until the service host says that generation
  serves (`runtime_state["host"]`), or failed (with the instance's last log lines), or the
  time is up.
- `stop` marks the service not running and stops its processes itself (the front, the
  instances, containers), so a deletion leaves nothing behind even with no service host
  running; the host, seeing the service gone, forgets it.

A service's files live in DATA_DIR/services/<id>/: the front's control file and log, one
folder per generation (its config file, mode 0600), the instances' log (`instance.log`,
cut to its newest half past LOG_MAX_BYTES), and the host's record of its processes
(`processes.json`), which lets a restarted host adopt what still runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from deployments.models import WebService
from deployments.runtimes.base import Endpoint, Progress, Runtime, RuntimeError_
from deployments.scoring.auth import hash_key
from portal import secrets

if TYPE_CHECKING:
    from deployments.models import Image

LOG_NAME = "instance.log"
LOG_MAX_BYTES = 10 * 1024 * 1024
PROCESSES_NAME = "processes.json"
HOST_FILE = "host.json"
# A host whose heartbeat file is older than this is taken for gone.
HOST_STALE_S = 15.0
STOP_GRACE_S = 10.0
TELEMETRY_PATH = "/api/v1/service-telemetry"
NO_HOST = (
    "No service host is running on the studio's machine: start it with "
    "`python manage.py service_host` (`make run` starts it)."
)


class PortInUse(RuntimeError_):
    """The fixed port a service asked for is taken."""


# --- Paths and small helpers ----------------------------------------------------------------


def services_root() -> Path:
    return Path(settings.DATA_DIR) / "services"


def service_dir(service_id: int) -> Path:
    return services_root() / str(service_id)


def generation_dir(service_id: int, generation: int) -> Path:
    return service_dir(service_id) / f"gen-{generation}"


def write_private(path: Path, text: str) -> None:
    """Write `text` atomically, readable by its owner only (config files hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def host_info() -> dict:
    """The running service host's heartbeat file ({} when none ever ran here)."""
    return read_json(services_root() / HOST_FILE)


def host_alive() -> bool:
    info = host_info()
    pid = info.get("pid")
    return (
        isinstance(pid, int)
        and pid_alive(pid)
        and time.time() - float(info.get("heartbeat", 0)) < HOST_STALE_S
    )


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def pid_matches(pid: int, marker: str) -> bool:
    """Whether `pid` runs and its command line holds `marker` (a path of the service's):
    a pid recorded long ago may belong to someone else by now."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def port_free(port: int, address: str | None = None) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address or settings.SERVICE_BIND_ADDRESS, port))
        except OSError:
            return False
    return True


def free_port(address: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind((address, 0))
            port = sock.getsockname()[1]
        if not avoid or port not in avoid:
            return port
    raise RuntimeError_("No free port found.")


def ports_in_use(exclude_id: int | None = None) -> set[int]:
    """Public ports the studio's local services hold or asked for."""
    used: set[int] = set()
    rows = WebService.objects.filter(
        compute_type__in=(WebService.ComputeType.LOCAL, WebService.ComputeType.ACI)
    ).values_list("pk", "runtime_state", "config")
    for pk, state, config in rows:
        if pk == exclude_id:
            continue
        for value in ((state or {}).get("desired", {}).get("port"), (config or {}).get("port")):
            if isinstance(value, int):
                used.add(value)
    return used


def check_port(port: int, exclude_id: int | None = None) -> None:
    """Refuse a fixed port another service has, or that something else listens on."""
    if port in ports_in_use(exclude_id):
        raise PortInUse(f"Port {port} is already used by another web service.")
    if not port_free(port):
        raise PortInUse(f"Port {port} is in use on the service host.")


def update_runtime_state(service_id: int, key: str, value: Any) -> dict:
    """Set one key of a service's runtime_state under a row lock (the deployment job and
    the service host each write their own key of it); returns the new state."""
    with transaction.atomic():
        row = (
            WebService.objects.select_for_update()
            .filter(pk=service_id)
            .values_list("runtime_state", flat=True)
            .first()
        )
        if row is None:
            return {}
        state = dict(row or {})
        state[key] = value
        WebService.objects.filter(pk=service_id).update(runtime_state=state)
    return state


def endpoint_for(port: int) -> Endpoint:
    base = f"http://{settings.SERVICE_HOST_ADDRESS}:{port}"
    return Endpoint(scoring_uri=f"{base}/score", swagger_uri=f"{base}/swagger.json")


# --- The scoring server's config file -------------------------------------------------------


def key_fields(service: WebService) -> dict[str, Any]:
    """The parts of the config that change without a restart: keys, token secret, auth."""
    hashes = [
        hash_key(secrets.decrypt(stored))
        for stored in (service.primary_key, service.secondary_key)
        if stored
    ]
    return {
        "auth_enabled": bool(service.auth_enabled),
        "key_hashes": hashes,
        "token_secret": secrets.decrypt(service.token_secret),
    }


def config_for(service: WebService, model_dir: str, telemetry_url: str | None) -> dict:
    return {
        "service": service.name,
        "service_id": service.pk,
        "model_dir": model_dir,
        **key_fields(service),
        "telemetry_url": telemetry_url,
        "telemetry_token": secrets.decrypt(service.telemetry_token) or None,
        "telemetry_interval_s": 5,
        "sample_rate": 1.0,
        "sample_max_rows": 100,
    }


def telemetry_url(studio_url: str | None) -> str | None:
    base = (studio_url or getattr(settings, "SITE_URL", "") or "").rstrip("/")
    return f"{base}{TELEMETRY_PATH}" if base else None


def refresh_keys(service: WebService) -> None:
    """Rewrite the key fields of the service's live config files (a key regenerated, auth
    switched): the scoring server re-reads its file when it changes, no restart."""
    root = service_dir(service.pk)
    if not root.is_dir():
        return
    fields = key_fields(service)
    for path in root.glob("gen-*/config.json"):
        current = read_json(path)
        if current and any(current.get(k) != v for k, v in fields.items()):
            current.update(fields)
            write_private(path, json.dumps(current))


# --- Logs -----------------------------------------------------------------------------------


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a file (reading at most ~lines*400 bytes of its end)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max(lines, 1) * 400))
            data = f.read()
    except OSError:
        return ""
    text = data.decode(errors="replace")
    parts = text.splitlines()
    if size > len(data):
        parts = parts[1:]  # the first line was cut
    return "\n".join(parts[-lines:]) + ("\n" if parts else "")


def container_logs(service: WebService, lines: int) -> str:
    host = (service.runtime_state or {}).get("host") or {}
    container_id = host.get("container")
    if not container_id:
        return ""
    from deployments.images import engine

    client = engine.connect(getattr(settings, "DOCKER_ENABLED", "auto"), timeout=10)
    if client is None:
        return ""
    try:
        return client.containers.get(container_id).logs(tail=lines).decode(errors="replace")
    except Exception:
        return ""
    finally:
        client.close()


# --- Stopping -------------------------------------------------------------------------------


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def stop_pids(pids: list[int], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM, then SIGKILL whatever still runs after `grace` seconds."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def recorded_processes(service_id: int) -> dict:
    return read_json(service_dir(service_id) / PROCESSES_NAME)


def stop_service_processes(service_id: int) -> None:
    """Stop every process and container recorded for the service; remove its cgroups."""
    root = service_dir(service_id)
    record = recorded_processes(service_id)
    marker = str(root)
    pids: list[int] = []
    front = record.get("front") or {}
    instances = list((record.get("instances") or {}).values())
    for entry in [front, *instances]:
        pid = entry.get("pid")
        if isinstance(pid, int) and pid_matches(pid, marker):
            pids.append(pid)
    containers = [e["container"] for e in instances if e.get("container")]
    stop_pids(pids)
    if containers:
        _remove_containers(containers)
    for entry in instances:
        for path in entry.get("cgroups") or []:
            with contextlib.suppress(OSError):
                Path(path).rmdir()


def _remove_containers(ids: list[str]) -> None:
    from deployments.images import engine

    client = engine.connect(getattr(settings, "DOCKER_ENABLED", "auto"), timeout=30)
    if client is None:
        return
    try:
        for container_id in ids:
            with contextlib.suppress(Exception):
                client.containers.get(container_id).remove(force=True)
    finally:
        client.close()


# --- The runtime ----------------------------------------------------------------------------


def limits(config: dict) -> dict[str, float | None]:
    cpu, memory = config.get("cpu_cores"), config.get("memory_gb")
    return {
        "cpu_cores": float(cpu) if cpu is not None else None,
        "memory_gb": float(memory) if memory is not None else None,
    }


class LocalRuntime(Runtime):
    name = "local"

    def deploy(self, service: WebService, image: Image, progress: Progress) -> Endpoint:
        from deployments.services.images import image_local

        self._need_host()
        progress(1, "Preparing the image's environment")
        image_local(image)  # builds the uv environment here when missing (idempotent)
        service.refresh_from_db()
        state = service.runtime_state or {}
        desired = dict(state.get("desired") or {})
        host = state.get("host") or {}
        wanted = {"image_id": image.pk, **limits(service.config or {})}
        port = (service.config or {}).get("port") or desired.get("port")
        if port and port != desired.get("port"):
            check_port(port, exclude_id=service.pk)
        if not port:
            port = free_port(settings.SERVICE_BIND_ADDRESS, avoid=ports_in_use(service.pk))
        generation = int(desired.get("generation") or 0)
        failed = (host.get("failed") or {}).get("generation")
        same = (
            desired.get("running")
            and all(desired.get(k) == v for k, v in wanted.items())
            and desired.get("port") == port
            and failed != generation
        )
        if not same:  # a job run again after its worker died keeps waiting for the same one
            generation += 1
            desired = {"generation": generation, "port": port, "running": True, **wanted}
            update_runtime_state(service.pk, "desired", desired)
        progress(1, "Waiting for the service host to start the instance")
        self._wait(service, generation, progress)
        progress(1, "Healthy")
        return endpoint_for(port)

    def _need_host(self) -> None:
        """Fail at once (after HOST_STALE_S, for one just starting) when no service host
        runs: nothing would ever start the instance."""
        deadline = time.monotonic() + HOST_STALE_S
        while not host_alive():
            if time.monotonic() > deadline:
                raise RuntimeError_(NO_HOST)
            time.sleep(0.25)

    def _wait(self, service: WebService, generation: int, progress: Progress) -> None:
        timeout = float(settings.SERVICE_DEPLOY_TIMEOUT)
        started = time.monotonic()
        phase, beat = "", 0.0
        no_host_since: float | None = None
        while True:
            row = WebService.objects.filter(pk=service.pk).values_list("runtime_state").first()
            if row is None:
                raise RuntimeError_("The service was deleted meanwhile.")
            host = (row[0] or {}).get("host") or {}
            if host.get("serving") == generation and host.get("healthy"):
                return
            failed = host.get("failed") or {}
            if failed.get("generation") == generation:
                raise RuntimeError_(failed.get("error") or "The instance did not start.")
            now = time.monotonic()
            if host_alive():
                no_host_since = None
            elif no_host_since is None:
                no_host_since = now
            elif now - no_host_since > HOST_STALE_S:
                raise RuntimeError_(NO_HOST)
            pending = host.get("pending") or {}
            new_phase = pending.get("phase") if pending.get("generation") == generation else ""
            new_phase = new_phase or "Waiting for the service host to start the instance"
            # A progress call also beats the job's heart, so recovery leaves it alone.
            if new_phase != phase or now - beat > 2:
                progress(0, new_phase)
                phase, beat = new_phase, now
            if now - started > timeout:
                logs = tail(service_dir(service.pk) / LOG_NAME, 20).strip()
                raise RuntimeError_(
                    f"The instance was not healthy after {int(timeout)} s."
                    + (f" Its last log lines:\n{logs}" if logs else "")
                )
            time.sleep(0.25)

    def stop(self, service: WebService) -> None:
        desired = dict((service.runtime_state or {}).get("desired") or {})
        desired["running"] = False
        update_runtime_state(service.pk, "desired", desired)
        stop_service_processes(service.pk)
        shutil.rmtree(service_dir(service.pk), ignore_errors=True)

    def state(self, service: WebService) -> str:
        state = service.runtime_state or {}
        host = state.get("host") or {}
        if not (state.get("desired") or {}).get("running"):
            return WebService.State.STOPPED
        if host.get("serving") is None:
            return WebService.State.FAILED if host.get("failed") else service.state
        if host.get("healthy"):
            return WebService.State.HEALTHY
        return WebService.State.FAILED if host.get("gave_up") else WebService.State.UNHEALTHY

    def logs(self, service: WebService, tail_lines: int = 5000) -> str:
        text = container_logs(service, tail_lines)
        return text or tail(service_dir(service.pk) / LOG_NAME, tail_lines)
