"""Every route the project serves has a row in a permission-cast table, and every row
holds for every member of the cast.

The tables (tests/access.py says how a row reads):
- portal pages: PAGES of portal/tests/test_permissions.py
- /api/v1, tenancy: API of portal/tests/test_api.py
- /api/v1, tracking: ENDPOINTS of tracking/tests/test_api_v1.py
- tracking pages and the MLflow protocol: PAGES and MLFLOW of tracking/tests/access.py
- /api/v1, remote runs: API of deployments/tests/access.py
- deployments pages: PAGES of deployments/tests/page_access.py
- the rest, here: sign-in, the API's schema and docs, the MLflow entry points, the admin.

A route without a row fails `test_every_route_has_a_row`, whatever URLconf or protocol
module adds it. Each row is then tried as each member (`test_route_access`): the status
(or login redirect) must be the row's; a denied call (401, 403, 404, a login redirect)
must change nothing in the database or the artifact store, and so must a read; an
allowed write must change something (so the same call, denied, is known to be a write).

The workspace and what the rows name are built once per module; each call runs in its
own transaction, rolled back after it, so every member meets the same state.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from django.test import override_settings
from django.urls import include, path, reverse

from deployments.tests import access as deployments_access
from deployments.tests import page_access as deployments_pages
from portal.tests.factories import PASSWORD
from portal.tests.test_api import API
from portal.tests.test_permissions import PAGES, ws_kw
from tests.access import (
    ADMIN_LOGIN,
    CAST,
    DENIED,
    LOGIN,
    Row,
    Scene,
    build_scene,
    by_role,
    changes,
    coverage_problems,
    everyone,
    protocol_key,
    row_problems,
    send,
    served_routes,
    snapshot,
    target,
)
from tracking.tests import access as tracking_access
from tracking.tests.test_api_v1 import ENDPOINTS

# --- The existing tables, read as rows ------------------------------------------------------


def _portal_pages() -> list[Row]:
    # Their 302 for anonymous is the login redirect.
    return [
        Row(
            f"page: {label}",
            name,
            method,
            {w: LOGIN if w == "anonymous" and s == 302 else s for w, s in expected.items()},
            kwargs=kwargs,
            body=data,
        )
        for label, method, name, kwargs, data, expected in PAGES
    ]


def _portal_api() -> list[Row]:
    return [
        Row(
            f"api: {label}",
            name,
            method,
            expected,
            kind="api",
            kwargs=kwargs,
            query=query or "",
            body=body,
        )
        for label, method, name, kwargs, body, query, expected in API
    ]


def _tracking_api() -> list[Row]:
    def rows():
        for label, method, name, setup, query, body, expected in ENDPOINTS:

            def kwargs(s, setup=setup):
                return {**ws_kw(s), **setup(s)}

            yield Row(
                f"tracking api: {label}",
                name,
                method,
                expected,
                kind="api",
                kwargs=kwargs,
                query=urlencode(query or {}, doseq=True),
                body=body,
            )

    return list(rows())


# --- Sign-in, the API's schema and docs, the MLflow entry points --------------------------

SIGNED_IN = by_role(302, 302, 302, 302, 200)  # the sign-in page sends the signed-in home


def _mlflow_home(s: Scene) -> str:
    return s.tracking_path + "/"


SITE: list[Row] = [
    Row("sign-in page", "login", "get", SIGNED_IN, writes=False),
    Row(
        "sign-in, wrong password",
        "login",
        "post",
        SIGNED_IN,
        body={"username": "olivia", "password": "wrong"},
        writes=False,
    ),
    Row(  # a form view takes PUT as POST; Django reads no form from it
        "sign-in, put",
        "login",
        "put",
        SIGNED_IN,
        body={"username": "olivia", "password": PASSWORD},
        writes=False,
    ),
    Row("sign out", "logout", "post", everyone(302), writes=False),  # a session is no data
    Row(
        "api: sign in for a token",
        "api-login",
        "post",
        everyone(201),
        kind="api",
        body={"username": "olivia", "password": PASSWORD},
    ),
    Row(
        "api: sign in, wrong password",
        "api-login",
        "post",
        everyone(401),
        kind="api",
        body={"username": "olivia", "password": "wrong"},
    ),
    Row(
        "api: no such endpoint",
        "api-not-found",
        "get",
        everyone(404),
        kind="api",
        url=lambda s: "/api/v1/no-such-endpoint",
    ),
    # The API's description and its readers are public: they hold no data.
    Row("api schema", "api-schema", "get", everyone(200)),
    Row("api docs (Swagger UI)", "api-docs", "get", everyone(200)),
    Row("api docs (Redoc)", "api-redoc", "get", everyone(200)),
    # The tracking URI itself, opened in a browser: a redirect to the workspace page,
    # which applies the rules; it names nothing the URL does not.
    Row("mlflow: tracking URI", "mlflow-home", "get", everyone(302), url=_mlflow_home),
    # Unknown protocol paths are refused before anyone is looked up: one answer for all.
    Row(
        "mlflow: no such endpoint",
        "mlflow",
        "get",
        everyone(404),
        kind="api",
        url=lambda s: f"{s.tracking_path}/api/2.0/mlflow/no-such-endpoint",
    ),
]


# --- The admin: staff only, and nobody in the cast is staff -------------------------------


def _first_pk(model) -> str:
    first = model._base_manager.order_by("pk").first()
    return str(first.pk) if first else "1"


def _admin_site_rows() -> list[Row]:
    def row(label: str, name: str, method: str = "get", expect=None, **extra) -> Row:
        return Row(
            f"admin: {label}", f"admin:{name}", method, expect or everyone(ADMIN_LOGIN), **extra
        )

    workspace_type = ContentType.objects.get_for_model  # called per row: ids differ by database
    return [
        row("index", "index"),
        row("sign-in page", "login", expect=everyone(200), writes=False),
        row("sign out", "logout", "post", everyone(302), writes=False),
        row("password change", "password_change"),
        row("password change, sent", "password_change", "post", body={"old_password": "x"}),
        row("password changed", "password_change_done"),
        row("autocomplete", "autocomplete"),
        row("translations", "jsi18n"),
        row(
            "view on site",
            "view_on_site",
            kwargs=lambda s: {
                "content_type_id": workspace_type(type(s.workspace)).pk,
                "object_id": s.workspace.pk,
            },
        ),
        row("an app's models", "app_list", kwargs=lambda s: {"app_label": "portal"}),
        row(
            "a user's password",
            "auth_user_password_change",
            kwargs=lambda s: {"id": s.owner.pk},
        ),
        row(
            "a user's password, sent",
            "auth_user_password_change",
            "post",
            kwargs=lambda s: {"id": s.owner.pk},
            body={"password1": "x", "password2": "x"},
        ),
        Row(
            "admin: no such page",
            "admin/(?P<url>.*)$",
            "get",
            everyone(ADMIN_LOGIN),
            url=lambda s: "/admin/no-such-page/",
        ),
    ]


def _admin_model_rows() -> list[Row]:
    """The views every ModelAdmin has, for each registered model; extra views a ModelAdmin
    adds have no row here, so the coverage test asks for one."""
    from django.apps import apps

    rows = []
    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        meta = model._meta
        prefix = f"{meta.app_label}_{meta.model_name}"
        label = f"admin: {meta.label}"

        def obj(s, model=model) -> dict:
            return {"object_id": _first_pk(model)}

        refused = everyone(ADMIN_LOGIN)
        rows += [
            Row(f"{label} list", f"admin:{prefix}_changelist", "get", refused),
            Row(f"{label} add form", f"admin:{prefix}_add", "get", refused),
            Row(f"{label} add", f"admin:{prefix}_add", "post", refused),
            Row(f"{label} change form", f"admin:{prefix}_change", "get", refused, kwargs=obj),
            Row(f"{label} change", f"admin:{prefix}_change", "post", refused, kwargs=obj),
            Row(f"{label} delete form", f"admin:{prefix}_delete", "get", refused, kwargs=obj),
            Row(f"{label} delete", f"admin:{prefix}_delete", "post", refused, kwargs=obj),
            Row(f"{label} history", f"admin:{prefix}_history", "get", refused, kwargs=obj),
            # The object's bare URL redirects to its change form, which then refuses.
            Row(
                f"{label} object",
                f"admin/{meta.app_label}/{meta.model_name}/<path:object_id>/",
                "get",
                everyone(302),
                url=lambda s, model=model, meta=meta: (
                    f"/admin/{meta.app_label}/{meta.model_name}/{_first_pk(model)}/"
                ),
            ),
        ]
    return rows


ROWS: list[Row] = [
    *_portal_pages(),
    *_portal_api(),
    *_tracking_api(),
    *(replace(r, label=f"tracking page: {r.label}") for r in tracking_access.PAGES),
    *(replace(r, label=f"deployments page: {r.label}") for r in deployments_pages.PAGES),
    *tracking_access.MLFLOW,
    *deployments_access.API,
    *deployments_access.WORKER,
    *SITE,
    *_admin_site_rows(),
    *_admin_model_rows(),
]


# --- Coverage -------------------------------------------------------------------------------


def test_every_route_has_a_row():
    problems = coverage_problems(served_routes(), ROWS) + row_problems(ROWS)
    assert not problems, "\n".join(problems)


def test_every_mlflow_write_route_is_tried_by_reader_and_outsider():
    """A protocol route marked `write` needs the contributor role; its row must say the
    reader is refused (403) and the outsider finds nothing (404)."""
    from tracking.mlflow.protocol import routes

    rows = {r.route: r for r in tracking_access.MLFLOW}
    for route in routes():
        for served in route.paths:  # under each prefix
            row = rows[protocol_key(route.method, served)]
            if route.write:
                assert (row.expect["reader"], row.expect["outsider"]) == (403, 404), row.label
            else:
                assert row.expect["reader"] not in DENIED, row.label


# The problems the project's own routes have (none, when test_every_route_has_a_row
# passes), so that these tests see only what they add.
_KNOWN = coverage_problems(served_routes(), ROWS)


def _new_problems(rows: list[Row] = ROWS) -> list[str]:
    return [p for p in coverage_problems(served_routes(), rows) if p not in _KNOWN]


def _extra_view(request, n: int) -> HttpResponse:
    return HttpResponse("extra")


def test_a_new_url_without_a_row_is_reported(settings):
    """The checker reads the URLconf Django serves: a route added to it is reported."""
    urlconf = types.ModuleType("urls_with_an_extra_route")
    urlconf.urlpatterns = [
        path("extra/<int:n>/", _extra_view, name="extra-route"),
        path("", include(settings.ROOT_URLCONF)),
    ]
    settings.ROOT_URLCONF = urlconf
    assert _new_problems() == ["extra-route: no row for extra/<int:n>/"]


def test_a_new_protocol_route_without_a_row_is_reported(monkeypatch):
    """... and so is a route registered with the protocol's @route, write or read, under
    each prefix it is served under."""
    from tracking.mlflow import protocol

    served_routes()  # every module that registers routes is imported
    monkeypatch.setattr(protocol, "_STATIC", dict(protocol._STATIC))
    monkeypatch.setattr(protocol, "_DYNAMIC", list(protocol._DYNAMIC))
    protocol.route("POST", "2.0/mlflow/runs/extra", write=True)(lambda call: {})
    protocol.route("GET", "2.0/mlflow/extra/<thing>")(lambda call: {})
    protocol.route("GET", "extra", prefixes=protocol.ROOT)(lambda call: {})
    problems = _new_problems()
    assert problems == [
        "mlflow GET ajax-api/2.0/mlflow/extra/<thing>: no row for "
        "<tracking URI>/ajax-api/2.0/mlflow/extra/<thing>",
        "mlflow GET api/2.0/mlflow/extra/<thing>: no row for "
        "<tracking URI>/api/2.0/mlflow/extra/<thing>",
        "mlflow GET extra: no row for <tracking URI>/extra",
        "mlflow POST ajax-api/2.0/mlflow/runs/extra: no row for "
        "<tracking URI>/ajax-api/2.0/mlflow/runs/extra",
        "mlflow POST api/2.0/mlflow/runs/extra: no row for "
        "<tracking URI>/api/2.0/mlflow/runs/extra",
    ]


def test_a_method_and_a_stale_row_are_reported():
    """A method a class-based view answers needs its own row; a row naming a route that
    is gone is reported too."""
    rows = [r for r in ROWS if (r.route, r.method) != ("api-workspace", "delete")]
    rows.append(Row("renamed away", "no-such-route", "get", everyone(404)))
    assert _new_problems(rows) == [
        "api-workspace: no row for DELETE, which its view answers",
        "no-such-route: rows name a route that is not served",
    ]


# --- Every row, every member of the cast ---------------------------------------------------


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Scene]:
    """Built once, in a transaction that each call nests its own in and rolls back to."""
    overrides = override_settings(
        ARTIFACT_ROOT=str(tmp_path_factory.mktemp("route-access") / "artifacts"),
        ACCESS_CACHE_SECONDS=0,  # roles are read afresh on every call
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    with overrides, django_db_blocker.unblock(), transaction.atomic():
        yield build_scene()
        transaction.set_rollback(True)


def _outcome_problems(response, expected, who: str, row: Row) -> list[str]:
    got = f"got {response.status_code} {response.body[:300]!r}"
    if expected in (LOGIN, ADMIN_LOGIN):
        login = reverse("login" if expected == LOGIN else "admin:login")
        if response.status_code != 302 or not response["Location"].startswith(login):
            return [f"{who}: expected the redirect to {login}, {got}"]
        return []
    if response.status_code != expected:
        return [f"{who}: expected {expected}, {got}"]
    if row.kind == "api" and response.status_code >= 400:
        body = json.loads(response.body)
        if set(body) != {"error_code", "message"} or not body["message"]:
            return [f"{who}: not the API's error shape: {body}"]
        # Where credentials decide, a call without them is told to bring a token.
        if response.status_code == 401 and who == "anonymous" and row.expect["owner"] != 401:
            if body["error_code"] != "UNAUTHENTICATED":
                return [f"{who}: error code {body['error_code']}, not UNAUTHENTICATED"]
            if not response.get("WWW-Authenticate", "").startswith("Bearer"):
                return [f"{who}: a 401 without a Bearer challenge"]
    return []


def attempt(scene: Scene, row: Row, who: str, method: str | None = None):
    """Call the row's route as `who`, in a transaction rolled back afterwards (artifact
    files put back before): (the response, the tables and files it changed)."""
    cache.clear()  # throttle budgets
    scene.reset_files()
    with transaction.atomic():
        url = target(scene, row)
        before = snapshot()
        response = send(scene.client(who, row.kind), row, url, scene, method)
        changed = changes(before, snapshot())
        transaction.set_rollback(True)
    return response, changed


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.label)
def test_route_access(scene: Scene, db, row: Row):
    """One row, each member of the cast in turn; every member's problems are reported."""
    problems = []
    for who in CAST:
        response, changed = attempt(scene, row, who)
        expected = row.expect[who]
        problems += _outcome_problems(response, expected, who, row)
        if expected in DENIED and changed:
            problems.append(f"{who}: to be refused, yet the call changed {changed}")
        elif expected not in DENIED and row.must_write and not changed:
            problems.append(f"{who}: an allowed write, yet the call changed nothing")
        elif expected not in DENIED and not row.must_write and changed:
            problems.append(f"{who}: a read, yet the call changed {changed}")
    assert not problems, f"{row.label}:\n" + "\n".join(problems)


# --- Methods no row names -------------------------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


def _path_of(route: str) -> str:
    """Routes that share a URL: the protocol's are one per method."""
    if route.startswith("mlflow "):
        return "mlflow " + route.split(" ", 2)[2]
    return route


def _unnamed_methods() -> list:
    """(a row of each URL, the methods no row names there). Not the admin's: it refuses
    everyone in the cast before looking at the method."""
    rows: dict[str, list[Row]] = {}
    for row in ROWS:
        rows.setdefault(_path_of(row.route), []).append(row)
    probes = []
    for path_key, found in rows.items():
        named = {r.method for r in found}
        missing = [m for m in METHODS if m not in named]
        # The body of a write, if the URL has one, is the likeliest to make a view write.
        row = next((r for r in found if r.method != "get"), found[0])
        if missing and not path_key.startswith("admin"):
            probes.append(pytest.param(row, missing, id=path_key))
    return probes


@pytest.mark.parametrize(("row", "methods"), _unnamed_methods())
def test_methods_without_a_row_change_nothing(scene: Scene, db, row: Row, methods: list[str]):
    """A function view answers methods nothing declares: called with them, even by the
    owner and with the body of one of its writes, a URL must change nothing (or the
    method needs a row)."""
    problems = []
    for method in methods:
        response, changed = attempt(scene, row, "owner", method)
        if response.status_code >= 500:
            problems.append(f"{method.upper()}: {response.status_code}")
        if changed:
            problems.append(f"{method.upper()}: {response.status_code}, changed {changed}")
    assert not problems, f"{row.route}:\n" + "\n".join(problems)
