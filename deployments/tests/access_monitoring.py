"""The access rows of web service monitoring and the images and services pages, run with
every other route's by tests/test_route_access.py (tests/access.py says how rows read).

Readers see the pages, the metrics and the images; only owners and contributors see keys
(a POST that changes nothing), regenerate them and delete a service; an outsider finds no
workspace (404). The telemetry route answers every person's token 401: only a service's
telemetry token opens it."""

from __future__ import annotations

from django.utils import timezone

from deployments.models import Image, WebService
from deployments.tests.monitoring_support import make_image, make_service, minute_entry
from portal.tests.test_permissions import ws_kw
from tests.access import LOGIN, Row, Scene, by_role, everyone

SEES = by_role(200, 200, 200, 404, LOGIN)
CHANGES = by_role(302, 302, 403, 404, LOGIN)
READ = by_role(200, 200, 200, 404, 401)
SERVICE = "access-service"


def _service(s: Scene) -> WebService:
    found = WebService.objects.filter(workspace=s.workspace, name=SERVICE).first()
    return found or make_service(s, name=SERVICE)[0]


def _service_kw(s: Scene) -> dict:
    return {**ws_kw(s), "name": _service(s).name}


def _image_kw(s: Scene) -> dict:
    image = Image.objects.filter(workspace=s.workspace).first() or make_image(s)
    return {**ws_kw(s), "name": image.name, "version": image.version}


def _page(label: str, name: str, method: str, expect, kwargs, **extra) -> Row:
    return Row(label, name, method, expect, kwargs=kwargs, **extra)


PAGES: list[Row] = [
    _page("web services", "services", "get", SEES, ws_kw),
    _page("web service", "service", "get", SEES, _service_kw),
    _page("web service monitoring", "service", "get", SEES, _service_kw, query="tab=monitoring"),
    _page(
        "web service keys",
        "service-keys",
        "post",
        by_role(200, 200, 403, 404, LOGIN),
        _service_kw,
        writes=False,
    ),
    _page(
        "web service key regeneration",
        "service-regen-key",
        "post",
        CHANGES,
        _service_kw,
        body={"key": "Secondary"},
    ),
    _page(
        "web service delete page",
        "service-delete",
        "get",
        by_role(200, 200, 403, 404, LOGIN),
        _service_kw,
    ),
    _page(
        "web service delete",
        "service-delete",
        "post",
        CHANGES,
        _service_kw,
        body={"confirm_name": SERVICE},
    ),
    _page("images", "images", "get", SEES, ws_kw),
    _page(
        "image, newest version",
        "image-latest",
        "get",
        by_role(302, 302, 302, 404, LOGIN),
        lambda s: {k: v for k, v in _image_kw(s).items() if k != "version"},
    ),
    _page("image", "image", "get", SEES, _image_kw),
    _page("image build state", "image-status", "get", SEES, _image_kw),
    # No context stored for the factory's image: a 404 for every member, yet no 404 for
    # the outsider's reason; what matters is that nobody outside reads it.
    _page(
        "image build context",
        "image-context",
        "get",
        by_role(404, 404, 404, 404, LOGIN),
        _image_kw,
    ),
]


API: list[Row] = [
    Row(
        "web services api: metrics",
        "api-service-metrics",
        "get",
        READ,
        kind="api",
        kwargs=lambda s: {**ws_kw(s), "service": _service(s).name},
        query="range=1h",
    ),
]
# Like the compute workers' routes: no person's token opens it.
SCORING: list[Row] = [
    Row(
        "web services api: telemetry (scoring servers only)",
        "api-service-telemetry",
        "post",
        everyone(401),
        kind="api",
        body={"minutes": [minute_entry(timezone.now(), [1.0])]},
    ),
]
