"""The sandbox runs real scripts: output streams as it comes, exit codes and signals are
reported, limits stop what they should, cancel kills the whole tree. With and without
bubblewrap (the fallback is simulated by `bwrap_path=None`)."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import require
from deployments.runner.sandbox import Limits, Sandbox, SandboxError
from deployments.tests.runner_support import (
    Captured,
    cgroup_controllers_writable,
    processes_with,
    require_bwrap,
    require_system_python,
    run_script,
)

pytestmark = pytest.mark.usefixtures("_system_python")


@pytest.fixture
def _system_python() -> None:
    require_system_python()


@pytest.fixture(params=["bwrap", "no-bwrap"])
def sandbox(request) -> Sandbox:
    """The same tests under bubblewrap and without it."""
    if request.param == "bwrap":
        require_bwrap()
        return Sandbox(kill_grace_seconds=1.0)
    return Sandbox(bwrap_path=None, kill_grace_seconds=1.0)


@pytest.mark.slow
def test_output_streams_line_by_line_as_it_is_printed(sandbox: Sandbox, workdir: Path):
    result, out = run_script(
        sandbox,
        workdir,
        """
        import sys, time
        for i in range(5):
            print(f"line {i}")
            time.sleep(0.4)
        print("to stderr", file=sys.stderr)
        """,
    )
    assert result.exit_code == 0 and result.ok, out.text
    texts = [t for _, t in out.lines]
    assert texts == [f"line {i}\n" for i in range(5)] + ["to stderr\n"]
    arrivals = [at for at, _ in out.lines]
    ended = arrivals[-1]
    # The first line came about 2 s before the end, and the lines came spread out.
    assert ended - arrivals[0] > 1.4, out.lines
    assert all(b - a > 0.2 for a, b in itertools.pairwise(arrivals[:5])), out.lines
    assert result.sandboxed is (sandbox.bwrap_path is not None)
    print(f"\nline arrivals (s after the first): {[round(a - arrivals[0], 2) for a in arrivals]}")


@pytest.mark.slow
def test_a_partial_line_is_delivered_without_its_newline(sandbox: Sandbox, workdir: Path):
    result, out = run_script(
        sandbox,
        workdir,
        """
        import sys, time
        sys.stdout.write("progress 50%"); sys.stdout.flush()
        time.sleep(2)
        print(" done")
        """,
    )
    assert result.ok
    first_at, first = out.lines[0]
    assert first == "progress 50%"
    assert out.lines[-1][0] - first_at > 0.5  # it came before the rest of the line
    assert out.text == "progress 50% done\n"


def test_exit_codes_exceptions_and_signals_are_reported(sandbox: Sandbox, workdir: Path):
    result, _ = run_script(sandbox, workdir, "raise SystemExit(3)")
    assert (result.exit_code, result.signal, result.ok) == (3, None, False)
    assert result.describe() == "failed: exit code 3"

    result, out = run_script(sandbox, workdir, "raise ValueError('bad alpha')")
    assert result.exit_code == 1
    assert "Traceback" in out.text and "ValueError: bad alpha" in out.text

    result, _ = run_script(
        sandbox, workdir, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    )
    assert (result.exit_code, result.signal) == (None, signal.SIGKILL)
    assert result.describe() == "killed by signal SIGKILL"


def test_wall_clock_limit_stops_the_job(sandbox: Sandbox, workdir: Path):
    result, out = run_script(
        sandbox,
        workdir,
        """
        import time
        print("started", flush=True)
        time.sleep(60)
        """,
        limits=Limits(wall_seconds=1.0),
    )
    assert result.timed_out and not result.ok
    assert result.seconds < 4, result
    assert "started" in out.text
    assert result.describe().startswith("stopped: wall-clock limit")


def assert_none_left(token: str) -> None:
    time.sleep(0.2)  # let the kernel reap
    survivors = processes_with(token)
    for pid in survivors:  # the test fails, but leaves nothing running
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert survivors == [], "a process of the job survived it"


# A parent that leaves behind a double-forked grandchild that ignores SIGTERM (so only
# SIGKILL ends it) and, with "setsid", one more that left the session too.
TREE = """
import os, signal, subprocess, sys, time
token = sys.argv[1]
def daemon(new_session):
    if os.fork() == 0:
        if new_session:
            os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.execv(sys.executable, [sys.executable, "-c",
                     "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                     "time.sleep(120)", token])
        os._exit(0)
    os.wait()
daemon(False)
if "setsid" in sys.argv:
    daemon(True)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", token])
time.sleep(0.5)
print("tree ready", flush=True)
time.sleep(120)
"""


def _cancel_tree(sandbox: Sandbox, workdir: Path, *, setsid: bool) -> None:
    token = f"runner-tree-{uuid.uuid4().hex}"
    cancel = threading.Event()
    out = Captured()
    box: dict = {}
    args = (token, "setsid") if setsid else (token,)
    thread = threading.Thread(
        target=lambda: box.update(
            result=run_script(sandbox, workdir, TREE, args=args, cancel=cancel, out=out)[0]
        )
    )
    thread.start()
    try:
        out.wait_for("tree ready")
        expected = 4 if setsid else 3
        assert len(processes_with(token)) >= expected - 1, "the tree did not start"
        canceled_at = time.monotonic()
        cancel.set()
        thread.join(timeout=15)
        took = time.monotonic() - canceled_at
    finally:
        cancel.set()
        thread.join(timeout=15)
    result = box["result"]
    assert result.canceled and not result.ok
    assert took < sandbox.kill_grace_seconds + 3, took
    assert_none_left(token)
    print(f"\ncancel took {took:.2f} s (grace {sandbox.kill_grace_seconds} s)")


@pytest.mark.slow
def test_cancel_kills_the_whole_tree_within_seconds(sandbox: Sandbox, workdir: Path):
    _cancel_tree(sandbox, workdir, setsid=False)


@pytest.mark.slow
def test_cancel_kills_a_grandchild_that_left_the_session(sandbox: Sandbox, workdir: Path):
    """Under bubblewrap the pid namespace holds it; without, the job's cgroup does."""
    if sandbox.bwrap_path is None:
        require(bool(cgroup_controllers_writable()), "no writable cgroup controller")
    _cancel_tree(sandbox, workdir, setsid=True)


@pytest.mark.slow
def test_cancel_without_cgroups_kills_the_session(workdir: Path):
    _cancel_tree(
        Sandbox(bwrap_path=None, use_cgroups=False, kill_grace_seconds=1.0), workdir, setsid=False
    )


def test_processes_left_running_end_with_the_script(sandbox: Sandbox, workdir: Path):
    token = f"runner-left-{uuid.uuid4().hex}"
    result, _ = run_script(
        sandbox,
        workdir,
        """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", sys.argv[1]])
        print("bye")
        """,
        args=(token,),
    )
    assert result.ok
    assert_none_left(token)


ALLOCATE = """
import sys
print("allocating", flush=True)
blocks = []
try:
    for _ in range(20):
        blocks.append(b"x" * (16 << 20))  # touched, so resident
except MemoryError:
    print("MemoryError", flush=True)
    sys.exit(1)
print(f"allocated {len(blocks) * 16} MiB", flush=True)
"""


def test_memory_limit_kills_and_reports_it(sandbox: Sandbox, workdir: Path):
    require("memory" in cgroup_controllers_writable(), "no writable memory cgroup")
    result, out = run_script(sandbox, workdir, ALLOCATE, limits=Limits(memory_bytes=128 << 20))
    assert result.oom_killed, (result, out.text)
    assert result.signal == signal.SIGKILL
    assert "allocated" not in out.text
    assert result.enforcement["memory"] == "cgroup"
    assert result.describe() == "killed: out of memory (memory limit reached)"
    assert result.peak_memory_bytes is not None and result.peak_memory_bytes <= 128 << 20

    result, out = run_script(sandbox, workdir, ALLOCATE, limits=Limits(memory_bytes=1 << 30))
    assert result.ok and "allocated 320 MiB" in out.text  # under the limit it runs
    assert not result.oom_killed


def test_a_child_killed_for_memory_is_reported_when_the_script_survives(
    sandbox: Sandbox, workdir: Path
):
    require("memory" in cgroup_controllers_writable(), "no writable memory cgroup")
    (workdir / "allocate.py").write_text(ALLOCATE)
    result, out = run_script(
        sandbox,
        workdir,
        """
        import subprocess, sys
        code = subprocess.run([sys.executable, "allocate.py"]).returncode
        print("child returned", code)
        """,
        limits=Limits(memory_bytes=128 << 20),
    )
    assert "child returned -9" in out.text, out.text
    assert result.ok and result.oom_killed
    assert result.describe() == "completed (a process was killed for memory)"


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="memory_bytes must be positive"):
        Limits(memory_bytes=0)
    with pytest.raises(ValueError, match="wall_seconds"):
        Limits(wall_seconds=-1)


def test_memory_limit_without_cgroups_uses_rlimit(sandbox: Sandbox, workdir: Path):
    sandbox = Sandbox(bwrap_path=sandbox.bwrap_path, use_cgroups=False)
    result, out = run_script(sandbox, workdir, ALLOCATE, limits=Limits(memory_bytes=256 << 20))
    assert not result.ok and not result.oom_killed
    assert result.enforcement["memory"] == "rlimit (address space)"
    assert "MemoryError" in out.text and "allocated" not in out.text


def test_file_size_limit(sandbox: Sandbox, workdir: Path):
    result, out = run_script(
        sandbox,
        workdir,
        """
        import errno
        try:
            with open("big.bin", "wb") as fh:
                for _ in range(8):
                    fh.write(b"x" * (1 << 20)); fh.flush()
        except OSError as exc:
            print("refused", errno.errorcode[exc.errno], flush=True)
            raise SystemExit(2)
        """,
        limits=Limits(max_file_bytes=2 << 20),
    )
    assert result.exit_code == 2, out.text
    assert "refused EFBIG" in out.text
    assert (workdir / "big.bin").stat().st_size <= 2 << 20


FORK_BOMB = """
import os, time
children = 0
for _ in range(40):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    children += 1
print("children", children, flush=True)
"""


@pytest.mark.parametrize("cgroups", [True, False], ids=["pids-cgroup", "rlimit-nproc"])
def test_process_limit(sandbox: Sandbox, workdir: Path, cgroups: bool):
    if cgroups:
        require("pids" in cgroup_controllers_writable(), "no writable pids cgroup")
    else:
        require(os.geteuid() == 0, "RLIMIT_NPROC needs a job uid other than the worker's")
        # RLIMIT_NPROC counts per uid across the host: a uid of this test's own keeps jobs
        # of a parallel test run (as 65534) out of the count.
        uid = random.randint(200_000, 299_999)
        sandbox = Sandbox(bwrap_path=sandbox.bwrap_path, use_cgroups=False, run_as=(uid, uid))
    result, out = run_script(sandbox, workdir, FORK_BOMB, limits=Limits(max_processes=8))
    assert result.ok, out.text
    children = int(out.text.split("children")[1])
    assert 3 <= children < 8, out.text  # the script itself is one of the 8
    expected = "cgroup" if cgroups else "rlimit (per uid)"
    assert result.enforcement["processes"] == expected


def test_cpu_time_limit(sandbox: Sandbox, workdir: Path):
    result, _ = run_script(
        sandbox, workdir, "while True: pass", limits=Limits(cpu_seconds=1, wall_seconds=20)
    )
    assert result.signal == signal.SIGXCPU, result
    assert not result.timed_out and result.seconds < 10
    assert result.describe() == "killed: CPU time limit reached"


def test_the_job_runs_as_an_unprivileged_uid(sandbox: Sandbox, workdir: Path):
    require(os.geteuid() == 0, "the worker is not root: jobs run as the worker's uid")
    result, out = run_script(
        sandbox,
        workdir,
        """
        import os
        print(os.getuid(), os.getgid(), os.getgroups())
        open("mine.txt", "w").write("x")
        """,
    )
    assert result.ok, out.text
    assert out.text.strip() == "65534 65534 []"
    # The host sees the file owned by 65534 too: the uid was dropped, not only mapped.
    assert (workdir / "mine.txt").stat().st_uid == 65534


def test_without_bubblewrap_the_result_says_so(workdir: Path):
    result, _ = run_script(Sandbox(bwrap_path=None), workdir, "print('hi')")
    assert result.ok and result.sandboxed is False
    assert "bubblewrap" in result.notes[0]
    with pytest.raises(SandboxError, match="bubblewrap"):
        Sandbox(bwrap_path=None, require_sandbox=True).run(
            ["true"], workdir=workdir, env={}, limits=Limits()
        )


def test_an_unreachable_work_dir_is_a_clear_error(jobs_root: Path):
    require_bwrap()
    require(os.geteuid() == 0, "needs a job uid other than the worker's")
    private = jobs_root / "private"
    private.mkdir(mode=0o700)
    hidden_job = private / "job"
    hidden_job.mkdir()
    with pytest.raises(SandboxError, match=r"not reachable by the sandbox's uid 65534.*mode 700"):
        Sandbox().run(["true"], workdir=hidden_job, env={}, limits=Limits())
