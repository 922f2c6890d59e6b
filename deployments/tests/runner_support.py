"""Shared pieces of the runner's tests: where things live, a jobs root the sandbox's uid can
reach, running a script and collecting its output with arrival times."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import require
from deployments.runner.cgroups import own_cgroup_dirs
from deployments.runner.sandbox import Limits, RunResult, Sandbox, find_bwrap, job_env


def _env_cache_root() -> Path:
    """Environments built by the tests survive between runs (the uv cache above all), so
    only the first run on a machine downloads anything. They live outside the checkout,
    which may sit below a folder the sandbox's uid cannot search (a `mktemp -d` clone is
    mode 700); a worker's env root is searchable the same way (0711)."""
    root = Path(tempfile.gettempdir()) / f"mlstudio-test-envs-{os.getuid()}"
    root.mkdir(mode=0o711, exist_ok=True)
    if root.is_symlink() or root.stat().st_uid != os.getuid():
        raise RuntimeError(f"{root} belongs to someone else; remove it")
    root.chmod(0o711)
    return root


ENV_CACHE_ROOT = _env_cache_root()
SYSTEM_PYTHON = "/usr/bin/python3"


def require_bwrap() -> str:
    path = find_bwrap()
    require(path is not None, "bubblewrap is not installed (make system-deps)")
    assert path is not None
    require(Sandbox().sandbox_status()[0], "bubblewrap does not work on this machine")
    return path


def require_system_python() -> None:
    require(Path(SYSTEM_PYTHON).exists(), f"{SYSTEM_PYTHON} is not installed")


def cgroup_controllers_writable() -> set[str]:
    usable = set()
    for name, base in own_cgroup_dirs().items():
        if os.access(base, os.W_OK):
            usable.add(name)
    return usable


@pytest.fixture
def jobs_root() -> Iterator[Path]:
    """A jobs root like the worker's: searchable but not listable by the sandbox's uid."""
    root = Path(tempfile.mkdtemp(prefix="runner-jobs-", dir="/tmp"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workdir(jobs_root: Path) -> Path:
    path = jobs_root / "job-a"
    path.mkdir()
    return path


@dataclass
class Captured:
    """A run's output, each line with the time it arrived (monotonic)."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, text: str) -> None:
        with self.lock:
            self.lines.append((time.monotonic(), text))

    @property
    def text(self) -> str:
        return "".join(t for _, t in self.lines)

    def wait_for(self, needle: str, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text:
                return time.monotonic()
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} never came; output so far:\n{self.text}")


def run_script(
    sandbox: Sandbox,
    workdir: Path,
    code: str,
    *,
    limits: Limits | None = None,
    args: tuple[str, ...] = (),
    python: str = SYSTEM_PYTHON,
    env_extra: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
    ro_paths: tuple[Path, ...] = (),
    out: Captured | None = None,
) -> tuple[RunResult, Captured]:
    """Write `code` to workdir/script.py and run it in the sandbox."""
    (workdir / "script.py").write_text(textwrap.dedent(code))
    out = out if out is not None else Captured()
    result = sandbox.run(
        [python, "script.py", *args],
        workdir=workdir,
        env=job_env(workdir=workdir, extra=env_extra),
        limits=limits or Limits(wall_seconds=60),
        on_output=out,
        cancel=cancel,
        ro_paths=ro_paths,
    )
    return result, out


def processes_with(token: str) -> list[int]:
    """Live processes whose command line holds `token` (zombies have none)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in cmdline:
                found.append(int(entry.name))
    return found
