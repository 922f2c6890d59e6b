"""Python environments for remote runs, built with `uv` once per spec and cached.

`EnvSpec` (in `envspec`, re-exported here) says what an environment is and hashes it;
`EnvironmentCache.ensure(spec, log)` returns the built virtualenv as a `PreparedEnv`.

Decisions:

- **Keyed by `EnvSpec.build_hash()`**: Python version and packages, what the venv
  depends on (the spec's variables are the job's, not the build's).
- **System interpreters only.** `uv venv --python-preference only-system
  --no-python-downloads`, searching `python_search_path` (default
  `/usr/local/bin:/usr/bin:/bin`): an interpreter there is readable by the sandbox's
  unprivileged uid and lies inside the sandbox's read-only system binds, where one under
  `/root/.pyenv` would not. A missing version is an `EnvironmentBuildError` that names
  the versions the worker has.
- **No source builds by default.** Building an sdist runs the package's own code on the
  worker, outside the sandbox, with the worker's privileges; `uv pip install --no-build`
  takes wheels only. `EnvironmentCache(allow_source_builds=True)` opts in.
- **Atomic and raced once.** Builds happen in `envs/.tmp-<hash>-*` and are renamed to
  `envs/<hash>` when complete (`uv venv --relocatable`, so the rename keeps the venv
  working), under an exclusive `fcntl.flock` on `locks/<hash>.lock`: flock holds across
  processes and across threads (each call opens its own file description), and the
  kernel releases it when a builder dies. The winner builds; the others wait, then find
  the directory. An existing `envs/<hash>` holding the `mlstudio-env.json` marker is
  complete by construction; one without it is moved aside and rebuilt.
- **Failure leaves nothing behind.** The temp dir is removed, `EnvironmentBuildError`
  carries the log's tail, nothing remembers the failure: the next call builds again.
- **The log.** Every line of uv's output (and ours) goes to `logs/<hash>.log` and to the
  caller's `log` callback as it comes. The log of the last build attempt stays there.
- **One uv cache** (`uv-cache/` under the root unless given) shared by every build on
  the worker, so a package is downloaded once; on the same filesystem uv hardlinks
  from it. Files are created with umask 022: the venv is read by the sandbox's uid.
- **uv's environment is built from scratch** like a job's: PATH (the interpreter
  search path), HOME, the uv settings above, plus `build_env` (by default the worker's
  proxy, TLS-certificate and `UV_*` index variables, see `default_build_env`).
  Variables of the spec are the job's, not the build's.
- **Bytecode is compiled after the env is ready, in the background.** Jobs run with the
  venv read-only, so Python cannot write `.pyc` files itself: without them every job
  compiles every module it imports. But compiling all of a venv holding scikit-learn
  takes 15–18 s on two CPUs where installing it from the uv cache takes about 1 s
  (`uv pip install --compile-bytecode` did both before the env was ready). So the env
  is marked ready (renamed into place) right after the install, and `compileall` runs
  on it in its final place from a thread of the process that called `ensure()`, niced,
  with `<env>/mlstudio-bytecode.json` written when it ends. Jobs start meanwhile:
  `compileall` writes each `.pyc` atomically (a temp file renamed), so a job sees a
  module compiled or not, never half; later jobs get them all. One compiler per env at
  a time (`locks/<hash>.compile.lock`, not waited for); an env without its
  `mlstudio-bytecode.json` (the worker stopped mid-compile) is compiled again by the
  next `ensure()` that finds it, which skips the files already done. Compiling runs no
  package code: it only parses the files.
- **The build's time split** (`create_s`, `install_s`) is kept in the marker, the
  compile's (`seconds`, `ok`) in `mlstudio-bytecode.json`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import stat
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .envspec import EnvSpec

__all__ = [
    "BYTECODE_MARKER",
    "EnvSpec",
    "EnvironmentBuildError",
    "EnvironmentCache",
    "PreparedEnv",
    "default_build_env",
]

logger = logging.getLogger(__name__)

MARKER = "mlstudio-env.json"
BYTECODE_MARKER = "mlstudio-bytecode.json"
REQUIREMENTS = "mlstudio-requirements.txt"
DEFAULT_PYTHON_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
# Passed from the worker's own environment to uv by default: how to reach an index.
_BUILD_PASSTHROUGH = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "UV_INDEX",
    "UV_DEFAULT_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_NATIVE_TLS",
    "UV_HTTP_TIMEOUT",
    "UV_CONCURRENT_DOWNLOADS",
)

LogFn = Callable[[str], None]

# Run by the venv's own interpreter (the bytecode must match its version): niced, so jobs
# running meanwhile keep the CPUs; one worker process per CPU.
_COMPILE_SCRIPT = """\
import compileall, os, sys
os.nice(10)
ok = all([compileall.compile_dir(d, quiet=1, workers=0) for d in sys.argv[1:]])
sys.exit(0 if ok else 1)
"""


@dataclass(frozen=True)
class PreparedEnv:
    """A built virtualenv, ready to run: `python` is `<path>/bin/python`."""

    path: Path
    python: Path
    hash: str
    built_now: bool
    seconds: float
    log_path: Path
    python_version: str

    @property
    def bin_dir(self) -> Path:
        return self.path / "bin"

    def bytecode(self) -> dict | None:
        """How the background compile ended (`seconds`, `ok`), or None while it has not."""
        try:
            return json.loads((self.path / BYTECODE_MARKER).read_text())
        except (OSError, ValueError):
            return None

    def build_info(self) -> dict:
        """The marker: what was built, when, and how long each part took."""
        try:
            return json.loads((self.path / MARKER).read_text())
        except (OSError, ValueError):
            return {}


class EnvironmentBuildError(Exception):
    """A build failed; `log_tail` holds the last lines of its log."""

    def __init__(self, message: str, *, log_tail: str = "", log_path: Path | None = None):
        super().__init__(message)
        self.message = message
        self.log_tail = log_tail
        self.log_path = log_path

    def __str__(self) -> str:
        if not self.log_tail:
            return self.message
        return f"{self.message}\n--- build log (tail) ---\n{self.log_tail}"


def default_build_env() -> dict[str, str]:
    """The worker's proxy, TLS-certificate and uv index variables, for uv to reach an index."""
    return {k: os.environ[k] for k in _BUILD_PASSTHROUGH if k in os.environ}


def find_uv() -> str:
    import uv  # the PyPI package ships the binary

    return uv.find_uv_bin()


class _BuildLog:
    """Writes each line to the log file and the caller's callback; keeps a tail."""

    def __init__(self, path: Path, callback: LogFn | None, tail_lines: int = 40):
        self.path = path
        self._file = path.open("w", encoding="utf-8", errors="replace")
        self._callback = callback
        self._tail: deque[str] = deque(maxlen=tail_lines)

    def __call__(self, line: str) -> None:
        line = line.rstrip("\n")
        self._file.write(line + "\n")
        self._file.flush()
        self._tail.append(line)
        if self._callback is not None:
            try:
                self._callback(line)
            except Exception:  # the caller's display must not fail the build
                logger.exception("the build log callback failed; it is not called again")
                self._callback = None

    def tail(self) -> str:
        return "\n".join(self._tail)

    def close(self) -> None:
        self._file.close()


class EnvironmentCache:
    """Builds and caches virtualenvs under `root` (see the module docstring for the layout).

    `ensure()` is safe to call from many threads and processes at once.
    """

    def __init__(
        self,
        root: Path,
        *,
        uv_bin: str | None = None,
        uv_cache_dir: Path | None = None,
        python_search_path: str = DEFAULT_PYTHON_SEARCH_PATH,
        allow_source_builds: bool = False,
        build_timeout_seconds: float = 1800.0,
        build_env: Mapping[str, str] | None = None,
    ):
        self.root = Path(root).resolve()
        self.uv_bin = uv_bin or find_uv()
        self.uv_cache_dir = Path(uv_cache_dir).resolve() if uv_cache_dir else self.root / "uv-cache"
        self.python_search_path = python_search_path
        self.allow_source_builds = allow_source_builds
        self.build_timeout_seconds = build_timeout_seconds
        self.build_env = dict(default_build_env() if build_env is None else build_env)
        self.envs_dir = self.root / "envs"
        self.locks_dir = self.root / "locks"
        self.logs_dir = self.root / "logs"
        for d in (self.root, self.envs_dir, self.locks_dir, self.logs_dir, self.uv_cache_dir):
            d.mkdir(parents=True, exist_ok=True)
            # The sandbox's uid reaches the venvs through here; the rest stays the worker's.
            if d in (self.root, self.envs_dir):
                d.chmod(0o755)

    # --- lookup -----------------------------------------------------------------------

    def path_for(self, spec: EnvSpec) -> Path:
        return self.envs_dir / spec.build_hash()

    def get(self, spec: EnvSpec) -> PreparedEnv | None:
        """The cached environment of `spec`, or None when it is not built."""
        return self._prepared(spec.build_hash(), built_now=False, seconds=0.0)

    def _prepared(self, key: str, *, built_now: bool, seconds: float) -> PreparedEnv | None:
        path = self.envs_dir / key
        try:
            info = json.loads((path / MARKER).read_text())
        except (OSError, ValueError):
            return None
        return PreparedEnv(
            path=path,
            python=path / "bin" / "python",
            hash=key,
            built_now=built_now,
            seconds=seconds,
            log_path=self.logs_dir / f"{key}.log",
            python_version=str(info.get("python_version", "")),
        )

    # --- build ------------------------------------------------------------------------

    def ensure(self, spec: EnvSpec, log: LogFn | None = None) -> PreparedEnv:
        """The environment of `spec`, built now if it is not cached.

        Raises EnvironmentBuildError when the build fails.
        """
        start = time.monotonic()
        key = spec.build_hash()
        cached = self._prepared(key, built_now=False, seconds=0.0)
        if cached is not None:
            self._compile_in_background(cached)
            return self._touched(cached, start)
        with self._lock(key, log):
            cached = self._prepared(key, built_now=False, seconds=0.0)
            if cached is not None:  # another job built it while we waited
                self._compile_in_background(cached)
                return self._touched(cached, start)
            self._build(spec, key, log)
        prepared = self._prepared(key, built_now=True, seconds=time.monotonic() - start)
        assert prepared is not None
        self._compile_in_background(prepared)
        return prepared

    def wait_for_bytecode(self, env: PreparedEnv, timeout: float) -> dict | None:
        """Wait until the env's bytecode is compiled (whichever process compiles it);
        returns `env.bytecode()`, None when `timeout` seconds passed first."""
        deadline = time.monotonic() + timeout
        while (done := env.bytecode()) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return done

    def _touched(self, env: PreparedEnv, start: float) -> PreparedEnv:
        # The marker's mtime says when the env was last used, for eviction later.
        with contextlib.suppress(OSError):
            os.utime(env.path / MARKER)
        return dataclasses.replace(env, seconds=time.monotonic() - start)

    @contextlib.contextmanager
    def _lock(self, key: str, log: LogFn | None) -> Iterator[None]:
        fd = os.open(self.locks_dir / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if log is not None:
                    log(f"[env] waiting: another job is building environment {key[:12]}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _build(self, spec: EnvSpec, key: str, log: LogFn | None) -> None:
        final = self.envs_dir / key
        self._clear_leftovers(key)
        tmp = self.envs_dir / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        blog = _BuildLog(self.logs_dir / f"{key}.log", log)
        start = time.monotonic()
        try:
            blog(
                f"[env] building {key[:12]}: python {spec.python_version or '(default)'}, "
                f"packages: {', '.join(spec.pip_packages) or '(none)'}"
            )
            self._create_venv(spec, tmp, blog)
            created = time.monotonic()
            if spec.pip_packages:
                (tmp / REQUIREMENTS).write_text(spec.requirements_text())
                self._install(tmp, blog)
            installed = time.monotonic()
            python_version = self._venv_python_version(tmp)
            marker = {
                "build_hash": key,
                "python_version": python_version,
                "pip_packages": list(spec.pip_packages),
                "built_at": time.time(),
                "seconds": round(installed - start, 3),
                "create_s": round(created - start, 3),
                "install_s": round(installed - created, 3),
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=2))
            _make_world_readable(tmp)
            if final.exists():  # a directory without a marker: never completed
                self._discard(final)
            tmp.rename(final)
            blog(
                f"[env] built {key[:12]} in {time.monotonic() - start:.1f} s (venv "
                f"{marker['create_s']:.1f} s, install {marker['install_s']:.1f} s); "
                "bytecode compiles in the background"
            )
        except EnvironmentBuildError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            exc.log_tail, exc.log_path = blog.tail(), blog.path
            raise
        except OSError as exc:  # disk full, permissions: the run shows it like any failure
            shutil.rmtree(tmp, ignore_errors=True)
            blog(f"[env] build failed: {exc}")
            raise EnvironmentBuildError(
                f"building the environment failed: {exc}", log_tail=blog.tail(), log_path=blog.path
            ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            blog.close()

    def _clear_leftovers(self, key: str) -> None:
        # Temp dirs of this key from a builder that died: we hold the key's lock now.
        for leftover in self.envs_dir.glob(f".tmp-{key}-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _discard(self, path: Path) -> None:
        trash = self.envs_dir / f".trash-{path.name}-{uuid.uuid4().hex[:8]}"
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _uv_env(self) -> dict[str, str]:
        return {
            **self.build_env,
            "PATH": self.python_search_path,
            "HOME": str(self.root),
            "UV_CACHE_DIR": str(self.uv_cache_dir),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
            "NO_COLOR": "1",
        }

    def _create_venv(self, spec: EnvSpec, tmp: Path, blog: _BuildLog) -> None:
        args = [
            "venv",
            "--python-preference",
            "only-system",
            "--no-python-downloads",
            "--relocatable",
            "--no-project",
        ]
        if spec.python_version:
            args += ["--python", spec.python_version]
        code, output = self._uv([*args, str(tmp)], blog)
        if code == 0:
            return
        if "No interpreter found" in output:
            wanted = spec.python_version or "3"
            raise EnvironmentBuildError(
                f"Python {wanted} is not installed on this worker "
                f"(system interpreters only; it has: {self._installed_pythons() or 'none'})"
            )
        raise EnvironmentBuildError(f"creating the virtualenv failed (uv exit code {code})")

    def _install(self, tmp: Path, blog: _BuildLog) -> None:
        args = [
            "pip",
            "install",
            "--python",
            str(tmp / "bin" / "python"),
            "--no-progress",
            "-r",
            str(tmp / REQUIREMENTS),
        ]
        if not self.allow_source_builds:
            args.append("--no-build")
        code, _ = self._uv(args, blog)
        if code != 0:
            raise EnvironmentBuildError(f"installing the packages failed (uv exit code {code})")

    # --- bytecode, after the env is ready ---------------------------------------------

    def _compile_in_background(self, env: PreparedEnv) -> None:
        """Compile the env's bytecode from a thread unless it is done or being done."""
        if (env.path / BYTECODE_MARKER).exists():
            return
        lock = self.locks_dir / f"{env.hash}.compile.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another thread or process compiles it now
            os.close(fd)
            return
        thread = threading.Thread(
            target=self._compile, args=(env, fd), name=f"bytecode-{env.hash[:12]}", daemon=True
        )
        thread.start()

    def _compile(self, env: PreparedEnv, lock_fd: int) -> None:
        """compileall over the env's site-packages (holding the compile lock), then the
        marker. Failures are logged: a job only imports slower without bytecode."""
        start = time.monotonic()
        try:
            if (env.path / BYTECODE_MARKER).exists():  # done while we took the lock
                return
            folders = [str(p) for p in sorted(env.path.glob("lib/python*/site-packages"))]
            with open(self.logs_dir / f"{env.hash}.bytecode.log", "w") as out:
                code = subprocess.run(
                    [str(env.python), "-c", _COMPILE_SCRIPT, *folders],
                    env={"PATH": self.python_search_path, "HOME": str(self.root)},
                    cwd=env.path,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    umask=0o022,
                    timeout=self.build_timeout_seconds,
                    check=False,
                ).returncode
            done = {
                "ok": code == 0,
                "exit_code": code,
                "seconds": round(time.monotonic() - start, 3),
                "compiled_at": time.time(),
            }
            tmp = env.path / f".{BYTECODE_MARKER}.{uuid.uuid4().hex[:8]}"
            tmp.write_text(json.dumps(done, indent=2))
            tmp.chmod(0o644)
            tmp.rename(env.path / BYTECODE_MARKER)
        except (OSError, subprocess.SubprocessError) as exc:
            if env.path.exists():  # not merely an env removed meanwhile
                logger.warning("compiling the bytecode of env %s failed: %s", env.hash[:12], exc)
        finally:
            os.close(lock_fd)

    def _uv(self, args: list[str], blog: _BuildLog) -> tuple[int, str]:
        """Run uv, streaming its output lines to the build log; returns (code, output)."""
        proc = subprocess.Popen(
            [self.uv_bin, *args],
            env=self._uv_env(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            umask=0o022,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(self.build_timeout_seconds, stop)
        timer.start()
        lines: deque[str] = deque(maxlen=200)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                blog(line)
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if timed_out.is_set():
            blog(f"[env] stopped: the build took longer than {self.build_timeout_seconds:.0f} s")
        return code, "".join(lines)

    def _installed_pythons(self) -> str:
        try:
            out = subprocess.run(
                [
                    self.uv_bin,
                    "python",
                    "list",
                    "--only-installed",
                    "--python-preference",
                    "only-system",
                    "--no-python-downloads",
                    "--output-format",
                    "json",
                ],
                env=self._uv_env(),
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            versions = sorted({item["version"] for item in json.loads(out)})
        except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
            return ""
        return ", ".join(versions)

    @staticmethod
    def _venv_python_version(venv: Path) -> str:
        with contextlib.suppress(OSError):
            for line in (venv / "pyvenv.cfg").read_text().splitlines():
                name, _, value = line.partition("=")
                if name.strip() in {"version_info", "version"}:
                    return value.strip()
        return ""


def _make_world_readable(root: Path) -> None:
    """Let the sandbox's uid read the venv whatever the worker's umask was (uv's own files
    follow the umask we give it; links into the cache keep the cache's modes)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            _add_read(Path(dirpath, name), is_dir=True)
        for name in filenames:
            _add_read(Path(dirpath, name), is_dir=False)


def _add_read(path: Path, *, is_dir: bool) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return
    mode = stat.S_IMODE(st.st_mode)
    wanted = mode | 0o444
    if is_dir or mode & 0o100:
        wanted |= 0o111
    if wanted != mode:
        os.chmod(path, wanted)
