"""The bubblewrap command line: namespaces, and a filesystem built from an allow-list.

Decisions:

- New user, pid, ipc, uts and cgroup namespaces; the network is shared, so the studio on
  loopback is reachable. Inside, the job is uid/gid 65534; `--die-with-parent`,
  `--new-session`, every capability dropped.
- The filesystem is an allow-list, not the host's `/`: read-only `/usr /bin /sbin /lib*
  /etc` (symlinks such as merged-usr `/bin -> usr/bin` are recreated as symlinks),
  `/sys/devices/system/cpu` (CPU counts), the caller's read-only paths (the venv, and the
  interpreter it points at when that lies elsewhere), the work dir read-write, a fresh
  `/dev` and `/proc`, private in-memory `/tmp` and `/dev/shm`, and the root remounted
  read-only. So the repo, the data folder, other jobs' dirs, `/root` and `/home` are not
  there at all.
- Hidden paths (data folder, jobs root, secret files) are masked in addition wherever
  they would show through a bound path: a dir by an empty tmpfs made read-only once all
  mounts are done, a file by `/dev/null` (unreadable there: the user namespace mounts it
  nodev). Mounts apply shallowest first, so a hidden dir inside a bound one is masked and
  a bound dir inside a hidden one (a job's dir in the jobs root) shows. A path both
  hidden and bound is a configuration error.
- Paths are resolved (symlinks followed) before they are compared or bound, and appear
  inside at their real paths.
- Bubblewrap runs as the job's uid (see `sandbox`), which must be able to reach every
  bound path: `check_reachable` says which ancestor is in the way.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from .errors import SandboxError

__all__ = [
    "SYSTEM_PATHS",
    "bwrap_args",
    "check_reachable",
    "find_bwrap",
    "interpreter_prefix",
    "is_within",
    "probe_args",
]

NOBODY = 65534
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
SYSTEM_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
BWRAP_PROCESSES = 2  # bubblewrap's monitor outside and its init inside the pid namespace


def find_bwrap() -> str | None:
    return shutil.which("bwrap", path=SYSTEM_SEARCH_PATH)


def is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def interpreter_prefix(venv: Path) -> Path | None:
    """The install prefix of the interpreter a venv points at (pyvenv.cfg's `home`)."""
    try:
        text = (venv / "pyvenv.cfg").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            return Path(os.path.realpath(value.strip())).parent
    return None


def check_reachable(path: Path, uid: int, gid: int) -> None:
    """Raise SandboxError unless `uid` (no supplementary groups) can search every
    ancestor of `path`."""
    for ancestor in reversed(path.parents):
        st = ancestor.stat()
        bit = 0o100 if st.st_uid == uid else 0o010 if st.st_gid == gid else 0o001
        if not st.st_mode & bit:
            raise SandboxError(
                f"{path} is not reachable by the sandbox's uid {uid}: {ancestor} has mode "
                f"{st.st_mode & 0o7777:o}; let others search it (chmod o+x) or move {path}"
            )


def _base(bwrap: str) -> list[str]:
    return [
        bwrap,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--share-net",
        "--uid",
        str(NOBODY),
        "--gid",
        str(NOBODY),
        "--hostname",
        "mlstudio-job",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]


def _system(system_paths: Sequence[str]) -> list[str]:
    args: list[str] = []
    for path in system_paths:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return [*args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # noqa: S108


def probe_args(bwrap: str, system_paths: Sequence[str] = SYSTEM_PATHS) -> list[str]:
    """A command that succeeds when bubblewrap works here."""
    return [*_base(bwrap), *_system(system_paths), "--", "true"]


def bwrap_args(
    bwrap: str,
    *,
    workdir: Path,
    ro_paths: Sequence[Path],
    hidden_paths: Sequence[Path],
    system_paths: Sequence[str] = SYSTEM_PATHS,
) -> list[str]:
    """bubblewrap and its options, up to and including `--`: append the job's argv."""
    binds = [(p, "ro") for p in ro_paths] + [(workdir, "rw")]
    bound = {p for p, _ in binds}
    visible = [Path(os.path.realpath(p)) for p in system_paths] + list(bound)
    ops: list[tuple[Path, str]] = list(binds)
    for hidden in hidden_paths:
        if hidden in bound:
            raise SandboxError(f"{hidden} is both hidden and bound into the sandbox")
        if hidden.exists() and any(is_within(hidden, root) for root in visible):
            ops.append((hidden, "mask"))
    args = ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    # Masking tmpfs become read-only last: a deeper bind may need a mount point in one.
    readonly = ["/"]
    for path, kind in sorted(ops, key=lambda op: len(op[0].parts)):
        p = str(path)
        if kind == "ro":
            args += ["--ro-bind", p, p]
        elif kind == "rw":
            args += ["--bind", p, p]
        elif path.is_dir():
            args += ["--tmpfs", p]
            readonly.append(p)
        else:
            args += ["--ro-bind", "/dev/null", p]
    for p in reversed(readonly):
        args += ["--remount-ro", p]
    return [*_base(bwrap), *_system(system_paths), *args, "--chdir", str(workdir), "--"]
