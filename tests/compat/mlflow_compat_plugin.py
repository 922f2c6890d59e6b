"""pytest plugin: run mlflow's live-server tests, unmodified, against ML Studio workspaces.

Loaded with `-p mlflow_compat_plugin` by run.py (tests/compat on PYTHONPATH, the mlflow
checkout as rootdir). What it changes, and nothing else:

* Server start. Where their tests start a tracking server, they get a fresh workspace of
  a studio started once for the session, reached through a loopback forwarder
  (compat_proxy) that adds the workspace prefix and a bearer token. The helpers swapped:
  `tests.tracking.integration_test_utils.ServerThread` and `_init_server` (both styles:
  the context manager and the older `url, process` tuple with `_terminate_server`),
  `mlflow.server.handlers.initialize_backend_stores` (a no-op: no local store is
  served), and a module-level `_launch_server(host, port, ...)` in a test module (the
  artifacts tests' `mlflow server` subprocess), which becomes a forwarder on that port.
  With COMPAT_TARGET=native nothing is swapped: their own fixtures start mlflow's server.
* Fixtures their root conftest would give (used only when no conftest provides them):
  `db_uri`, a fresh SQLite URI per test.
* Names the test files import that this mlflow version moved (listed in SHIMS).
* Deselection (DESELECT_RULE): GenAI families and the `file` store parametrization.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import types
from pathlib import Path

import pytest

TARGET = os.environ.get("COMPAT_TARGET", "studio")
RESULTS = os.environ.get("COMPAT_RESULTS", "")

# Out of scope: GenAI families (traces, spans, assessments, scorers, gateway, secrets,
# prompts/promptlab, evaluation datasets, webhooks, jobs, OTLP). A test is deselected when
# its name matches this pattern or it takes the gateway fixture `mlflow_client_with_secrets`.
DESELECT_RULE = re.compile(
    r"trace|span|assessment|scorer|gateway|secret|endpoint|provider|model_definition"
    r"|prompt|webhook|_job|otel|evaluation_dataset|dataset_to_experiments"
    r"|dataset_from_experiments|_rest_tracking$|dataset_experiment_association",
    re.IGNORECASE,
)
GENAI_FIXTURES = {"mlflow_client_with_secrets"}
# Tests that start no server through a helper, so there is nothing to point at a workspace:
# they would test mlflow itself whatever the target.
NOT_A_SERVER_TEST = {
    "test_create_model_version_with_validation_regex": "starts `mlflow server` itself",
    "test_get_metric_history_bulk_calls_optimized_impl_when_expected": (
        "calls mlflow's handler in-process"
    ),
    "test_mlflow_artifacts_example": "runs mlflow's docker compose example",
}


def _mlflow_time_utils() -> None:
    import mlflow.utils.time as time_module

    sys.modules.setdefault("mlflow.utils.time_utils", time_module)


def _provider_backend_flag() -> None:
    import mlflow.utils.providers as providers

    if not hasattr(providers, "_PROVIDER_BACKEND_AVAILABLE"):
        providers._PROVIDER_BACKEND_AVAILABLE = False  # only gates deselected gateway tests


# (what, why): applied before collection so that older or newer test files import.
SHIMS = [
    (_mlflow_time_utils, "mlflow.utils.time_utils was renamed mlflow.utils.time"),
    (_provider_backend_flag, "mlflow.utils.providers._PROVIDER_BACKEND_AVAILABLE was removed"),
]


class _Session:
    studio = None
    proxies: list = []


class _ExternalServer:
    """What `_init_server(...)` and `ServerThread(app, port)` return, swapped: a fresh
    workspace behind a forwarder. Usable as a context manager (yields the URL) and as the
    older `url, process = _init_server(...)` tuple."""

    def __init__(self, port: int | None = None) -> None:
        from compat_proxy import WorkspaceProxy

        uri = _Session.studio.new_workspace()
        self.proxy = WorkspaceProxy(uri, _Session.studio.token, port=port).start()
        _Session.proxies.append(self.proxy)
        self.url = self.proxy.url

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.proxy.stop()

    def __iter__(self):
        return iter((self.url, self.proxy))

    # ServerThread's own surface
    def start(self) -> None:
        return None

    def shutdown(self) -> None:
        self.proxy.stop()

    def join(self, timeout: float | None = None) -> None:
        return None


def _init_server(*args: object, **kwargs: object) -> _ExternalServer:
    return _ExternalServer()


def _server_thread(app: object = None, port: int | None = None) -> _ExternalServer:
    return _ExternalServer()


def _terminate_server(process: object, *args: object, **kwargs: object) -> None:
    stop = getattr(process, "stop", None)
    if stop:
        stop()


def _launch_server(host: str, port: int, *args: object, **kwargs: object):
    return _ExternalServer(port=int(port)).proxy


class _BothStyles:
    """Their own `_init_server` (a context manager) usable the older way too:
    `url, process = _init_server(...)` then `_terminate_server(process)`. For a test file
    older than its helper module, in the native run."""

    def __init__(self, manager: object) -> None:
        self.manager = manager

    def __enter__(self) -> str:
        return self.manager.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.manager.__exit__(*exc)

    def __iter__(self):
        return iter((self.manager.__enter__(), self))

    def stop(self) -> None:
        self.manager.__exit__(None, None, None)


def _native_version_skew() -> None:
    utils = __import__("tests.tracking.integration_test_utils", fromlist=["_"])
    if hasattr(utils, "_terminate_server"):
        return
    original = utils._init_server
    utils._init_server = lambda *a, **k: _BothStyles(original(*a, **k))
    utils._terminate_server = _terminate_server


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlflow-compat")
    group.addoption("--compat-keep-file-store", action="store_true", default=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_infer_pip_requirements_fallback")
    config.addinivalue_line("markers", "notrackingurimock")
    config.addinivalue_line("markers", "asyncio")
    for shim, _why in SHIMS:
        shim()
    if TARGET != "studio":
        _native_version_skew()
        return
    from compat_studio import Studio

    out = Path(os.environ.get("COMPAT_OUT", "var/compat")).resolve()
    _Session.studio = Studio(out, os.environ.get("COMPAT_DATABASE_URL") or None).start()
    import mlflow.server.handlers as handlers

    handlers.initialize_backend_stores = lambda *a, **k: None
    utils = __import__("tests.tracking.integration_test_utils", fromlist=["_"])
    utils._init_server = _init_server
    utils.ServerThread = _server_thread
    utils._terminate_server = _terminate_server


def pytest_unconfigure(config: pytest.Config) -> None:
    for proxy in _Session.proxies:
        with contextlib.suppress(Exception):  # already stopped
            proxy.stop()
    if _Session.studio is not None:
        _Session.studio.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector):
    outcome = yield
    if TARGET != "studio":
        return
    module = outcome.get_result()
    if module is None:
        return
    # After the module object exists but before its fixtures run, swap a module-level
    # `_launch_server` (their artifacts tests start `mlflow server` with it).
    original_getobj = module._getobj

    def getobj() -> types.ModuleType:
        obj = original_getobj()
        if hasattr(obj, "_launch_server"):
            obj._launch_server = _launch_server
        if hasattr(obj, "initialize_backend_stores"):
            obj.initialize_backend_stores = lambda *a, **k: None
        swaps = {
            "ServerThread": _server_thread,
            "_init_server": _init_server,
            "_terminate_server": _terminate_server,
        }
        for name, swap in swaps.items():
            if hasattr(obj, name):
                setattr(obj, name, swap)
        return obj

    module._getobj = getobj


@pytest.fixture(autouse=True)
def _forget_mlflow_state():
    """What their root conftest's autouse fixtures do between tests: no run, experiment or
    tracking URI of an earlier test (whose server is gone) leaks into the next."""
    yield
    import mlflow
    import mlflow.tracking.fluent as fluent

    while mlflow.active_run():
        mlflow.end_run()
    fluent._active_experiment_id = None
    mlflow.set_tracking_uri(None)


@pytest.fixture
def db_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'compat-fallback.db'}"


def _deselect_reason(item: pytest.Item, keep_file: bool) -> str | None:
    name = item.originalname if hasattr(item, "originalname") else item.name
    if DESELECT_RULE.search(name or ""):
        return "genai"
    if GENAI_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "genai"
    if name in NOT_A_SERVER_TEST:
        return "not-a-server-test"
    params = getattr(getattr(item, "callspec", None), "params", {})
    if not keep_file and any(
        key in {"store_type", "mlflow_client", "client"} and value == "file"
        for key, value in params.items()
    ):
        return "file-store"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep_file = config.getoption("--compat-keep-file-store")
    selected, deselected = [], []
    for item in items:
        (deselected if _deselect_reason(item, keep_file) else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
    if RESULTS:
        with open(RESULTS + ".deselected", "w") as fh:
            for item in deselected:
                fh.write(f"{item.nodeid}\t{_deselect_reason(item, keep_file)}\n")


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = crash.message
    elif isinstance(report.longrepr, tuple):
        text = report.longrepr[2]
    else:
        text = str(report.longrepr or "")
    return " ".join(text.strip().splitlines()[:1])[:400]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not RESULTS:
        return
    outcome = None
    if report.when == "call":
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
    elif report.when == "setup" and report.outcome != "passed":
        outcome = "skipped" if report.skipped else "error"
    elif report.when == "teardown" and report.outcome == "failed":
        outcome = "error"
    if outcome is None:
        return
    detail = _first_line(report) if outcome != "passed" else ""
    full = report.longreprtext[-6000:] if outcome in {"failed", "error"} else ""
    with open(RESULTS, "a") as fh:
        fh.write(
            json.dumps(
                {
                    "nodeid": report.nodeid,
                    "when": report.when,
                    "outcome": outcome,
                    "error": detail,
                    "longrepr": full,
                }
            )
            + "\n"
        )
