"""`build_image` through the SDK: the diabetes model logged by the real mlflow client, the
image built by a real Celery worker process (no Docker: DOCKER_ENABLED=0 there), followed
with `wait_for_creation(show_output=True)`; `Image(ws, name)`, `Image.list(ws)`; the
errors the SDK raises for bad requests."""

from __future__ import annotations

import pytest

from conftest import start_worker, stop_worker
from deployments.tests.runner_support import ENV_CACHE_ROOT
from deployments.tests.test_images import log_diabetes_model
from mlstudio.deployment import Model, build_image
from mlstudio.exceptions import AuthorizationError, NotFoundError, ValidationError
from mlstudio.image import Image, ImageNotFound
from tests.test_deletion import producer_on_worker_broker  # noqa: F401 - fixture


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_build_image_with_a_worker_and_read_it_back(
    studio,
    tmp_path,
    capsys,
    monkeypatch,
    settings,
    producer_on_worker_broker,  # noqa: F811 - the fixture imported above
):
    import mlflow

    from deployments.models import Image as ImageRow

    ws = studio.workspace("contributor")
    mlflow.set_tracking_uri(ws.get_mlflow_tracking_uri())
    run_id = log_diabetes_model()

    # The worker builds in the shared environment cache, without Docker.
    monkeypatch.setenv("IMAGE_ENV_CACHE_DIR", str(ENV_CACHE_ROOT))
    monkeypatch.setenv("DOCKER_ENABLED", "0")
    worker = start_worker(tmp_path, "filesystem")
    try:
        capsys.readouterr()
        image, model = build_image(
            model_uri=f"runs:/{run_id}/model",
            workspace=ws,
            model_name="sklearn-model",
            image_name="sklearn-image",
            description="Diabetes model",
            tags={"method": "sklearn"},
            synchronous=True,
        )
        out = capsys.readouterr().out
        assert image.creation_state == "Succeeded", (out, worker.log.read_text()[-3000:])
        assert model == Model("sklearn-model", 1) and model.uri == "models:/sklearn-model/1"
        # The build log streamed while it ran, then the final state.
        assert "Copying the model" in out and "Building the Python environment" in out
        assert out.rstrip().endswith("Image sklearn-image:1: Succeeded")
        assert image.image_location.startswith("local environment ")
        assert (image.name, image.version, image.id) == ("sklearn-image", 1, "sklearn-image:1")
        assert image.tags == {"method": "sklearn"} and image.description == "Diabetes model"
        assert image.python_version == "3.11" and image.signature
        assert any(r.startswith("scikit-learn==") for r in image.requirements)
        assert "No container image: DOCKER_ENABLED=0" in image.build_log
        assert image.image_build_log_uri.endswith("/images/sklearn-image/1")

        # The registry has the version, as mlflow's client sees it.
        version = mlflow.MlflowClient().get_model_version("sklearn-model", "1")
        assert version.run_id == run_id

        # A second version from the registered model, not waited for.
        second, model2 = build_image("models:/sklearn-model/1", ws, image_name="sklearn-image")
        assert model2 == Model("sklearn-model", 1) and second.version == 2
        assert second.wait_for_creation(timeout=120).creation_state == "Succeeded"
        assert "cached" in second.build_log  # the same requirements: the same environment
    finally:
        stop_worker(worker)

    got = Image(ws, "sklearn-image")
    assert got.version == 2 and got.creation_state == "Succeeded"
    assert Image(ws, "sklearn-image", version=1).model_version == 1
    assert [(i.name, i.version) for i in Image.list(ws)] == [("sklearn-image", 2)]
    assert [i.version for i in Image.list(ws, "sklearn-image")] == [2, 1]
    row = ImageRow.objects.get(name="sklearn-image", version=1)
    assert row.env_hash and (ENV_CACHE_ROOT / "envs" / row.env_hash).is_dir()

    # Errors the SDK raises, with the server's codes.
    with pytest.raises(ImageNotFound):
        Image(ws, "sklearn-image", version=5)
    with pytest.raises(NotFoundError) as missing:
        build_image("runs:/0123456789abcdef0123456789abcdef/model", ws, "m", "img-x")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(ValidationError) as invalid:
        build_image("s3://bucket/model", ws, "m", "img-x")
    assert invalid.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(ValidationError):
        build_image(f"runs:/{run_id}/model", ws, "m", "Not_A_Name")
    with pytest.raises(AuthorizationError):
        build_image(f"runs:/{run_id}/model", studio.workspace("reader"), "m", "img-x")
    assert [i.name for i in Image.list(studio.workspace("reader"))] == ["sklearn-image"]
