"""The access rows of the image endpoints (deployments/api/images.py), run with every other
route's by tests/test_route_access.py through deployments/tests/access.py's API list, and
with a read-scoped and a tracking token by test_api_access.py.

Readers list and read images; contributors (and owners) build; outsiders find no
workspace (404), anonymous calls are 401. The build jobs the rows queue are never run."""

from __future__ import annotations

from portal.tests.test_permissions import ws_kw
from tests.access import Expect, Row, Scene, by_role
from tracking.artifacts import store_for
from tracking.models import RegisteredModel
from tracking.services.registry import model_version_create, registered_model_create

READ = by_role(200, 200, 200, 404, 401)


def writes(ok: int) -> Expect:
    return by_role(ok, ok, 403, 404, 401)


def _files(s: Scene) -> str:
    """A model version's source with an MLmodel in the store: the route scene's logged
    model (the scene writes its files again before each call), or files of our own (the
    plain cast of test_api_access)."""
    logged = getattr(s, "logged_model", None)
    if logged is not None:
        return f"models:/{logged.model_id}"
    store_for(s.workspace).write("images-access/MLmodel", [b"flavors: {}\n"])
    return "mlflow-artifacts:/images-access"


def _model(s: Scene) -> dict:
    """A registered model version of the scene's logged model (its MLmodel is in the store:
    the scene writes it again before each call)."""
    if not RegisteredModel.objects.filter(
        workspace=s.workspace, name="images-access-model"
    ).exists():
        registered_model_create(workspace=s.workspace, name="images-access-model", actor=s.owner)
        model_version_create(workspace=s.workspace, name="images-access-model", source=_files(s))
    return ws_kw(s)


def _image(s: Scene) -> dict:
    from deployments.services.images import image_build_request

    kwargs = _model(s)
    image_build_request(
        actor=s.owner,
        workspace=s.workspace,
        model_uri="models:/images-access-model/1",
        model_name="",
        image_name="access-img",
    )
    return {**kwargs, "image": "access-img"}


def _row(label: str, name: str, method: str, expect: Expect, kwargs=ws_kw, **extra) -> Row:
    return Row(f"images api: {label}", name, method, expect, kind="api", kwargs=kwargs, **extra)


API: list[Row] = [
    _row("list", "api-images", "get", READ),
    _row(
        "build",
        "api-images",
        "post",
        writes(202),
        _model,
        body={"model_uri": "models:/images-access-model/1", "image_name": "new-img"},
    ),
    _row("versions", "api-image-versions", "get", READ, _image),
    _row(
        "version",
        "api-image-version",
        "get",
        READ,
        lambda s: {**_image(s), "version": "1"},
    ),
]


def schema_scope(workspace, owner) -> dict[str, str]:
    """For tests/test_api_schema.py: an image (version 1) to read, and a model URI whose
    build is accepted, so the image operations reach their success paths."""
    from deployments.services.images import image_build_request

    store_for(workspace).write("images-schema/MLmodel", [b"flavors: {}\n"])
    registered_model_create(workspace=workspace, name="images-schema-model", actor=owner)
    model_version_create(
        workspace=workspace, name="images-schema-model", source="mlflow-artifacts:/images-schema"
    )
    uri = "models:/images-schema-model/1"
    image_build_request(
        actor=owner, workspace=workspace, model_uri=uri, model_name="", image_name="fuzz-img"
    )
    return {"image": "fuzz-img", "image_model_uri": uri}
