"""The service host's loop: make what runs match what the database wants, every second.

For each web service of the local runtime whose desired state is running
(`runtime_state["desired"]`, written by the deployment job), the host keeps:

- a **front** (deployments.servicehost.front) on the service's public port, for the
  service's whole life, so the scoring URI never changes;
- an **instance** of the desired generation: the scoring server, as a process in the
  image's uv environment with cgroup limits (RLIMIT_AS for memory where cgroups are not
  writable), or a container when a Docker engine answers and the image was built into one.

A new generation starts beside the serving one; once it answers /health the front is
pointed at it, and only after the front acknowledged does the old instance get SIGTERM
(uvicorn finishes the requests it has, then exits): an update without a failed request.

An instance that exits or stops answering /health (HEALTH_FAILURES checks in a row) is
started again after a backoff that doubles (RESTART_BACKOFF_S); the service is Unhealthy
meanwhile and Failed after MAX_CRASHES crashes without a healthy minute in between. A
generation that never gets healthy (MAX_START_FAILURES tries, or STARTUP_TIMEOUT_S each)
is marked failed with its last log lines, for the deployment job to report; the serving
generation, if any, carries on.

Fronts and instances run in sessions of their own, so they outlive the host: a host that
crashed and is started again adopts what still runs (from each service's processes.json,
checking each pid's command line), and starts what does not. A host stopped cleanly
(SIGTERM, as `make run` stops it) stops everything it runs; the next one starts it again.
What the host knows is reported in `runtime_state["host"]` and, outside deployments, in
the service's state.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from deployments.models import Image, WebService
from deployments.runner.cgroups import JobCgroup, own_cgroup_dirs
from deployments.runtimes import local
from deployments.runtimes.local import (
    LOG_MAX_BYTES,
    LOG_NAME,
    PROCESSES_NAME,
    pid_matches,
    read_json,
    service_dir,
    write_private,
)

log = logging.getLogger("mlstudio.servicehost")

LOCAL_TYPES = (WebService.ComputeType.LOCAL, WebService.ComputeType.ACI)
TICK_S = 1.0
FAST_TICK_S = 0.2
HEALTH_INTERVAL_S = 2.0
HEALTH_TIMEOUT_S = 2.0
HEALTH_FAILURES = 3
STARTUP_TIMEOUT_S = 180.0
MAX_START_FAILURES = 3
MAX_CRASHES = 5
STABLE_S = 60.0
RESTART_BACKOFF_S = (1, 2, 4, 8, 16, 30)
DRAIN_TIMEOUT_S = 30.0
FRONT_START_S = 5.0
ACK_TIMEOUT_S = 3.0
CONTAINER_CONFIG_DIR = "/mlstudio/config"
CONTAINER_MODEL_DIR = "/app/model"


@dataclass
class Instance:
    generation: int
    port: int
    pid: int | None = None
    container: str | None = None
    cgroups: list[str] = field(default_factory=list)
    popen: subprocess.Popen | None = None
    started: float = field(default_factory=time.monotonic)
    healthy: bool = False
    failures: int = 0
    next_check: float = 0.0
    stopping_since: float | None = None

    def record(self) -> dict:
        return {
            "generation": self.generation,
            "port": self.port,
            "pid": self.pid,
            "container": self.container,
            "cgroups": self.cgroups,
        }


@dataclass
class Managed:
    service_id: int
    front_pid: int | None = None
    front_popen: subprocess.Popen | None = None
    front_port: int | None = None
    front_seq: int = 0
    front_backend: int | None = None
    instances: dict[int, Instance] = field(default_factory=dict)
    draining: list[Instance] = field(default_factory=list)
    serving: int | None = None
    restarts: int = 0
    crashes: int = 0
    healthy_since: float | None = None
    next_start: float = 0.0
    start_failures: dict[int, int] = field(default_factory=dict)
    failed: dict | None = None
    gave_up: bool = False
    pending_phase: str = ""
    reported: dict | None = None
    last_error: str = ""


class HostBusy(Exception):
    """Another service host runs on this DATA_DIR."""


class ServiceHost:
    def __init__(self, studio_url: str | None = None, tick: float = TICK_S) -> None:
        self.studio_url = studio_url
        self.tick = tick
        self.managed: dict[int, Managed] = {}
        self.stopping = False
        self.root = local.services_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file: Any = None
        self._docker: Any = None
        self._docker_checked = 0.0
        self._last_trim = 0.0

    # --- Lifecycle --------------------------------------------------------------------------

    def lock(self) -> None:
        self._lock_file = open(self.root / "host.lock", "w")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise HostBusy("another service host runs on this DATA_DIR") from None

    def run(self) -> None:
        self.lock()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        log.info("service host ready (pid %s)", os.getpid())
        while not self.stopping:
            started = time.monotonic()
            busy = self.step()
            pause = (FAST_TICK_S if busy else self.tick) - (time.monotonic() - started)
            if pause > 0 and not self.stopping:
                time.sleep(pause)
        self.shutdown()

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def step(self) -> bool:
        """One pass; True when something is in progress (the next pass comes sooner)."""
        self.heartbeat()
        try:
            close_old_connections()
            return self.reconcile()
        except Exception:
            log.exception("reconcile failed; trying again")
            close_old_connections()
            return False

    def heartbeat(self) -> None:
        info = {"pid": os.getpid(), "heartbeat": time.time(), "studio_url": self.studio_url}
        write_private(self.root / local.HOST_FILE, json.dumps(info))

    def shutdown(self) -> None:
        """A clean stop: stop every front and instance (the next host starts them again)."""
        log.info("stopping %d services", len(self.managed))
        for managed in list(self.managed.values()):
            self.stop_all(managed, keep_record=False)
        with contextlib.suppress(OSError):
            (self.root / local.HOST_FILE).unlink()
        log.info("service host stopped")

    # --- Reconcile --------------------------------------------------------------------------

    def reconcile(self) -> bool:
        services = {
            s.pk: s for s in WebService.objects.filter(compute_type__in=LOCAL_TYPES).order_by("pk")
        }
        wanted = {pk for pk, s in services.items() if self._desired(s).get("running")}
        for pk in [pk for pk in self.managed if pk not in wanted]:
            log.info("service %s is no longer wanted: stopping it", pk)
            self.stop_all(self.managed.pop(pk), keep_record=False)
        self.sweep_orphans(wanted, set(services))
        busy = False
        for pk in sorted(wanted):
            if self.stopping:
                break
            try:
                busy |= self.ensure(services[pk])
            except Exception as exc:
                log.exception("service %s: %s", pk, exc)
        if time.monotonic() - self._last_trim > 30:
            self._last_trim = time.monotonic()
            for pk in self.managed:
                trim_log(service_dir(pk) / LOG_NAME)
        return busy

    def sweep_orphans(self, wanted: set[int], known: set[int]) -> None:
        """Processes recorded for services that are not wanted (a host that died before it
        could stop them): stop them; remove the folders of services that are gone."""
        for path in self.root.iterdir():
            if not path.name.isdigit():
                continue
            pk = int(path.name)
            if pk in wanted or pk in self.managed:
                continue
            record = read_json(path / PROCESSES_NAME)
            if record.get("front") or record.get("instances"):
                log.info("stopping what is left of service %s", pk)
                local.stop_service_processes(pk)
                write_private(path / PROCESSES_NAME, "{}")
            if pk not in known:
                shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _desired(service: WebService) -> dict:
        return (service.runtime_state or {}).get("desired") or {}

    def adopt(self, service: WebService) -> Managed:
        """The host's view of a service it meets first: what still runs is adopted."""
        managed = Managed(service.pk)
        record = read_json(service_dir(service.pk) / PROCESSES_NAME)
        marker = str(service_dir(service.pk))
        front = record.get("front") or {}
        if isinstance(front.get("pid"), int) and pid_matches(front["pid"], marker):
            managed.front_pid, managed.front_port = front["pid"], front.get("port")
            managed.front_seq = int(front.get("seq") or 0)
            managed.front_backend = front.get("backend")
            log.info("service %s: adopted its front (pid %s)", service.pk, front["pid"])
        for entry in (record.get("instances") or {}).values():
            instance = Instance(
                generation=int(entry["generation"]),
                port=int(entry["port"]),
                pid=entry.get("pid"),
                container=entry.get("container"),
                cgroups=list(entry.get("cgroups") or []),
            )
            if self.instance_alive(instance, marker):
                managed.instances[instance.generation] = instance
                log.info(
                    "service %s: adopted generation %s (pid %s, port %s)",
                    service.pk,
                    instance.generation,
                    instance.pid,
                    instance.port,
                )
            else:
                self.cleanup(instance)
        serving = record.get("serving")
        if serving in managed.instances and managed.front_backend == (
            managed.instances[serving].port
        ):
            managed.serving = serving
        host = (service.runtime_state or {}).get("host") or {}
        managed.restarts = int(host.get("restarts") or 0)
        failed = host.get("failed")
        if failed and failed.get("generation") == self._desired(service).get("generation"):
            managed.failed = failed
        managed.gave_up = bool(host.get("gave_up"))
        return managed

    def ensure(self, service: WebService) -> bool:
        desired = self._desired(service)
        generation = int(desired["generation"])
        managed = self.managed.get(service.pk)
        if managed is None:
            managed = self.managed[service.pk] = self.adopt(service)
        if managed.failed and managed.failed.get("generation") != generation:
            managed.failed, managed.gave_up, managed.crashes = None, False, 0
        self.reap(managed)
        busy = bool(managed.draining)
        if not self.ensure_front(managed, int(desired["port"]), generation):
            self.report(managed, service, generation)
            return busy
        target = managed.instances.get(generation)
        marker = str(service_dir(service.pk))
        if managed.failed is None:
            if target is None:
                busy = True
                if time.monotonic() >= managed.next_start:
                    self.start_instance(managed, service, desired)
            elif not self.instance_alive(target, marker):
                busy = True
                self.instance_died(managed, service, target)
            elif not target.healthy:
                busy = True
                self.check_starting(managed, service, target)
            else:
                self.check_running(managed, target)
                if managed.front_backend != target.port:
                    self.switch(managed, target)
        # Older generations: the serving one carries on until the new one serves.
        for old in [i for g, i in managed.instances.items() if g != generation]:
            if managed.serving != old.generation or not self.instance_alive(old, marker):
                self.begin_stop(managed, old)
        self.report(managed, service, generation)
        self.save_record(managed)
        return busy

    # --- Front ------------------------------------------------------------------------------

    def ensure_front(self, managed: Managed, port: int, generation: int) -> bool:
        marker = str(service_dir(managed.service_id))
        alive = managed.front_pid is not None and (
            managed.front_popen.poll() is None
            if managed.front_popen is not None
            else pid_matches(managed.front_pid, marker)
        )
        if alive and managed.front_port == port:
            return True
        if alive:  # the port changed (not done today, but a front must match its port)
            local.stop_pids([managed.front_pid])
        if managed.failed is not None:
            return False
        control = service_dir(managed.service_id) / "front.json"
        backend = managed.instances.get(managed.serving) if managed.serving is not None else None
        managed.front_seq += 1
        self.write_control(managed, backend.port if backend and backend.healthy else None)
        with open(service_dir(managed.service_id) / "front.log", "ab") as out:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "deployments.servicehost.front",
                    "--listen",
                    f"{settings.SERVICE_BIND_ADDRESS}:{port}",
                    "--control",
                    str(control),
                ],
                cwd=str(settings.BASE_DIR),
                env=base_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + FRONT_START_S
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                break
            if port_listening(settings.SERVICE_BIND_ADDRESS, port):
                break
            time.sleep(0.02)
        if popen.poll() is not None:
            managed.front_pid = managed.front_popen = None
            error = (
                f"Port {port} is in use on the service host."
                if popen.returncode == 3
                else f"The service's front did not start (exit code {popen.returncode})."
            )
            log.warning("service %s: %s", managed.service_id, error)
            managed.failed = {"generation": generation, "error": error}
            return False
        managed.front_pid, managed.front_popen, managed.front_port = popen.pid, popen, port
        log.info("service %s: front on port %s (pid %s)", managed.service_id, port, popen.pid)
        self.save_record(managed)
        return True

    def write_control(self, managed: Managed, backend_port: int | None) -> None:
        control = service_dir(managed.service_id) / "front.json"
        backend = ["127.0.0.1", backend_port] if backend_port else None
        write_private(control, json.dumps({"backend": backend, "generation": managed.front_seq}))
        managed.front_backend = backend_port

    def switch(self, managed: Managed, instance: Instance) -> None:
        """Point the front at `instance` and wait for its acknowledgement."""
        managed.front_seq += 1
        self.write_control(managed, instance.port)
        ack = service_dir(managed.service_id) / "front.ack"
        if managed.front_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(managed.front_pid, signal.SIGHUP)
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while time.monotonic() < deadline:
            if read_json(ack).get("generation") == managed.front_seq:
                break
            time.sleep(0.01)
        else:
            log.warning("service %s: the front did not acknowledge the switch", managed.service_id)
        previous, managed.serving = managed.serving, instance.generation
        log.info(
            "service %s: serving generation %s on port %s",
            managed.service_id,
            instance.generation,
            instance.port,
        )
        self.save_record(managed)
        if previous is not None and previous != instance.generation:
            old = managed.instances.get(previous)
            if old is not None:
                self.begin_stop(managed, old)

    # --- Instances --------------------------------------------------------------------------

    def start_instance(self, managed: Managed, service: WebService, desired: dict) -> None:
        from deployments.services.images import image_local

        generation = int(desired["generation"])
        managed.pending_phase = "Starting the instance"
        image = Image.objects.filter(pk=desired.get("image_id")).first()
        if image is None:
            managed.failed = {"generation": generation, "error": "The image was deleted."}
            return
        try:
            prepared = image_local(image)
        except Exception as exc:
            managed.failed = {
                "generation": generation,
                "error": f"The image's environment is not usable: {exc}",
            }
            return
        port = local.free_port("127.0.0.1", avoid=local.ports_in_use())
        gen_dir = local.generation_dir(service.pk, generation)
        gen_dir.mkdir(parents=True, exist_ok=True)
        log_path = service_dir(service.pk) / LOG_NAME
        trim_log(log_path)
        cpu, memory = desired.get("cpu_cores"), desired.get("memory_gb")
        memory_bytes = int(float(memory) * 1024**3) if memory else None
        client = self.docker() if image.docker_image_id else None
        telemetry = local.telemetry_url(self.studio_url)
        with open(log_path, "ab") as out:
            out.write(
                f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting generation {generation} "
                f"(image {image.id_label}) ---\n".encode()
            )
            out.flush()
            instance = Instance(generation=generation, port=port)
            if client is not None:
                config = local.config_for(service, CONTAINER_MODEL_DIR, telemetry)
                write_private(gen_dir / "config.json", json.dumps(config))
                instance.container = self.run_container(
                    client, image, service, generation, port, cpu, memory_bytes
                )
            else:
                config = local.config_for(service, str(prepared.model_dir), telemetry)
                write_private(gen_dir / "config.json", json.dumps(config))
                self.run_process(instance, prepared, gen_dir, out, cpu, memory_bytes)
        managed.instances[generation] = instance
        managed.pending_phase = "Loading the model; waiting for /health"
        log.info(
            "service %s: generation %s starting on port %s (%s)",
            service.pk,
            generation,
            port,
            f"container {instance.container[:12]}" if instance.container else f"pid {instance.pid}",
        )
        self.save_record(managed)

    def run_process(
        self,
        instance: Instance,
        prepared: Any,
        gen_dir: Path,
        out: Any,
        cpu: float | None,
        memory_bytes: int | None,
    ) -> None:
        groups = limit_groups(cpu, memory_bytes)
        instance.cgroups = [str(Path(p).parent) for p in groups.procs_files]
        rlimits = []
        if memory_bytes and not groups.memory_limited:
            rlimits.append((resource.RLIMIT_AS, memory_bytes, memory_bytes))
        env = base_env()
        threads = str(max(1, int(cpu or 1)))
        env.update(
            PYTHONPATH=str(prepared.context_dir),
            PYTHONUNBUFFERED="1",
            OMP_NUM_THREADS=threads,
            OPENBLAS_NUM_THREADS=threads,
            MKL_NUM_THREADS=threads,
            MALLOC_ARENA_MAX="2",
        )
        argv = [
            str(prepared.python),
            "-m",
            "mlstudio_scoring",
            "--config",
            str(gen_dir / "config.json"),
            "--host",
            "127.0.0.1",
            "--port",
            str(instance.port),
        ]
        popen = subprocess.Popen(
            argv,
            cwd=str(prepared.context_dir),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=child_setup(groups.procs_files, rlimits),
        )
        instance.pid, instance.popen = popen.pid, popen

    def docker(self) -> Any | None:
        """A Docker client when an engine answers (asked again at most once a minute)."""
        if self._docker is None and time.monotonic() - self._docker_checked > 60:
            self._docker_checked = time.monotonic()
            from deployments.images import engine

            try:
                self._docker = engine.connect(getattr(settings, "DOCKER_ENABLED", "auto"), 60)
            except engine.EngineError as exc:
                log.warning("no Docker engine: %s", exc)
        return self._docker

    def run_container(
        self,
        client: Any,
        image: Image,
        service: WebService,
        generation: int,
        port: int,
        cpu: float | None,
        memory_bytes: int | None,
    ) -> str:
        options: dict[str, Any] = {}
        if cpu:
            options["nano_cpus"] = int(float(cpu) * 1e9)
        if memory_bytes:
            options["mem_limit"] = memory_bytes
        container = client.containers.run(
            image.docker_image_id or image.docker_tag,
            command=[
                *("python", "-m", "mlstudio_scoring"),
                *("--config", f"{CONTAINER_CONFIG_DIR}/config.json"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            detach=True,
            network_mode="host",
            name=f"mlstudio-svc-{service.pk}-g{generation}-{uuid.uuid4().hex[:6]}",
            labels={"mlstudio.service": str(service.pk), "mlstudio.generation": str(generation)},
            volumes={
                str(local.generation_dir(service.pk, generation)): {
                    "bind": CONTAINER_CONFIG_DIR,
                    "mode": "ro",
                }
            },
            **options,
        )
        return container.id

    def instance_alive(self, instance: Instance, marker: str) -> bool:
        if instance.container:
            client = self.docker()
            if client is None:
                return False
            try:
                container = client.containers.get(instance.container)
            except Exception:
                return False
            return container.status == "running"
        if instance.popen is not None:
            return instance.popen.poll() is None
        return instance.pid is not None and pid_matches(instance.pid, marker)

    def check_starting(self, managed: Managed, service: WebService, instance: Instance) -> None:
        if health(instance.port):
            instance.healthy = True
            instance.next_check = time.monotonic() + HEALTH_INTERVAL_S
            managed.pending_phase = "Switching traffic to the new instance"
            self.switch(managed, instance)
            managed.healthy_since = time.monotonic()
            managed.pending_phase = ""
            return
        if time.monotonic() - instance.started > STARTUP_TIMEOUT_S:
            log.warning("service %s: instance not healthy in time; stopping it", service.pk)
            managed.last_error = (
                f"The instance did not answer /health within {STARTUP_TIMEOUT_S:.0f} s."
            )
            self.kill(instance)

    def check_running(self, managed: Managed, instance: Instance) -> None:
        now = time.monotonic()
        if managed.healthy_since and now - managed.healthy_since > STABLE_S:
            managed.crashes = 0
        if now < instance.next_check:
            return
        instance.next_check = now + HEALTH_INTERVAL_S
        if health(instance.port):
            instance.failures = 0
            if managed.healthy_since is None:
                managed.healthy_since = now
            return
        instance.failures += 1
        if instance.failures >= HEALTH_FAILURES:
            log.warning("service %s: instance stopped answering /health", managed.service_id)
            managed.last_error = "The instance stopped answering /health."
            self.kill(instance)

    def instance_died(self, managed: Managed, service: WebService, instance: Instance) -> None:
        code = instance.popen.returncode if instance.popen is not None else None
        lines = local.tail(service_dir(service.pk) / LOG_NAME, 15).strip()
        if instance.container:
            lines = self.container_tail(instance.container) or lines
        reason = managed.last_error or (
            f"The instance exited (code {code})." if code is not None else "The instance exited."
        )
        managed.last_error = ""
        log.warning("service %s: generation %s: %s", service.pk, instance.generation, reason)
        self.cleanup(instance)
        managed.instances.pop(instance.generation, None)
        managed.healthy_since = None
        if managed.serving == instance.generation:
            managed.restarts += 1
            managed.crashes += 1
            if managed.crashes > MAX_CRASHES:
                managed.gave_up = True
                managed.failed = {
                    "generation": instance.generation,
                    "error": f"Restarted {MAX_CRASHES} times without recovering. {reason}"
                    + (f"\nLast log lines:\n{lines}" if lines else ""),
                }
                return
        else:
            count = managed.start_failures.get(instance.generation, 0) + 1
            managed.start_failures[instance.generation] = count
            if count >= MAX_START_FAILURES:
                managed.failed = {
                    "generation": instance.generation,
                    "error": f"The instance did not start. {reason}"
                    + (f"\nLast log lines:\n{lines}" if lines else ""),
                }
                return
        delays = RESTART_BACKOFF_S
        delay = delays[min(max(managed.crashes, count_of(managed, instance)) - 1, len(delays) - 1)]
        managed.next_start = time.monotonic() + delay
        managed.pending_phase = f"The instance exited; starting it again in {delay} s"

    def container_tail(self, container_id: str) -> str:
        client = self.docker()
        if client is None:
            return ""
        try:
            return client.containers.get(container_id).logs(tail=15).decode(errors="replace")
        except Exception:
            return ""

    def begin_stop(self, managed: Managed, instance: Instance) -> None:
        """Ask an instance to finish what it serves and exit (uvicorn does on SIGTERM)."""
        managed.instances.pop(instance.generation, None)
        if instance.stopping_since is None:
            instance.stopping_since = time.monotonic()
            if instance.container:
                client = self.docker()
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.containers.get(instance.container).stop(timeout=int(DRAIN_TIMEOUT_S))
            elif instance.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(instance.pid, signal.SIGTERM)
        if instance not in managed.draining:
            managed.draining.append(instance)

    def reap(self, managed: Managed) -> None:
        marker = str(service_dir(managed.service_id))
        for instance in list(managed.draining):
            if self.instance_alive(instance, marker):
                if time.monotonic() - (instance.stopping_since or 0) > DRAIN_TIMEOUT_S:
                    self.kill(instance)
                continue
            self.cleanup(instance)
            managed.draining.remove(instance)

    def kill(self, instance: Instance) -> None:
        if instance.container:
            client = self.docker()
            if client is not None:
                with contextlib.suppress(Exception):
                    client.containers.get(instance.container).kill()
        elif instance.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(instance.pid, signal.SIGKILL)
            if instance.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    instance.popen.wait(timeout=5)

    def cleanup(self, instance: Instance) -> None:
        if instance.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                instance.popen.wait(timeout=1)
        if instance.container:
            client = self.docker()
            if client is not None:
                with contextlib.suppress(Exception):
                    client.containers.get(instance.container).remove(force=True)
        for path in instance.cgroups:
            with contextlib.suppress(OSError):
                Path(path).rmdir()

    def stop_all(self, managed: Managed, keep_record: bool) -> None:
        marker = str(service_dir(managed.service_id))
        instances = [*managed.instances.values(), *managed.draining]
        pids = [i.pid for i in instances if i.pid and not i.container]
        if managed.front_pid is not None and pid_matches(managed.front_pid, marker):
            pids.append(managed.front_pid)
        local.stop_pids(pids)
        for popen in [managed.front_popen, *(i.popen for i in instances)]:
            if popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    popen.wait(timeout=1)
        for instance in instances:
            self.cleanup(instance)
        managed.instances.clear()
        managed.draining.clear()
        managed.front_pid = managed.front_popen = None
        if not keep_record and service_dir(managed.service_id).is_dir():
            write_private(service_dir(managed.service_id) / PROCESSES_NAME, "{}")

    # --- Records ----------------------------------------------------------------------------

    def save_record(self, managed: Managed) -> None:
        folder = service_dir(managed.service_id)
        if not folder.is_dir():
            return
        instances = [*managed.instances.values(), *managed.draining]
        record = {
            "front": {
                "pid": managed.front_pid,
                "port": managed.front_port,
                "seq": managed.front_seq,
                "backend": managed.front_backend,
            }
            if managed.front_pid
            else None,
            "instances": {f"{i.generation}-{i.port}": i.record() for i in instances},
            "serving": managed.serving,
        }
        text = json.dumps(record, sort_keys=True)
        path = folder / PROCESSES_NAME
        with contextlib.suppress(OSError):
            if path.read_text() == text:
                return
        write_private(path, text)

    def report(self, managed: Managed, service: WebService, generation: int) -> None:
        serving = managed.instances.get(managed.serving) if managed.serving is not None else None
        host = {
            "serving": managed.serving if serving is not None else None,
            "healthy": bool(serving and serving.healthy and serving.failures == 0),
            "pid": serving.pid if serving else None,
            "port": serving.port if serving else None,
            "container": serving.container if serving else None,
            "front_pid": managed.front_pid,
            "restarts": managed.restarts,
            "failed": managed.failed,
            "gave_up": managed.gave_up,
            "pending": {"generation": generation, "phase": managed.pending_phase}
            if managed.serving != generation
            else None,
            "hostname": socket.gethostname(),
        }
        if host != managed.reported:
            local.update_runtime_state(service.pk, "host", host)
            managed.reported = host
        # Outside a deployment (its job owns the state meanwhile), the state follows.
        if service.state in (WebService.State.TRANSITIONING, WebService.State.DELETING):
            return
        if managed.serving != generation:
            return
        if host["healthy"]:
            state = WebService.State.HEALTHY
        elif managed.gave_up:
            state = WebService.State.FAILED
        else:
            state = WebService.State.UNHEALTHY
        if state != service.state:
            WebService.objects.filter(pk=service.pk).exclude(
                state__in=(WebService.State.TRANSITIONING, WebService.State.DELETING)
            ).update(state=state)


# --- Helpers --------------------------------------------------------------------------------


def count_of(managed: Managed, instance: Instance) -> int:
    return managed.start_failures.get(instance.generation, 0)


def base_env() -> dict[str, str]:
    """What a front or an instance gets of the host's environment: nothing secret."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
    return {k: os.environ[k] for k in keep if k in os.environ}


def port_listening(address: str, port: int) -> bool:
    if address in ("0.0.0.0", "", "::"):  # noqa: S104 - listening everywhere: ask loopback
        address = "127.0.0.1"
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((address, port)) == 0


def health(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HEALTH_TIMEOUT_S)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def trim_log(path: Path) -> None:
    """Keep an instance log under LOG_MAX_BYTES: past it, only its newest half stays."""
    try:
        size = path.stat().st_size
    except OSError:
        return
    if size <= LOG_MAX_BYTES:
        return
    with path.open("r+b") as f:
        f.seek(size - LOG_MAX_BYTES // 2)
        keep = f.read()
        f.seek(0)
        f.truncate()
        f.write(b"[... older lines removed ...]\n" + keep)


def cpu_group_dir() -> Path | None:
    """The host's own cgroup directory of the v1 `cpu` controller, when mounted."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        own = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    mount = None
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, post_fields = pre.split(), post.split()
        cgroup = len(fields) >= 5 and len(post_fields) >= 3 and post_fields[0] == "cgroup"
        if cgroup and "cpu" in post_fields[2].split(","):
            mount = (Path(fields[4]), fields[3])
            break
    if mount is None:
        return None
    for line in own.splitlines():
        _, names, path = line.split(":", 2)
        if "cpu" in names.split(","):
            rel = os.path.relpath(path, mount[1]) if path.startswith(mount[1]) else "."
            return (mount[0] / rel).resolve()
    return None


@dataclass
class Groups:
    procs_files: list[str]
    memory_limited: bool


def limit_groups(cpu: float | None, memory_bytes: int | None) -> Groups:
    """cgroups (v1) for an instance's limits where this host may write them: memory (the
    runner's JobCgroup, nested under the host's own group) and a CPU quota."""
    files: list[str] = []
    memory_limited = False
    if memory_bytes:
        base = {k: v for k, v in own_cgroup_dirs().items() if k == "memory"}
        with contextlib.suppress(OSError):
            group = JobCgroup.create(
                parent_name="mlstudio-services", memory_bytes=memory_bytes, base_dirs=base
            )
            files += group.procs_files
            memory_limited = group.memory_limited
    if cpu:
        base = cpu_group_dir()
        if base is not None:
            path = base / "mlstudio-services" / f"svc-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                path.mkdir(parents=True)
                period = 100_000
                (path / "cpu.cfs_period_us").write_text(str(period))
                (path / "cpu.cfs_quota_us").write_text(str(max(1000, int(float(cpu) * period))))
                files.append(str(path / "cgroup.procs"))
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
    return Groups(files, memory_limited)


def child_setup(procs_files: list[str], rlimits: list[tuple[int, int, int]]) -> Any:
    """The pre-exec hook: join the instance's cgroups, set its rlimits (os/resource only)."""

    def setup() -> None:
        for procs in procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        for which, soft, hard in rlimits:
            resource.setrlimit(which, (soft, hard))

    return setup
