"""A Docker engine, when one is reachable: find it, make the wheelhouse, build, push, remove.

The engine is found the way the `docker` command finds it: `DOCKER_HOST`, else the local
socket. `DOCKER_ENABLED` (a setting) says `auto` (use one when it answers), `0` (never)
or `1` (an engine is required: its absence fails the build).

Builds are offline: the wheelhouse is made on the host from the configured package index
(pip's own configuration and cache), and the Dockerfile installs with `--no-index`, so a
build needs neither a registry nor an index; the base image is local
(scripts/build_base_image.sh). Build containers use the host's network: an engine started
with `--bridge=none` has no other, and the build reaches nothing anyway.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

LogFn = Callable[[str], None]
PING_TIMEOUT = 3
BUILD_TIMEOUT = 1800
WHEELHOUSE_MARKER = ".complete"


class EngineError(Exception):
    """The engine refused or failed a build, a push or a removal."""


def _socket_present() -> bool:
    return Path("/var/run/docker.sock").exists()


def connect(mode: str = "auto", timeout: int = BUILD_TIMEOUT) -> Any | None:
    """A `docker.DockerClient` that answered a ping, or None (mode "0", or "auto" with no
    engine). Mode "1" with no engine raises EngineError."""
    mode = str(mode).strip().lower()
    if mode in ("0", "false", "no", "off"):
        return None
    required = mode in ("1", "true", "yes", "on")
    if not os.environ.get("DOCKER_HOST") and not _socket_present():
        if required:
            raise EngineError("DOCKER_ENABLED=1 but no Docker engine: no DOCKER_HOST, no socket.")
        return None
    import docker

    try:
        client = docker.from_env(timeout=PING_TIMEOUT)
        client.ping()
    except Exception as exc:
        if required:
            raise EngineError(
                f"DOCKER_ENABLED=1 but the Docker engine does not answer: {exc}"
            ) from None
        return None
    client.api.timeout = timeout
    return client


def where(client: Any) -> str:
    """The engine, in words for a build log (no secrets: a URL without credentials)."""
    url = getattr(client.api, "base_url", "") or ""
    return "the local socket" if "docker.sock" in url or url.startswith("http+docker") else url


def wheelhouse(requirements: list[str], dest: Path, cache_root: Path, log: LogFn) -> Path:
    """A folder of wheels for `requirements`, for this machine's Python (the base image's
    minor version and platform), made with pip from the configured index once per set of
    requirements and kept under `cache_root`; `dest` gets a copy (hard links where it can).
    """
    key = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:32]
    cached = cache_root / "wheelhouses" / key
    if not (cached / WHEELHOUSE_MARKER).exists():
        tmp = cache_root / "wheelhouses" / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        reqs = tmp / "requirements.txt"
        reqs.write_text("".join(f"{r}\n" for r in requirements))
        argv = [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
            "--only-binary=:all:", "--dest", str(tmp), "-r", str(reqs),
        ]  # fmt: skip
        env = dict(os.environ, PIP_CACHE_DIR=str(cache_root / "pip-cache"))
        log(f"Making the wheelhouse ({len(requirements)} requirements, once)")
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() and not line.startswith("  "):
                log(line.rstrip())
        if proc.wait() != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise EngineError("pip could not download the wheels (see the build log).")
        reqs.unlink()
        (tmp / WHEELHOUSE_MARKER).write_text("")
        try:
            tmp.rename(cached)
        except OSError:  # another build made it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        log("Wheelhouse: cached")
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in cached.glob("*.whl"):
        target = dest / wheel.name
        try:
            os.link(wheel, target)
        except OSError:
            shutil.copy2(wheel, target)
    return dest


def build(client: Any, context: Path, tag: str, log: LogFn) -> str:
    """Build `context` as `tag` (classic builder, host network, no pulls); the image id.
    Every line of the engine's output goes to `log`."""
    image_id = ""
    for chunk in client.api.build(
        path=str(context),
        tag=tag,
        rm=True,
        forcerm=True,
        pull=False,
        network_mode="host",
        decode=True,
    ):
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            log(str(detail).rstrip())
            raise EngineError(f"docker build failed: {str(detail).strip()[:500]}")
        text = chunk.get("stream") or chunk.get("status")
        if text:
            for line in str(text).splitlines():
                if line.strip():
                    log(line.rstrip())
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
    if not image_id:
        image_id = client.images.get(tag).id
    return image_id


def push(client: Any, local_tag: str, registry: str, log: LogFn) -> str:
    """Tag the image for `registry` (host[:port][/namespace]) and push it; its reference."""
    repository, _, version = local_tag.rpartition(":")
    remote_repo = f"{registry.rstrip('/')}/{repository}"
    client.api.tag(local_tag, remote_repo, version)
    for chunk in client.api.push(remote_repo, tag=version, stream=True, decode=True):
        if "error" in chunk:
            raise EngineError(f"docker push failed: {str(chunk['error'])[:500]}")
        status = chunk.get("status")
        if status and "progress" not in chunk:
            log(f"{chunk.get('id', '')} {status}".strip())
    return f"{remote_repo}:{version}"


def remove(client: Any, tags: list[str]) -> None:
    """Remove images by tag; ones already gone are fine."""
    import docker

    for tag in tags:
        try:
            client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise EngineError(f"docker could not remove {tag}: {exc.explanation or exc}") from exc
