"""The access rows of the web-service endpoints (deployments/api/services.py), run with
every other route's by tests/test_route_access.py through deployments/tests/access.py's
API list, and with a read-scoped and a tracking token by test_api_access.py.

Readers list and read services and their logs; contributors (and owners) deploy, change
and delete, and are the only ones who get keys and tokens; outsiders find no workspace
(404), anonymous calls are 401. The deployment jobs the rows queue are never run here."""

from __future__ import annotations

from deployments.models import Image
from deployments.services.webservices import service_deploy
from portal.tests.test_permissions import ws_kw
from tests.access import Expect, Row, Scene, by_role

READ = by_role(200, 200, 200, 404, 401)
CONTRIBUTORS = by_role(200, 200, 403, 404, 401)


def writes(ok: int) -> Expect:
    return by_role(ok, ok, 403, 404, 401)


def _image(s: Scene) -> Image:
    image, _ = Image.objects.get_or_create(
        workspace=s.workspace,
        name="access-image",
        version=1,
        defaults={
            "model_uri": "models:/access-model/1",
            "model_name": "access-model",
            "model_version": 1,
            "state": Image.State.SUCCEEDED,
        },
    )
    return image


def _with_image(s: Scene) -> dict:
    _image(s)
    return ws_kw(s)


def _service(s: Scene) -> dict:
    service_deploy(
        actor=s.owner,
        workspace=s.workspace,
        name="access-svc",
        image=_image(s),
        compute_type="aci",
        config={},
    )
    return {**ws_kw(s), "service": "access-svc"}


def _with_a_service(s: Scene) -> dict:
    _service(s)
    return ws_kw(s)


def _row(label: str, name: str, method: str, expect: Expect, kwargs=_service, **extra) -> Row:
    return Row(
        f"web services api: {label}", name, method, expect, kind="api", kwargs=kwargs, **extra
    )


API: list[Row] = [
    _row("list", "api-services", "get", READ, _with_a_service),
    _row(
        "deploy",
        "api-services",
        "post",
        writes(202),
        _with_image,
        body={"name": "new-svc", "image": "access-image:1"},
    ),
    _row("get", "api-service", "get", READ),
    _row("update", "api-service", "patch", writes(200), body={"description": "changed"}),
    _row("delete", "api-service", "delete", writes(202)),
    _row("keys", "api-service-keys", "get", CONTRIBUTORS),
    _row("regen key", "api-service-regen-key", "post", CONTRIBUTORS, body={"key": "Primary"}),
    # Minting a token changes nothing stored: the scoring server checks it by its HMAC.
    _row("token", "api-service-token", "post", CONTRIBUTORS, writes=False),
    _row("logs", "api-service-logs", "get", READ, query="num_lines=10"),
]
