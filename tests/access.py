"""Every route the project serves, and rows saying what the permission cast gets there.

A route is a Django URL pattern, found by walking the root URLconf (admin, /api/v1, the
schema and docs, pages, the MLflow catch-all), or an MLflow protocol route: a
(method, path) registered with `tracking.mlflow.protocol.route`, served under every
workspace's tracking URI. A `Row` names one route and one method, says how to call it,
and what each member of the cast gets. tests/test_route_access.py fails for a route no
row names, and runs every row as every member of the cast.

Rows are found by the route's key (`Served.key`): its URL name ("workspace-edit",
"admin:index"), the whole pattern for an unnamed one, "mlflow <METHOD> <path>" for a
protocol route, once per prefix it is served under (`api/...`, `ajax-api/...`). Views
are never imported: they move between modules, their names stay.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.views.generic import RedirectView

from conftest import Cast, make_cast

CAST = ("owner", "contributor", "reader", "outsider", "anonymous")

# Outcomes besides a status code: the redirect to a login page.
LOGIN = "login"  # the site's: anonymous on a page
ADMIN_LOGIN = "admin login"  # the admin's: anyone who is not staff
DENIED: frozenset[int | str] = frozenset({401, 403, 404, LOGIN, ADMIN_LOGIN})
# Allowed, and answered "not here": MLflow's direct-to-storage transfers, which the client
# meets with a fallback to the proxied artifact calls.
NOT_IMPLEMENTED = 501

Outcome = int | str
Expect = Mapping[str, Outcome]


def by_role(owner: Outcome, contributor: Outcome, reader: Outcome, outsider, anonymous) -> Expect:
    return dict(
        owner=owner, contributor=contributor, reader=reader, outsider=outsider, anonymous=anonymous
    )


def everyone(outcome: Outcome) -> Expect:
    return dict.fromkeys(CAST, outcome)


def _no_kwargs(scene: Scene) -> dict:
    return {}


@dataclass(frozen=True)
class Row:
    """One call of one route, and what each member of the cast gets from it.

    kind "page": the browser's session, a form body; kind "api": a Bearer token, a JSON
    body (bytes are sent as they are). `kwargs` fill the URL name's arguments (they may
    create what they name: they run before each call); `url` replaces reverse() for
    routes without a name and for the MLflow protocol. `writes`: whether the call, where
    allowed, must change something (default: every method but GET); a call that is
    denied, or that is not a write, must change nothing.
    """

    label: str
    route: str
    method: str
    expect: Expect
    kind: str = "page"
    kwargs: Callable[[Scene], dict] = _no_kwargs
    url: Callable[[Scene], str] | None = None
    query: str | Callable[[Scene], str] = ""
    body: Any = None
    writes: bool | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def must_write(self) -> bool:
        return self.method != "get" if self.writes is None else self.writes


# --- The routes served ---------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    key: str  # what a row names
    pattern: str  # where it is, for messages
    methods: frozenset[str] = frozenset()  # the methods its class-based view answers


def _view_methods(callback: Callable) -> frozenset[str]:
    """The handler methods of a class-based view (Django's or DRF's); none known for a
    function view, nor for a RedirectView: it answers every method with the redirect its
    one row shows."""
    cls = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if cls is None or issubclass(cls, RedirectView):
        return frozenset()
    return frozenset(
        m for m in cls.http_method_names if m not in ("head", "options") and hasattr(cls, m)
    )


def _walk(patterns: list, prefix: str, namespace: str) -> Iterator[tuple[str, str, Callable]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else ""
            yield name, prefix + str(entry.pattern), entry.callback


def django_routes(urlconf: Any = None) -> list[Served]:
    """Every pattern of the URLconf (the root one by default), includes followed. A name
    two patterns share cannot tell them apart, so each is known by its pattern then."""
    found = list(_walk(get_resolver(urlconf).url_patterns, "", ""))
    names = Counter(name for name, _, _ in found if name)
    return [
        Served(name if name and names[name] == 1 else pattern, pattern, _view_methods(callback))
        for name, pattern, callback in found
    ]


def protocol_key(method: str, path: str) -> str:
    """A protocol route's key, by the path below the tracking URI, prefix included:
    "mlflow POST api/2.0/mlflow/runs/create". A route served under two prefixes
    (api/ and ajax-api/) has two keys, and needs a row for each."""
    return f"mlflow {method.upper()} {path}"


def protocol_routes() -> list[Served]:
    """Every (method, path) of the MLflow protocol, as registered, once per prefix."""
    import tracking.mlflow.urls  # noqa: F401  (importing it registers every route)
    from tracking.mlflow.protocol import routes

    keys = {(r.method, path) for r in routes() for path in r.paths}
    return [
        Served(protocol_key(method, path), f"<tracking URI>/{path}", frozenset())
        for method, path in sorted(keys)
    ]


def served_routes(urlconf: Any = None) -> list[Served]:
    return [*django_routes(urlconf), *protocol_routes()]


def coverage_problems(served: list[Served], rows: list[Row]) -> list[str]:
    """What the rows miss: a route without a row, a method a class-based view answers
    without a row; and rows naming a route nobody serves (renamed, removed)."""
    methods: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        methods[row.route].add(row.method)
    problems = []
    for route in served:
        tried = methods.get(route.key)
        if not tried:
            problems.append(f"{route.key}: no row for {route.pattern}")
            continue
        problems += [
            f"{route.key}: no row for {m.upper()}, which its view answers"
            for m in sorted(route.methods - tried)
        ]
    keys = {route.key for route in served}
    problems += [
        f"{key}: rows name a route that is not served" for key in methods if key not in keys
    ]
    return problems


def row_problems(rows: list[Row]) -> list[str]:
    """Rows that cannot be run as they are: a cast member left out, a label used twice,
    an allowed outcome that is a server error."""
    problems = [
        f"{label}: label used twice" for label, n in Counter(r.label for r in rows).items() if n > 1
    ]
    for row in rows:
        if set(row.expect) != set(CAST):
            problems.append(f"{row.label}: expect names {sorted(row.expect)}, not the cast")
        for who, outcome in row.expect.items():
            if isinstance(outcome, int) and outcome >= 500 and outcome != NOT_IMPLEMENTED:
                problems.append(f"{row.label}: {who} is expected to get a server error")
    return problems


# --- What the rows are tried on --------------------------------------------------------------


@dataclass
class Scene:
    """The cast's workspace with something in it for every route to name: an experiment
    with a running run (params, tags, a metric history, an artifact), a deleted
    experiment and run to restore, a registered model with a tagged and aliased version,
    a logged model. Each member has a browser session and a token.

    Attributes the scene lacks are the cast's, so rows written for the cast work here."""

    cast: Cast
    experiment: Any
    deleted_experiment: Any
    run: Any
    deleted_run: Any
    model: Any
    logged_model: Any
    evaluation_dataset: Any = None
    artifact_root: str = ""  # settings.ARTIFACT_ROOT when built: a folder of the scene's own
    sessions: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    _clients: dict[tuple[str, str], Client] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name == "cast":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.cast, name)

    @property
    def tracking_path(self) -> str:
        """The workspace's tracking URI, without the host."""
        rg = self.cast.resource_group
        return (
            f"/mlflow/v1.0/subscriptions/{rg.subscription_id}/resourceGroups/{rg.name}"
            f"/workspaces/{self.cast.workspace.name}"
        )

    @property
    def run_artifacts(self) -> str:
        """The run's artifact folder, below the workspace's artifact root."""
        from tracking.artifacts import artifact_uri_path

        return artifact_uri_path(self.run.artifact_uri)

    def reset_files(self) -> None:
        """The artifact store as the scene left it: the database rolls back after each
        call, the store does not (and the fewer files, the faster a snapshot)."""
        from tracking.artifacts import artifact_uri_path, join, store_for

        shutil.rmtree(self.artifact_root, ignore_errors=True)
        store = store_for(self.cast.workspace)
        store.write(join(self.run_artifacts, "hello.txt"), [b"hello"])
        model_files = artifact_uri_path(self.logged_model.artifact_location)
        store.write(join(model_files, "MLmodel"), [b"flavors: {}\n"])

    def client(self, who: str, kind: str) -> Client:
        """A client with the member's token (api) or session (page) and no other cookie.
        Clients are kept: a new one loads the middleware again (WhiteNoise walks every
        static file), which would be most of the time of a call."""
        from portal.tests.api import bearer

        key = (who, kind if who != "anonymous" else "")
        if key not in self._clients:
            self._clients[key] = bearer(self.tokens[who]) if key[1] == "api" else Client()
        client = self._clients[key]
        client.cookies = SimpleCookie()
        if key[1] == "page":
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[who]
        return client


def build_scene() -> Scene:
    """Call it with ARTIFACT_ROOT set to a folder of its own: resetting the scene empties it."""
    from portal import services
    from tracking.services import registry
    from tracking.services.evaluation_datasets import (
        evaluation_dataset_create,
        evaluation_dataset_records_upsert,
    )
    from tracking.services.experiments import experiment_delete, experiment_set_tag
    from tracking.services.logged_models import logged_model_create
    from tracking.services.runs import run_delete
    from tracking.tests.factories import make_experiment, make_run

    cast = make_cast()
    ws = cast.workspace
    experiment = make_experiment(ws, "access-exp")
    experiment_set_tag(experiment=experiment, key="team", value="a")
    run = make_run(
        experiment,
        "access-run",
        params={"lr": 0.1},
        metrics={"loss": [3, 2, 1]},
        tags={"team": "a"},
        status="RUNNING",
    )
    deleted_run = make_run(experiment, "access-deleted-run")
    run_delete(run=deleted_run, actor=None)
    deleted_experiment = make_experiment(ws, "access-deleted-exp")
    experiment_delete(experiment=deleted_experiment, actor=None)
    tag = [{"key": "k", "value": "v"}]
    model = registry.registered_model_create(
        workspace=ws, name="access-model", tags=tag, actor=None
    )
    registry.model_version_create(
        workspace=ws,
        name=model.name,
        source=f"runs:/{run.run_uuid}/model",
        run_id=run.run_uuid,
        tags=tag,
    )
    registry.registered_model_alias_set(
        workspace=ws, name=model.name, alias="champion", version="1"
    )
    logged_model = logged_model_create(
        workspace=ws,
        experiment_id=str(experiment.pk),
        name="access-logged-model",
        source_run_id=run.run_uuid,
        tags=tag,
    )
    evaluation_dataset = evaluation_dataset_create(
        workspace=ws, name="access-dataset", experiments=[experiment], tags={"k": "v"}, actor=None
    )
    evaluation_dataset_records_upsert(
        workspace=ws,
        dataset_id=evaluation_dataset.dataset_id,
        records=[{"inputs": {"q": "a"}}],
        actor=None,
    )
    scene = Scene(cast, experiment, deleted_experiment, run, deleted_run, model, logged_model)
    scene.evaluation_dataset = evaluation_dataset
    scene.artifact_root = settings.ARTIFACT_ROOT
    for who in CAST[:-1]:
        user = cast.user(who)
        browser = Client()
        browser.force_login(user)
        scene.sessions[who] = browser.cookies[settings.SESSION_COOKIE_NAME].value
        _, scene.tokens[who] = services.token_create(user=user, name="route access")
    scene.reset_files()
    return scene


# --- Calling a row, and seeing whether anything changed -----------------------------------


def _value(value: Any, scene: Scene) -> Any:
    return value(scene) if callable(value) else value


def target(scene: Scene, row: Row) -> str:
    """The row's URL (running its kwargs, which may create what they name)."""
    url = row.url(scene) if row.url else reverse(row.route, kwargs=row.kwargs(scene))
    query = _value(row.query, scene)
    return f"{url}?{query}" if query else url


def send(client: Client, row: Row, url: str, scene: Scene, method: str | None = None):
    method = method or row.method
    body = _value(row.body, scene)
    headers = row.headers
    if isinstance(body, bytes):
        response = client.generic(
            method.upper(), url, body, "application/octet-stream", headers=headers
        )
    elif method == "get":
        response = client.get(url, headers=headers)
    elif row.kind == "api":
        data = "" if body is None else json.dumps(body)
        response = client.generic(method.upper(), url, data, "application/json", headers=headers)
    elif method == "post":
        response = client.post(url, body or {}, headers=headers)
    else:
        data = urlencode(body or {}, doseq=True)
        response = client.generic(method.upper(), url, data, headers=headers)
    # The body, read (a streamed view's work ends when its stream does).
    response.body = b"".join(response.streaming_content) if response.streaming else response.content
    return response


# What a call may change without having done anything: the session a page touches, the
# time a token was last used.
_IGNORED_TABLES = {"django_session"}
_IGNORED_COLUMNS = {("portal_apitoken", "last_used_at")}


@cache
def _table_queries() -> tuple[tuple[str, str], ...]:
    """(table, SELECT of all its rows, in order) for every table of every model. Plain
    SQL: the ORM's query building would cost more than the queries."""
    quote = connection.ops.quote_name
    queries = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed or meta.db_table in _IGNORED_TABLES:
            continue
        table = meta.db_table
        columns = [
            f.column for f in meta.concrete_fields if (table, f.column) not in _IGNORED_COLUMNS
        ]
        select = ", ".join(quote(c) for c in columns)  # ordered by all: some keys are composite
        sql = f"SELECT {select} FROM {quote(table)} ORDER BY {select}"  # noqa: S608 - model names
        queries.append((table, sql))
    return tuple(queries)


def snapshot() -> dict[str, Any]:
    """Every row of every table and every file of the artifact store, to compare."""
    state: dict[str, Any] = {}
    connection.ensure_connection()
    cursor = connection.connection.cursor()  # the driver's own: Django's wrapper costs more
    try:
        for table, query in _table_queries():
            cursor.execute(query)
            state[table] = cursor.fetchall()
    finally:
        cursor.close()
    files = []
    for folder, dirs, names in os.walk(settings.ARTIFACT_ROOT):
        files += [(os.path.join(folder, d), "dir") for d in dirs]
        for name in names:
            stat = os.stat(os.path.join(folder, name))
            files.append((os.path.join(folder, name), stat.st_size, stat.st_mtime_ns))
    state["artifact files"] = sorted(files)
    return state


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The tables (and "artifact files") whose content differs."""
    return [name for name in before if before[name] != after.get(name)]
