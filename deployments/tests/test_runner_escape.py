"""A script under bubblewrap tries to get out; each attempt must fail. The layout mimics a
server: a data folder with its secret key, a jobs root with another job's dir, a secrets
file, all inside a directory that is visible in the sandbox (bound read-only), so only
the masking stands between the script and them."""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from conftest import ROOT
from deployments.runner.sandbox import Sandbox, SandboxError
from deployments.tests.runner_support import (
    require_bwrap,
    require_system_python,
    run_script,
)

SECRET = "not-for-scripts-" + uuid.uuid4().hex


@pytest.fixture
def server(jobs_root: Path) -> dict[str, Path]:
    """server/{data/secret_key, .env, jobs/{job-a (ours), job-b (another's)}}."""
    require_bwrap()
    require_system_python()
    root = jobs_root / "server"
    (root / "data").mkdir(parents=True)
    (root / "data" / "secret_key").write_text(SECRET)
    (root / "data" / "secret_key").chmod(0o644)  # readable: only the mask protects it
    (root / ".env").write_text(f"SECRET_KEY={SECRET}\n")
    (root / ".env").chmod(0o644)
    (root / "jobs" / "job-b").mkdir(parents=True)
    (root / "jobs" / "job-b" / "notes.txt").write_text(SECRET)
    (root / "jobs" / "job-b" / "notes.txt").chmod(0o644)
    (root / "jobs" / "job-a").mkdir()
    for d in (root, root / "data", root / "jobs", root / "jobs" / "job-b"):
        d.chmod(0o755)
    return {
        "root": root,
        "data": root / "data",
        "env_file": root / ".env",
        "jobs": root / "jobs",
        "workdir": root / "jobs" / "job-a",
        "other_job": root / "jobs" / "job-b",
    }


@pytest.fixture
def sandbox(server: dict[str, Path]) -> Sandbox:
    return Sandbox(hidden_paths=[server["data"], server["jobs"], server["env_file"]])


def attempt(sandbox: Sandbox, server: dict[str, Path], code: str, **kwargs) -> str:
    """Run `code` with the server dir visible; return what it printed."""
    result, out = run_script(sandbox, server["workdir"], code, ro_paths=(server["root"],), **kwargs)
    assert result.sandboxed
    assert result.exit_code == 0, out.text
    return out.text


TRY = """
import sys
def attempt(label, fn):
    try:
        fn()
    except OSError as exc:
        print(label, "refused", type(exc).__name__)
    else:
        print(label, "ESCAPED")
"""


@pytest.mark.parametrize(
    "target",
    ["/etc/runner-escape", "/usr/runner-escape", "/runner-escape", "/proc/runner-escape"],
)
def test_writing_to_the_system_fails(sandbox, server, target):
    out = attempt(sandbox, server, TRY + f"attempt('w', lambda: open({target!r}, 'w'))")
    assert out.strip().startswith("w refused"), out
    assert not Path(target).exists()


def test_writing_into_the_repo_fails(sandbox, server):
    target = ROOT / f"runner-escape-{uuid.uuid4().hex}"
    out = attempt(sandbox, server, TRY + f"attempt('w', lambda: open({str(target)!r}, 'w'))")
    assert "ESCAPED" not in out
    assert not target.exists()


def test_writing_outside_the_work_dir_in_visible_places_fails(sandbox, server):
    out = attempt(
        sandbox,
        server,
        TRY
        + f"attempt('w', lambda: open({str(server['root'] / 'x')!r}, 'w'))\n"
        + f"attempt('m', lambda: __import__('os').mkdir({str(server['jobs'] / 'job-c')!r}))\n",
    )
    assert "ESCAPED" not in out and out.count("refused") == 2, out
    assert not (server["root"] / "x").exists() and not (server["jobs"] / "job-c").exists()


def test_tmp_is_private(sandbox, server):
    name = f"runner-escape-{uuid.uuid4().hex}"
    out = attempt(sandbox, server, f"open('/tmp/{name}', 'w').write('x'); print('wrote')")
    assert "wrote" in out  # the script has a /tmp of its own...
    assert not Path("/tmp", name).exists()  # ...which is not the host's


def test_the_work_dir_is_writable(sandbox, server):
    out = attempt(sandbox, server, "open('outputs.txt', 'w').write('ok'); print('ok')")
    assert "ok" in out and (server["workdir"] / "outputs.txt").read_text() == "ok"


def test_the_secret_key_file_is_masked(sandbox, server):
    key = server["data"] / "secret_key"
    out = attempt(
        sandbox,
        server,
        TRY
        + f"attempt('read', lambda: print(open({str(key)!r}).read()))\n"
        + f"print('listing', __import__('os').listdir({str(server['data'])!r}))\n",
    )
    assert SECRET not in out
    assert "read refused" in out and "listing []" in out, out


def test_a_hidden_file_is_masked(sandbox, server):
    out = attempt(
        sandbox,
        server,
        TRY + f"attempt('read', lambda: print(open({str(server['env_file'])!r}).read()))",
    )
    assert SECRET not in out and out.strip() == "read refused PermissionError", out


def test_another_jobs_dir_is_invisible(sandbox, server):
    other = server["other_job"]
    out = attempt(
        sandbox,
        server,
        TRY
        + f"attempt('read', lambda: print(open({str(other / 'notes.txt')!r}).read()))\n"
        + f"print('jobs', sorted(__import__('os').listdir({str(server['jobs'])!r})))\n",
    )
    assert SECRET not in out
    assert "read refused" in out and "jobs ['job-a']" in out, out


def test_unbound_server_paths_do_not_exist(server):
    """Without `ro_paths`, nothing of the server is even there (the default layout)."""
    sandbox = Sandbox()
    result, out = run_script(
        sandbox,
        server["workdir"],
        f"""
        import os
        for p in [{str(server["data"])!r}, {str(ROOT)!r}, "/root", "/home", "/work", "/var"]:
            print(p, os.path.exists(p))
        """,
    )
    assert result.ok, out.text
    assert f"{server['data']} False" in out.text
    assert out.text.count(" False") == 6, out.text


def test_server_environment_variables_do_not_reach_the_script(server, monkeypatch):
    for name in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        monkeypatch.setenv(name, SECRET)
    for sandbox in (Sandbox(), Sandbox(bwrap_path=None)):
        _, out = run_script(
            sandbox,
            server["workdir"],
            "import json, os; print(json.dumps(dict(os.environ)))",
            env_extra={"MLFLOW_RUN_ID": "abc"},
        )
        seen = json.loads(out.text)
        assert SECRET not in out.text
        assert seen["MLFLOW_RUN_ID"] == "abc" and seen["PYTHONUNBUFFERED"] == "1"
        assert not {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} & set(seen)


def test_host_processes_are_invisible(sandbox, server):
    out = attempt(
        sandbox,
        server,
        """
        import os
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        print("pids", len(pids), os.getpid())
        """,
    )
    count, pid = (int(x) for x in out.split()[1:3])
    assert count <= 3 and pid <= 3, out  # bwrap's init, the script, its listing


def test_the_script_reaches_a_server_on_loopback(sandbox, server):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                received.append(conn.recv(100))
                conn.sendall(b"pong")

    thread = threading.Thread(target=serve)
    thread.start()
    out = attempt(
        sandbox,
        server,
        f"""
        import socket
        with socket.create_connection(("127.0.0.1", {port}), timeout=10) as s:
            s.sendall(b"ping")
            print(s.recv(100).decode())
        """,
    )
    thread.join(timeout=20)
    assert received == [b"ping"] and out.strip() == "pong"


def test_a_path_both_hidden_and_bound_is_refused(sandbox, server):
    with pytest.raises(SandboxError, match="both hidden and bound"):
        sandbox.run(["true"], workdir=server["workdir"], env={}, ro_paths=[server["data"]])


def test_paths_are_resolved_before_masking(server, jobs_root):
    """A hidden path given through a symlink is masked all the same."""
    link = jobs_root / "data-link"
    os.symlink(server["data"], link)
    sandbox = Sandbox(hidden_paths=[link, server["jobs"]])
    out = attempt(sandbox, server, f"import os\nprint(os.listdir({str(server['data'])!r}))")
    assert out.strip() == "[]"
