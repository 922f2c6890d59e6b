"""Run a user's script sandboxed, with limits, its output streamed, cancelable.

`Sandbox` holds the worker's fixed choices (what to hide, which uid, bubblewrap or not);
`Sandbox.run(argv, workdir=..., env=..., limits=..., on_output=..., cancel=...)` runs one
job and returns a `RunResult`. Decisions (the filesystem layout is in `bwrap`, finding
and killing processes in `processes`, cgroups in `cgroups`, output in `streaming`):

- **Environment.** The script gets exactly `env`, nothing of the worker's (`job_env()`
  builds the recommended one from scratch: PATH with the venv first, HOME = the work
  dir, `PYTHONUNBUFFERED=1` so output streams as it is printed). Without bubblewrap,
  TMPDIR defaults to `<workdir>/.tmp` so temp files stay the job's.
- **Unprivileged uid.** A root worker runs the job as 65534:65534 (nobody/nogroup), no
  supplementary groups: the work dir is chowned to it (links not followed), and the uid
  is dropped *before* bubblewrap starts, so bubblewrap runs unprivileged in a user
  namespace mapping 65534 to 65534. (Run as root with `--unshare-user`, the sandbox's uid
  would map to host root, which owns most files: owner permission bits would then let it
  read root-only files.) Consequence: the work dir and read-only paths must be reachable
  (`o+x` on every ancestor) by that uid; `run` checks and says which directory is not.
  A non-root worker runs jobs as itself (`run_as=None`).
- **Bubblewrap** when found and working (probed once, `sandbox_status()`); see `bwrap`
  for the namespaces and the allow-listed, masked filesystem.
- **Without bubblewrap** the same env, uid, limits and killing apply and the result says
  `sandboxed=False` (with the reason in `notes`); the filesystem is then only protected
  by permissions. `require_sandbox=True` makes that an error instead.
- **Limits.** Memory: a per-job cgroup v1 memory group when writable (OOM kills are
  detected and reported, peak usage measured), else RLIMIT_AS (then a script sees
  MemoryError rather than being killed; `enforcement["memory"]` says which). Processes:
  the cgroup pids controller when available, else RLIMIT_NPROC on the job's uid (counted
  per uid across the host, so it is set to what that uid already runs plus the limit;
  the kernel ignores it for root). CPU seconds: RLIMIT_CPU per process (SIGXCPU, then
  SIGKILL 5 s later). File size: RLIMIT_FSIZE per file (Python ignores SIGXFSZ, so the
  write fails with EFBIG). Cores: RLIMIT_CORE 0. Wall clock: the job is killed. Under
  bubblewrap, its two processes are added to `max_processes`.
- **Ending.** Cancel (`cancel` event) and the wall clock send SIGTERM to every process of
  the job and SIGKILL after `kill_grace_seconds`. When the script's main process exits,
  anything it left running is killed. Under bubblewrap the pid namespace ends with it
  too. Without bubblewrap, a process that called setsid() and was reparented is found
  only through the job's cgroups; with no cgroup either it may survive.
- **Exit status.** Under bubblewrap a death by signal N surfaces as exit code 128+N, as
  in a shell; it is reported as `signal=N`, `exit_code=None`.
- **Output.** stdout and stderr are one pipe (the order the script wrote them in), read
  by a thread and handed to `on_output` line by line (see `streaming`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from signal import SIGKILL, SIGXCPU, SIGXFSZ, Signals
from types import MappingProxyType

from .bwrap import (
    BWRAP_PROCESSES,
    NOBODY,
    SYSTEM_PATHS,
    SYSTEM_SEARCH_PATH,
    bwrap_args,
    check_reachable,
    find_bwrap,
    interpreter_prefix,
    is_within,
    probe_args,
)
from .cgroups import JobCgroup
from .errors import SandboxError
from .processes import JobProcesses, child_setup, uid_process_count
from .streaming import OutputPump

__all__ = [
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxError",
    "find_bwrap",
    "job_env",
]

AUTO = "auto"
CPU_HARD_GRACE = 5


@dataclass(frozen=True)
class Limits:
    """None means no limit of that kind."""

    wall_seconds: float | None = None
    cpu_seconds: int | None = None
    memory_bytes: int | None = None
    max_processes: int | None = None
    max_file_bytes: int | None = None

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if value is not None and not value > 0:
                raise ValueError(f"limit {name} must be positive (or None for no limit)")


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None  # None when the script died of a signal
    signal: int | None
    timed_out: bool
    canceled: bool
    oom_killed: bool
    sandboxed: bool
    seconds: float
    peak_memory_bytes: int | None = None
    enforcement: Mapping[str, str] = field(default_factory=dict)  # limit -> how
    notes: tuple[str, ...] = ()  # for the run page: why not sandboxed, what was not kept

    @property
    def ok(self) -> bool:
        """The script exited 0 by itself (a child of it may still have been OOM-killed)."""
        return self.exit_code == 0 and not (self.timed_out or self.canceled)

    def describe(self) -> str:
        """One line for the run page."""
        if self.canceled:
            return "canceled"
        if self.timed_out:
            return f"stopped: wall-clock limit reached after {self.seconds:.0f} s"
        if self.oom_killed and self.exit_code != 0:
            return "killed: out of memory (memory limit reached)"
        if self.signal == SIGXCPU:
            return "killed: CPU time limit reached"
        if self.signal == SIGXFSZ:
            return "killed: file size limit reached"
        if self.signal is not None:
            with contextlib.suppress(ValueError):
                return f"killed by signal {Signals(self.signal).name}"
            return f"killed by signal {self.signal}"
        if self.exit_code == 0:
            return "completed" + (" (a process was killed for memory)" if self.oom_killed else "")
        return f"failed: exit code {self.exit_code}"


def job_env(
    *, workdir: Path, venv: Path | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The recommended environment of a job, from scratch: nothing of the worker's.

    `extra` is the job's own (the spec's variables, MLFLOW_TRACKING_URI, its token...).
    """
    path = SYSTEM_SEARCH_PATH if venv is None else f"{venv}/bin:{SYSTEM_SEARCH_PATH}"
    env = {
        "PATH": path,
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",  # lines reach the studio as they are printed
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
    }
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
    env.update(extra or {})
    return env


def _hand_over(workdir: Path, uid: int, gid: int) -> None:
    """Give the work dir to the job's uid (never following a link out of it)."""
    os.chown(workdir, uid, gid, follow_symlinks=False)
    os.chmod(workdir, 0o700)
    for dirpath, dirnames, filenames in os.walk(workdir):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


class Sandbox:
    """The worker's sandbox settings; `run()` runs one job with them (thread-safe)."""

    def __init__(
        self,
        *,
        hidden_paths: Sequence[Path | str] = (),
        bwrap_path: str | None = AUTO,
        run_as: tuple[int, int] | str | None = AUTO,
        use_cgroups: bool = True,
        cgroup_parent: str = "mlstudio-runner",
        require_sandbox: bool = False,
        system_paths: Sequence[str] = SYSTEM_PATHS,
        kill_grace_seconds: float = 5.0,
    ):
        self.hidden_paths = tuple(Path(os.path.realpath(p)) for p in hidden_paths)
        self.bwrap_path = find_bwrap() if bwrap_path == AUTO else bwrap_path
        if run_as == AUTO:
            run_as = (NOBODY, NOBODY) if os.geteuid() == 0 else None
        assert run_as is None or isinstance(run_as, tuple)
        self.run_as = run_as
        self.use_cgroups = use_cgroups
        self.cgroup_parent = cgroup_parent
        self.require_sandbox = require_sandbox
        self.system_paths = tuple(system_paths)
        self.kill_grace_seconds = kill_grace_seconds
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl
        self._probe: tuple[bool, str] | None = None
        self._probe_lock = threading.Lock()

    # --- capabilities ---------------------------------------------------------------

    @property
    def ids(self) -> tuple[int, int]:
        return self.run_as or (os.getuid(), os.getgid())

    def _drop(self) -> tuple[int, int] | None:
        """The ids to switch to in the child, or None to stay the worker's."""
        if self.run_as is None or self.run_as == (os.getuid(), os.getgid()):
            return None
        if os.geteuid() != 0:
            raise SandboxError(f"running jobs as uid {self.run_as[0]} needs a root worker")
        return self.run_as

    def sandbox_status(self) -> tuple[bool, str]:
        """(True, "") when jobs run under bubblewrap, else (False, why). Probed once."""
        with self._probe_lock:
            if self._probe is None:
                self._probe = self._probe_bwrap()
            return self._probe

    def _probe_bwrap(self) -> tuple[bool, str]:
        if not self.bwrap_path:
            return False, "bubblewrap (bwrap) is not installed: the job ran without a sandbox"
        setup = child_setup([], [], self._drop(), self._prctl)
        try:
            done = subprocess.run(
                probe_args(self.bwrap_path, self.system_paths),
                capture_output=True,
                text=True,
                timeout=30,
                preexec_fn=setup,
                env={},
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return False, f"bubblewrap failed to start ({exc}): the job ran without a sandbox"
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip()[-300:]
            return False, f"bubblewrap does not work here ({why}): the job ran without a sandbox"
        return True, ""

    # --- limits ---------------------------------------------------------------------

    def _rlimits(
        self, limits: Limits, cgroup: JobCgroup, overhead: int, enforcement: dict[str, str]
    ) -> list[tuple[int, int, int]]:
        rl: list[tuple[int, int, int]] = [(resource.RLIMIT_CORE, 0, 0)]
        if limits.cpu_seconds is not None:
            cpu = max(1, int(limits.cpu_seconds))
            rl.append((resource.RLIMIT_CPU, cpu, cpu + CPU_HARD_GRACE))
            enforcement["cpu"] = "rlimit (per process)"
        if limits.max_file_bytes is not None:
            rl.append((resource.RLIMIT_FSIZE, limits.max_file_bytes, limits.max_file_bytes))
            enforcement["file_size"] = "rlimit (per file)"
        if limits.memory_bytes is not None:
            if cgroup.memory_limited:
                enforcement["memory"] = "cgroup"
            else:
                rl.append((resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes))
                enforcement["memory"] = "rlimit (address space)"
        if limits.max_processes is not None:
            uid = self.ids[0]
            if cgroup.pids_limited:
                enforcement["processes"] = "cgroup"
            elif uid == 0:
                enforcement["processes"] = "not enforced (root ignores RLIMIT_NPROC)"
            else:
                n = uid_process_count(uid) + limits.max_processes + overhead
                rl.append((resource.RLIMIT_NPROC, n, n))
                enforcement["processes"] = "rlimit (per uid)"
        if limits.wall_seconds is not None:
            enforcement["wall"] = "killed at the limit"
        return rl

    # --- run ------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str | os.PathLike],
        *,
        workdir: Path,
        env: Mapping[str, str],
        limits: Limits | None = None,
        on_output: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        ro_paths: Sequence[Path | str] = (),
    ) -> RunResult:
        """Run `argv` in `workdir` and wait for it. `on_output` is called from a reader
        thread with each line; setting `cancel` stops the job. Raises SandboxError only
        when the job cannot be started as asked."""
        limits = limits or Limits()
        argv = [os.fspath(a) for a in argv]
        if not argv:
            raise ValueError("argv is empty")
        workdir = Path(os.path.realpath(workdir))
        if not workdir.is_dir():
            raise SandboxError(f"work dir {workdir} is not a directory")
        env = {str(k): str(v) for k, v in env.items()}
        sandboxed, why = self.sandbox_status()
        if not sandboxed and self.require_sandbox:
            raise SandboxError(why)
        notes = [] if sandboxed else [why]
        drop = self._drop()
        ro = self._ro_paths(ro_paths)
        if drop is not None:
            _hand_over(workdir, *drop)
            if sandboxed:
                for path in [workdir, *ro]:
                    check_reachable(path, *drop)
        if not sandboxed and "TMPDIR" not in env:
            tmp = workdir / ".tmp"
            tmp.mkdir(mode=0o700, exist_ok=True)
            if drop is not None:
                os.chown(tmp, *drop, follow_symlinks=False)
            env["TMPDIR"] = str(tmp)
        cgroup = self._cgroup(limits, sandboxed)
        try:
            return self._run(
                argv, workdir, env, limits, on_output, cancel, ro, cgroup, sandboxed, notes
            )
        finally:
            cgroup.remove()

    def _cgroup(self, limits: Limits, sandboxed: bool) -> JobCgroup:
        if not self.use_cgroups:
            return JobCgroup()
        processes = limits.max_processes
        if processes is not None and sandboxed:
            processes += BWRAP_PROCESSES
        try:
            return JobCgroup.create(
                parent_name=self.cgroup_parent,
                memory_bytes=limits.memory_bytes,
                max_processes=processes,
            )
        except OSError as exc:
            raise SandboxError(f"cannot set the job's cgroup limits: {exc}") from exc

    def _ro_paths(self, ro_paths: Sequence[Path | str]) -> list[Path]:
        ro: list[Path] = []
        for raw in ro_paths:
            path = Path(os.path.realpath(raw))
            if not path.exists():
                raise SandboxError(f"read-only path {raw} does not exist")
            ro.append(path)
            prefix = interpreter_prefix(path)
            system = [Path(os.path.realpath(p)) for p in self.system_paths]
            if prefix and not any(is_within(prefix, s) for s in system) and prefix not in ro:
                ro.append(prefix)
        return ro

    def _run(
        self,
        argv: list[str],
        workdir: Path,
        env: dict[str, str],
        limits: Limits,
        on_output: Callable[[str], None] | None,
        cancel: threading.Event | None,
        ro: list[Path],
        cgroup: JobCgroup,
        sandboxed: bool,
        notes: list[str],
    ) -> RunResult:
        enforcement: dict[str, str] = {}
        overhead = BWRAP_PROCESSES if sandboxed else 0
        rlimits = self._rlimits(limits, cgroup, overhead, enforcement)
        cmd = argv
        if sandboxed:
            assert self.bwrap_path is not None
            prefix = bwrap_args(
                self.bwrap_path,
                workdir=workdir,
                ro_paths=ro,
                hidden_paths=self.hidden_paths,
                system_paths=self.system_paths,
            )
            cmd = prefix + argv
        setup = child_setup(cgroup.procs_files, rlimits, self._drop(), self._prctl)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=setup,
                close_fds=True,
                umask=0o022,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxError(f"cannot start {argv[0]}: {exc}") from exc
        job = JobProcesses(proc, cgroup, sandboxed)
        assert proc.stdout is not None
        pump = OutputPump(proc.stdout.fileno(), on_output)
        pump.start()
        timed_out = canceled = False
        deadline = None if limits.wall_seconds is None else start + limits.wall_seconds
        try:
            while proc.poll() is None:
                if cancel is not None and cancel.is_set():
                    canceled = True
                elif deadline is not None and time.monotonic() >= deadline:
                    timed_out = True
                if canceled or timed_out:
                    job.terminate(self.kill_grace_seconds)
                    break
                if cancel is not None:
                    cancel.wait(0.05)
                else:
                    time.sleep(0.05)
            returncode = proc.wait()
        finally:
            # Whatever the script left running (or an exception here) ends with it.
            job.signal_all(SIGKILL)
            cgroup.kill_all()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        seconds = time.monotonic() - start
        pump.join(timeout=5)
        if pump.is_alive():
            notes.append("output after the script ended was not collected")
        else:
            proc.stdout.close()
        exit_code, sig = self._decode_status(returncode, sandboxed)
        return RunResult(
            exit_code=exit_code,
            signal=sig,
            timed_out=timed_out,
            canceled=canceled,
            oom_killed=cgroup.oom_kills() > 0,
            sandboxed=sandboxed,
            seconds=seconds,
            peak_memory_bytes=cgroup.peak_memory(),
            enforcement=MappingProxyType(enforcement),
            notes=tuple(notes),
        )

    @staticmethod
    def _decode_status(returncode: int, sandboxed: bool) -> tuple[int | None, int | None]:
        if returncode < 0:
            return None, -returncode
        if sandboxed and 128 < returncode < 128 + 65:
            return None, returncode - 128
        return returncode, None
