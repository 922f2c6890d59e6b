"""Fixtures shared by every test: the permission cast, clients, a real Celery worker."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Playwright's sync API runs an event loop in the test thread; the ORM calls the
# tests make beside it are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Image builds and local services use a Docker engine only in the tests that ask for one
# (deployments/tests/test_images_docker.py sets DOCKER_ENABLED=1): with an engine running
# (CI starts one), every other build would make a container image, minutes each. Set
# before Django reads its settings, and inherited by the workers the tests start.
os.environ.setdefault("DOCKER_ENABLED", "0")
# Images' uv environments (and Docker wheelhouses) in the cache the runner's tests keep
# across runs (deployments/tests/runner_support.py), not in each test's DATA_DIR: only the
# first build on a machine downloads anything.
os.environ.setdefault(
    "IMAGE_ENV_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"mlstudio-test-envs-{os.getuid()}")
)

ROOT = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# The one way to run the suite without Chromium: the browser tests are skipped and the
# summary says so. Without it, a missing Chromium fails them (`make test` installs it).
SKIP_BROWSER_TESTS = os.environ.get("SKIP_BROWSER_TESTS", "").lower() in {"1", "true", "yes"}
BROWSER_SKIP_REASON = "SKIP_BROWSER_TESTS=1: browser test not run"


def require(condition: bool, reason: str) -> None:
    """Skip when a local machine lacks something; in CI a missing piece is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


# --- Running without the browser tests ------------------------------------------------------


def _drives_chromium(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return item.get_closest_marker("browser") is not None or "browser" in fixtures


def pytest_report_header(config: pytest.Config) -> str | None:
    if SKIP_BROWSER_TESTS:
        return "SKIP_BROWSER_TESTS=1: the browser tests are skipped"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SKIP_BROWSER_TESTS:
        return
    skip = pytest.mark.skip(reason=BROWSER_SKIP_REASON)
    for item in items:
        if _drives_chromium(item):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Say how many browser tests an opted-out run left out, next to the totals."""
    if not SKIP_BROWSER_TESTS:
        return
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if BROWSER_SKIP_REASON in str(report.longrepr)
    ]
    if skipped:
        terminalreporter.section("browser tests not run", yellow=True, bold=True)
        terminalreporter.line(
            f"{len(skipped)} browser tests were skipped because SKIP_BROWSER_TESTS=1 is set: "
            "this run did not drive Chromium. Unset it to run them.",
            yellow=True,
            bold=True,
        )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # The real hasher is slow by design; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _image_build_settings(settings) -> None:
    # Django read its settings before this file set DOCKER_ENABLED and IMAGE_ENV_CACHE_DIR
    # (see the top): the tests' own process follows the variables too.
    settings.DOCKER_ENABLED = os.environ["DOCKER_ENABLED"]
    settings.IMAGE_ENV_CACHE_DIR = os.environ["IMAGE_ENV_CACHE_DIR"]


@dataclass
class Cast:
    """One workspace tree and the people the access rules are tested with."""

    owner: object  # owner of the subscription
    contributor: object  # contributor on the resource group
    reader: object  # reader on the workspace
    outsider: object  # owner of a different subscription only
    subscription: object
    resource_group: object
    workspace: object
    other_workspace: object  # the outsider's own

    def user(self, name: str):
        return None if name == "anonymous" else getattr(self, name)


@pytest.fixture
def cast(db) -> Cast:
    return make_cast()


def make_cast() -> Cast:
    """The cast and its workspace tree, written to the database (the `cast` fixture's;
    tests/test_route_access.py builds it once per module)."""
    from portal import services
    from portal.tests.factories import UserFactory

    owner = UserFactory(username="olivia")
    contributor = UserFactory(username="carlos")
    reader = UserFactory(username="rita")
    outsider = UserFactory(username="oscar")
    sub = services.subscription_create(actor=owner, name="Contoso")
    rg = services.resource_group_create(
        actor=owner, subscription=sub, name="rg-main", location="westeurope"
    )
    ws = services.workspace_create(
        actor=owner, resource_group=rg, name="ws-main", description="Main"
    )
    services.membership_grant(actor=owner, scope=rg, user=contributor, role="contributor")
    services.membership_grant(actor=owner, scope=ws, user=reader, role="reader")
    other_sub = services.subscription_create(actor=outsider, name="Fabrikam")
    other_rg = services.resource_group_create(
        actor=outsider, subscription=other_sub, name="rg-other"
    )
    other_ws = services.workspace_create(actor=outsider, resource_group=other_rg, name="ws-other")
    return Cast(owner, contributor, reader, outsider, sub, rg, ws, other_ws)


def _database_url_for_tests() -> str:
    """The URL of the database the tests are using, for processes the tests start."""
    from django.db import connection

    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{cfg['NAME']}"
    host = cfg.get("HOST") or "127.0.0.1"
    port = cfg.get("PORT") or 5432
    auth = cfg.get("USER") or "postgres"
    if cfg.get("PASSWORD"):
        auth += f":{cfg['PASSWORD']}"
    return f"postgres://{auth}@{host}:{port}/{cfg['NAME']}"


def redis_available(url: str = "redis://127.0.0.1:6379/15") -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@dataclass
class WorkerProcess:
    env: dict[str, str]
    process: subprocess.Popen
    log: Path

    def run_manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a manage.py command against the same broker, backend and database."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def start_worker(tmp_path: Path, broker: str) -> WorkerProcess:
    """Start `celery worker` as its own process, on the tests' database.

    broker is "filesystem" (the embedded default) or "redis".
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_URL"))}
    env.update(DATA_DIR=str(tmp_path / "data"), DATABASE_URL=_database_url_for_tests(), DEBUG="1")
    # The web side's key (this process serves the live server): the secrets it encrypts
    # (service keys, kubeconfigs) are what workers and the service host decrypt.
    from django.conf import settings

    env["SECRET_KEY"] = settings.SECRET_KEY
    if broker == "redis":
        env["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"test-{broker}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return WorkerProcess(env, process, log)


@contextlib.contextmanager
def producer_on(broker_url: str, options: dict | None = None) -> Iterator[None]:
    """Send this process's Celery messages (job_enqueue's) to another broker meanwhile:
    the one a worker process started by a test consumes."""
    from portal.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = options or {}
    _drop_connections(app)
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        _drop_connections(app)


def _drop_connections(app) -> None:
    # Pooled connections keep the transport options they were opened with; kombu keys
    # its pools by those options, so forgetting ours makes the next send use the new ones.
    app._pool = None
    app.amqp._producer_pool = None


def stop_worker(worker: WorkerProcess) -> None:
    worker.process.terminate()
    try:
        worker.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()


@pytest.fixture
def memory_templates(settings) -> Callable[[dict[str, str]], list[str]]:
    """Serve extra templates from memory: `memory_templates({"name.html": "…"})`, for
    tests that register panels or tabs (portal.registry) with templates of their own."""

    def serve(templates: dict[str, str]) -> list[str]:
        engine = dict(settings.TEMPLATES[0])
        engine["APP_DIRS"] = False
        engine["OPTIONS"] = {
            **engine["OPTIONS"],
            "loaders": [
                ("django.template.loaders.locmem.Loader", templates),
                "django.template.loaders.filesystem.Loader",
                "django.template.loaders.app_directories.Loader",
            ],
        }
        settings.TEMPLATES = [engine]
        return list(templates)

    return serve


# --- Browser (headless Chromium through Playwright) ----------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole module."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS

    if SKIP_BROWSER_TESTS:  # a test that only uses the fixture indirectly
        pytest.skip(BROWSER_SKIP_REASON)
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: install it with `sudo make system-deps` "
            "(Debian), or set SKIP_BROWSER_TESTS=1 to skip the browser tests.",
            pytrace=False,
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Browser, live_server) -> Iterator[Callable[[], Page]]:
    """Open pages in fresh browser contexts (separate cookie jars, so separate users)."""
    from tests.browser import TIMEOUT_MS

    contexts = []

    def open_page() -> Page:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    return new_page()
