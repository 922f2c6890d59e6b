"""Environments are built with real uv from PyPI, once per hash, raced safely, and a failed
build says why. Builds share one uv cache in the system temp folder that survives between runs,
so after the first run on a machine nothing is downloaded again."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT
from deployments.runner.envcache import (
    BYTECODE_MARKER,
    EnvironmentBuildError,
    EnvironmentCache,
    EnvSpec,
    PreparedEnv,
)
from deployments.tests.runner_support import ENV_CACHE_ROOT

UV_CACHE = ENV_CACHE_ROOT / "uv-cache"


@pytest.fixture
def fresh_root() -> Iterator[Path]:
    """An empty environment cache sharing the persistent uv cache: a cold venv build that
    does not download again what an earlier run fetched."""
    ENV_CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    root = ENV_CACHE_ROOT / f"tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_cache(root: Path, **kwargs) -> EnvironmentCache:
    return EnvironmentCache(root, uv_cache_dir=kwargs.pop("uv_cache_dir", UV_CACHE), **kwargs)


# --- specs ------------------------------------------------------------------------------


def test_spec_hash_is_stable_under_order_case_and_spacing():
    a = EnvSpec("3.11", ("scikit-learn>=1.3", "MLflow", "six"), {"B": "2", "A": "1"})
    b = EnvSpec(" 3.11 ", ["six", " mlflow ", "Scikit_Learn >= 1.3", "six"], {"A": "1", "B": "2"})
    assert a.spec_hash() == b.spec_hash() and a.build_hash() == b.build_hash()
    assert a.pip_packages == ("mlflow", "scikit-learn>=1.3", "six")
    assert a == b and len({a, b}) == 1
    # Known values: a change to the canonical form must be deliberate (it rebuilds every
    # env and renames every Environment).
    assert EnvSpec(None, ("six",)).build_hash().startswith("2bf15915e151")
    assert EnvSpec("3.11", ("six",), {"A": "1"}).spec_hash().startswith("90a1bb0a6b7c")


def test_variables_change_the_spec_but_not_the_build():
    base = EnvSpec("3.11", ("six",))
    with_vars = EnvSpec("3.11", ("six",), {"ALPHA": "0.5"})
    assert base.spec_hash() != with_vars.spec_hash()
    assert base.build_hash() == with_vars.build_hash()
    assert EnvSpec("3.11", ("six==1.16",)).build_hash() != base.build_hash()
    assert EnvSpec("3.12", ("six",)).build_hash() != base.build_hash()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"pip_packages": ("--index-url=http://evil/simple",)}, "options are not allowed"),
        ({"pip_packages": ("-r /etc/passwd",)}, "options are not allowed"),
        ({"pip_packages": ("six @ file:///etc/passwd",)}, "only https://"),
        ({"pip_packages": ("six; rm -rf /",)}, "not a valid package requirement"),
        ({"pip_packages": "six"}, "not one string"),
        ({"python_version": "python3"}, "not a Python version"),
        ({"python_version": "3.11; rm"}, "not a Python version"),
        ({"env_vars": {"BAD-NAME": "x"}}, "not an environment variable name"),
    ],
)
def test_specs_refuse_what_is_not_data(kwargs, error):
    with pytest.raises(ValueError, match=error):
        EnvSpec(**kwargs)


# --- builds -----------------------------------------------------------------------------


def _imports(env: PreparedEnv, module: str, *, write_bytecode: bool = True) -> str:
    variables = {"PATH": "/usr/bin:/bin"}
    if not write_bytecode:  # as under the sandbox, where the venv is read-only
        variables["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [str(env.python), "-c", f"import {module}; print({module}.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=variables,
    ).stdout.strip()


@pytest.mark.slow
def test_a_real_package_is_built_once_then_reused(fresh_root: Path, tmp_path: Path):
    spec = EnvSpec("3.11", ("six",))
    # Timings for the record (not asserted): from PyPI with an empty uv cache...
    download = fresh_cache(tmp_path / "cold", uv_cache_dir=tmp_path / "uv").ensure(spec)
    assert download.built_now and "six" in _imports(download, "six")
    # ...and with the worker's uv cache warm, which is what a new spec usually meets.
    lines: list[str] = []
    cache = fresh_cache(fresh_root)
    cold = cache.ensure(spec, log=lines.append)
    assert cold.built_now and cold.path == fresh_root / "envs" / spec.build_hash()
    assert cold.python_version.startswith("3.11")
    assert _imports(cold, "six").startswith(str(cold.path))  # the rename kept it working
    assert cache.wait_for_bytecode(cold, timeout=60)  # compiled after the env was ready
    assert list((cold.path / "lib").glob("python3*/site-packages/__pycache__/six*.pyc"))
    assert any("six" in line for line in lines) and lines[-1].startswith("[env] built")
    assert "+ six==" in cold.log_path.read_text()
    assert not list((fresh_root / "envs").glob(".tmp-*"))

    warm = fresh_cache(fresh_root).ensure(spec, log=lines.append)  # a new worker process
    assert not warm.built_now and warm.path == cold.path
    assert fresh_cache(fresh_root).get(EnvSpec("3.11", ("six",), {"X": "1"})) is not None
    print(
        f"\nsix: cold build {download.seconds:.2f} s from PyPI, {cold.seconds:.2f} s from the"
        f" uv cache; cached {warm.seconds * 1000:.1f} ms"
    )


@pytest.mark.slow
def test_the_env_is_ready_before_its_bytecode_which_is_compiled_after(fresh_root: Path):
    """Jobs may start once the packages are installed; the bytecode (15 s for a venv with
    scikit-learn) follows in the background, and one interrupted is taken up again."""
    spec = EnvSpec("3.11", ("six",))
    cache = fresh_cache(fresh_root)
    # Another process compiles this env's bytecode (it holds the lock): ensure() must
    # neither wait for it nor compile a second time.
    holder = os.open(cache.locks_dir / f"{spec.build_hash()}.compile.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        env = cache.ensure(spec)
        assert env.built_now and env.bytecode() is None
        info = env.build_info()
        assert info["install_s"] > 0 and info["create_s"] > 0
        assert info["seconds"] == pytest.approx(info["create_s"] + info["install_s"], abs=0.01)
        site = next((env.path / "lib").glob("python3*/site-packages"))
        assert not list(site.glob("__pycache__/six*.pyc"))  # uv compiled nothing
        # Usable meanwhile, as a job would use it (reading sources, writing no .pyc).
        assert _imports(env, "six", write_bytecode=False).startswith(str(site))
        assert not cache.ensure(spec).built_now
        time.sleep(0.5)
        assert env.bytecode() is None and not list(site.glob("__pycache__/six*.pyc"))
    finally:
        os.close(holder)  # that compiler died before it finished
    # The next ensure() (here a new worker process) finds the bytecode missing: compiled.
    again = fresh_cache(fresh_root).ensure(spec)
    assert not again.built_now
    done = cache.wait_for_bytecode(again, timeout=60)
    assert done is not None and done["ok"] and done["seconds"] > 0
    pyc = list(site.glob("__pycache__/six*.pyc"))
    assert pyc and all(p.stat().st_mode & 0o004 for p in pyc)  # the sandbox's uid reads it
    assert (again.path / BYTECODE_MARKER).stat().st_mode & 0o004
    stamp = pyc[0].stat().st_mtime_ns
    fresh_cache(fresh_root).ensure(spec)  # compiled once: nothing starts again
    time.sleep(0.3)
    assert pyc[0].stat().st_mtime_ns == stamp


RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from deployments.runner.envcache import EnvironmentCache, EnvSpec
    root, uv_cache, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    cache = EnvironmentCache(root, uv_cache_dir=uv_cache)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    lines = []
    env = cache.ensure(EnvSpec(None, ("six",)), log=lines.append)
    print(json.dumps({"built_now": env.built_now, "path": str(env.path), "lines": lines}))
    """
)


@pytest.mark.slow
def test_processes_racing_on_one_hash_build_it_once(fresh_root: Path, tmp_path: Path):
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(fresh_root), str(UV_CACHE), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()  # all three call ensure() at once
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        results.append(json.loads(out))
    assert sorted(r["built_now"] for r in results) == [False, False, True]
    assert len({r["path"] for r in results}) == 1
    waited = [r for r in results if any("waiting" in line for line in r["lines"])]
    print(f"\n{len(waited)} of the 2 losers waited on the lock; the others found the env built")
    assert (fresh_root / "logs").iterdir()
    assert [p.name for p in (fresh_root / "envs").iterdir()] == [
        EnvSpec(None, ("six",)).build_hash()
    ]


def test_threads_racing_on_one_hash_build_it_once(fresh_root: Path):
    cache = fresh_cache(fresh_root)
    spec = EnvSpec()  # a bare venv: the point is the lock, not the packages
    barrier = threading.Barrier(4)
    results: list[PreparedEnv] = []

    def race() -> None:
        barrier.wait()
        results.append(cache.ensure(spec))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.built_now for r in results) == [False, False, False, True]
    assert len({r.path for r in results}) == 1


@pytest.mark.slow
def test_a_failed_build_carries_its_log_and_leaves_nothing(fresh_root: Path):
    missing = f"mlstudio-no-such-package-{uuid.uuid4().hex[:8]}"
    cache = fresh_cache(fresh_root)
    streamed: list[str] = []
    with pytest.raises(EnvironmentBuildError) as caught:
        cache.ensure(EnvSpec(None, (missing,)), log=streamed.append)
    error = caught.value
    assert "installing the packages failed" in error.message
    assert missing in error.log_tail and missing in str(error)
    assert error.log_path is not None and missing in error.log_path.read_text()
    assert any(missing in line for line in streamed)
    assert list((fresh_root / "envs").iterdir()) == []  # no env, no temp dir


def test_a_failed_build_is_retried_by_the_next_call(fresh_root: Path, tmp_path: Path):
    spec = EnvSpec(None, ("six",))
    offline = fresh_cache(
        fresh_root, uv_cache_dir=tmp_path / "empty-cache", build_env={"UV_OFFLINE": "1"}
    )
    with pytest.raises(EnvironmentBuildError):
        offline.ensure(spec)
    assert offline.get(spec) is None
    env = fresh_cache(fresh_root).ensure(spec)  # the failure was not remembered
    assert env.built_now and "six" in _imports(env, "six")


def test_a_missing_python_version_says_which_the_worker_has(fresh_root: Path):
    with pytest.raises(EnvironmentBuildError) as caught:
        fresh_cache(fresh_root).ensure(EnvSpec("3.7"))
    message = caught.value.message
    assert "Python 3.7 is not installed on this worker" in message
    assert "3.11" in message  # what it has instead (Debian's /usr/bin/python3.11)
    assert list((fresh_root / "envs").iterdir()) == []


def test_an_incomplete_env_dir_is_rebuilt(fresh_root: Path):
    cache = fresh_cache(fresh_root)
    spec = EnvSpec()
    broken = cache.path_for(spec)
    broken.mkdir(parents=True)
    (broken / "junk").write_text("a build that died before its marker")
    assert cache.get(spec) is None
    env = cache.ensure(spec)
    assert env.built_now and not (env.path / "junk").exists()
    assert json.loads((env.path / "mlstudio-env.json").read_text())["build_hash"] == env.hash


def test_the_venv_is_readable_by_others_whatever_the_umask(fresh_root: Path):
    old = os.umask(0o077)
    try:
        env = fresh_cache(fresh_root).ensure(EnvSpec())
    finally:
        os.umask(old)
    for path in [
        env.path,
        env.path / "pyvenv.cfg",
        env.path / "bin",
        env.path / "mlstudio-env.json",
    ]:
        assert path.stat().st_mode & 0o004, path
