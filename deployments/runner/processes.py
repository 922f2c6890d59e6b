"""A job's processes: how its first process is set up before exec, and how every process
of the job is found and killed.

Decisions:

- The pre-exec hook (run in the child between fork and exec) joins the job's cgroups,
  sets rlimits, drops to the job's uid and asks for SIGKILL when the worker thread that
  started it dies (PR_SET_PDEATHSIG, set after setuid, which clears it). It calls only
  os, resource and a libc `prctl` prepared beforehand: nothing that imports or locks.
- "Every process of the job" is the union of its cgroups' members (exact, whatever
  sessions or groups they moved to), the members of its process group and session, and
  the descendants of its first process. Once the first process is reaped its pid may be
  reused, so from then on a process with that pid is not taken for the job's, and its
  descendants are no longer walked (group and session ids stay reserved while a member
  lives, so those still find stragglers).
- Killing (cancel, timeout): SIGTERM, then SIGKILL after a grace period to whatever is
  left. Under bubblewrap its monitor (the first process) is spared SIGTERM: it would die
  at once and take the pid namespace with it, leaving the script no grace.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from signal import SIGKILL, SIGTERM

from .cgroups import JobCgroup

__all__ = ["JobProcesses", "child_setup", "uid_process_count"]

_PR_SET_PDEATHSIG = 1


def child_setup(
    procs_files: list[str],
    rlimits: list[tuple[int, int, int]],
    ids: tuple[int, int] | None,
    prctl: Callable[..., int],
) -> Callable[[], None]:
    """The pre-exec hook: join cgroups, set limits, drop to the job's uid, die with us."""

    def setup() -> None:
        for procs in procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        for which, soft, hard in rlimits:
            resource.setrlimit(which, (soft, hard))
        if ids is not None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
        prctl(_PR_SET_PDEATHSIG, int(SIGKILL), 0, 0, 0)

    return setup


def _process_table() -> list[tuple[int, int, int, int]]:
    """(pid, ppid, pgid, sid) of every process we can see."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        with contextlib.suppress(IndexError, ValueError):
            found.append((int(entry.name), int(fields[1]), int(fields[2]), int(fields[3])))
    return found


def uid_process_count(uid: int) -> int:
    """How many processes `uid` runs now (RLIMIT_NPROC counts them all)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    count += 1
    return count


@dataclass
class JobProcesses:
    proc: subprocess.Popen
    cgroup: JobCgroup
    sandboxed: bool

    def pids(self) -> set[int]:
        """Every live process of the job we can find (see the module docstring)."""
        leader = self.proc.pid
        reaped = self.proc.returncode is not None
        pids = set(self.cgroup.pids())
        children: dict[int, list[int]] = {}
        for pid, ppid, pgid, sid in _process_table():
            children.setdefault(ppid, []).append(pid)
            if leader in (pgid, sid) and pid != leader:
                pids.add(pid)
        if not reaped:
            pids.add(leader)
            stack, seen = [leader], {leader}
            while stack:
                for child in children.get(stack.pop(), []):
                    if child not in seen:
                        seen.add(child)
                        pids.add(child)
                        stack.append(child)
        return pids

    def signal_all(self, sig: int, *, spare_leader: bool = False) -> None:
        for pid in self.pids():
            if spare_leader and pid == self.proc.pid:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def terminate(self, grace: float) -> None:
        """SIGTERM to the job, SIGKILL to what is left after `grace` seconds."""
        self.signal_all(SIGTERM, spare_leader=self.sandboxed)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and not self.pids():
                return
            time.sleep(0.05)
        self.signal_all(SIGKILL)
