"""Per-job cgroups (v1): a memory limit with OOM detection, a process count limit, and a
list of every process of the job, whatever sessions or groups they moved to.

Decisions:

- **Nested under the worker's own cgroup** in each hierarchy
  (`<mount>/<own path>/mlstudio-runner/job-<worker pid>-<id>`), so the worker's own limits
  still bound its jobs and nothing is created outside the worker's place.
- **Used only when writable** (the worker is root, or the dir was delegated); otherwise
  `JobCgroup.create` returns a group with no controllers and the sandbox falls back to
  rlimits. cgroup v2 is not driven here (this code was tested on v1 only); on a v2-only
  host the fallback applies.
- The job's first process joins by writing `0` to each `cgroup.procs` before it execs
  (from the sandbox's pre-exec hook), so every descendant is born inside.
- `memory.memsw.limit_in_bytes` is set equal to the memory limit when the kernel has
  swap accounting, so a job cannot trade RAM for swap. An OOM kill is read from
  `memory.oom_control`'s `oom_kill` counter (or `under_oom`/`failcnt` on older kernels).
- Removal kills whatever is left, then `rmdir`s (retrying while the kernel reaps). Groups
  a dead worker left behind are removed when the next job of that parent starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["JobCgroup", "own_cgroup_dirs"]

CONTROLLERS = ("memory", "pids")


def own_cgroup_dirs() -> dict[str, Path]:
    """The worker's own cgroup directory for each mounted v1 controller we use."""
    mounts: dict[str, tuple[Path, str]] = {}  # controller -> (mount point, mount root)
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        own = Path("/proc/self/cgroup").read_text()
    except OSError:
        return {}
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, post_fields = pre.split(), post.split()
        if len(fields) < 5 or len(post_fields) < 3 or post_fields[0] != "cgroup":
            continue
        options = post_fields[2].split(",")
        for name in CONTROLLERS:
            if name in options:
                mounts.setdefault(name, (Path(fields[4]), fields[3]))
    dirs: dict[str, Path] = {}
    for line in own.splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(","):
            if name in mounts:
                mount, root = mounts[name]
                rel = os.path.relpath(path, root) if path.startswith(root) else "."
                dirs[name] = (mount / rel).resolve()
    return dirs


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class JobCgroup:
    """One job's cgroups; `dirs` maps a controller to its directory (empty: none usable)."""

    dirs: dict[str, Path] = field(default_factory=dict)
    memory_limited: bool = False
    pids_limited: bool = False

    @classmethod
    def create(
        cls,
        *,
        parent_name: str = "mlstudio-runner",
        memory_bytes: int | None = None,
        max_processes: int | None = None,
        base_dirs: dict[str, Path] | None = None,
    ) -> JobCgroup:
        group = cls()
        name = f"job-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        for controller, base in (own_cgroup_dirs() if base_dirs is None else base_dirs).items():
            parent = base / parent_name
            try:
                parent.mkdir(exist_ok=True)
                _remove_stale(parent)
                path = parent / name
                path.mkdir()
            except OSError:
                continue  # not writable here: this controller is not ours to use
            group.dirs[controller] = path
        try:
            if memory_bytes is not None and "memory" in group.dirs:
                mem = group.dirs["memory"]
                _write(mem / "memory.limit_in_bytes", str(memory_bytes))
                if (mem / "memory.memsw.limit_in_bytes").exists():
                    with contextlib.suppress(OSError):  # swap accounting may be off
                        _write(mem / "memory.memsw.limit_in_bytes", str(memory_bytes))
                group.memory_limited = True
            if max_processes is not None and "pids" in group.dirs:
                _write(group.dirs["pids"] / "pids.max", str(max_processes))
                group.pids_limited = True
        except OSError:
            group.remove()
            raise
        return group

    @property
    def procs_files(self) -> list[str]:
        """The files the job's first process writes `0` into to join, before exec."""
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs.values():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        return found

    def oom_kills(self) -> int:
        mem = self.dirs.get("memory")
        if mem is None:
            return 0
        try:
            stats = dict(
                line.split() for line in (mem / "memory.oom_control").read_text().splitlines()
            )
        except (OSError, ValueError):
            return 0
        if "oom_kill" in stats:
            return int(stats["oom_kill"])
        # Older kernels: no counter; a job that hit its limit and died was the OOM's.
        with contextlib.suppress(OSError, ValueError):
            if int((mem / "memory.failcnt").read_text()) > 0:
                return 1
        return int(stats.get("under_oom", 0))

    def peak_memory(self) -> int | None:
        mem = self.dirs.get("memory")
        if mem is None:
            return None
        try:
            return int((mem / "memory.max_usage_in_bytes").read_text())
        except (OSError, ValueError):
            return None

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for path in list(self.dirs.values()):
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break  # left for the next job's stale sweep
                    self.kill_all()
                    time.sleep(0.05)
        self.dirs.clear()


def _remove_stale(parent: Path) -> None:
    """Remove job groups whose worker process is gone (rmdir fails on a busy one)."""
    for child in parent.glob("job-*"):
        try:
            worker_pid = int(child.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if worker_pid != os.getpid() and not _pid_alive(worker_pid):
            with contextlib.suppress(OSError):
                child.rmdir()
