"""Images without Docker: the request (model resolution and registration, names, errors
through the real API), the build job's phases run by portal's job machinery in this
process, the stored build context, the uv environment, and the context served by our
scoring server from `image_local` over HTTP.

The build through a real Celery worker and the SDK is mlstudio/tests/test_image.py; the
Docker build is test_images_docker.py."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import requests

from deployments.models import Image, ImageBuildJob
from deployments.services import images as svc
from deployments.tests.runner_support import ENV_CACHE_ROOT
from portal.errors import InvalidParameter, NotFound
from portal.models import AuditEntry, Job
from portal.services.jobs import job_run
from portal.tests.api import api, assert_error
from tracking.artifacts import artifact_uri_path, store_for
from tracking.models import ModelVersion
from tracking.tests.api_v1 import send, url
from tracking.tests.conftest import tracking  # noqa: F401  (fixture)

# Every test logs with the real client to the live server (the cast's workspace, as owner).
pytestmark = pytest.mark.usefixtures("tracking")

ROW = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]


@pytest.fixture(autouse=True)
def _image_settings(settings, tmp_path) -> None:
    # Environments are cached across test runs (the uv cache above all), as the runner's
    # tests keep theirs; no Docker here.
    settings.IMAGE_ENV_CACHE_DIR = str(ENV_CACHE_ROOT)
    settings.DOCKER_ENABLED = "0"


def log_diabetes_model(name: str = "model", registered: str | None = None) -> str:
    """The scikit-learn diabetes model logged by the real client; the run id."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.03).fit(X, y)
    mlflow.set_experiment("images")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model,
            name=name,
            signature=infer_signature(X, model.predict(X)),
            registered_model_name=registered,
        )
    return run.info.run_id


def run_build(image: Image) -> ImageBuildJob:
    """The image's build job, run here by portal's job machinery (claim, phases, finish)."""
    job = ImageBuildJob.objects.get(image=image)
    job_run(model_label="deployments.imagebuildjob", job_id=job.pk)
    job.refresh_from_db()
    return job


def context_zip(image: Image) -> zipfile.ZipFile:
    with store_for(image.workspace).open(artifact_uri_path(image.context_uri)) as reader:
        return zipfile.ZipFile(io.BytesIO(b"".join(reader)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_build_registers_the_model_and_builds_context_and_environment(cast, tmp_path):
    run_id = log_diabetes_model()
    image = svc.image_build_request(
        actor=cast.contributor,
        workspace=cast.workspace,
        model_uri=f"runs:/{run_id}/model",
        model_name="sklearn-model",
        image_name="sklearn-image",
        description="Diabetes",
        tags={"method": "sklearn"},
    )
    # mlflow.register_model's effect: the registered model made, version 1 from the run.
    version = ModelVersion.objects.get(registered_model__name="sklearn-model")
    assert (image.model_name, image.model_version, version.version) == ("sklearn-model", 1, 1)
    assert version.run_id == run_id and version.source == f"runs:/{run_id}/model"
    assert image.model_source.startswith("mlflow-artifacts:/")
    assert (image.version, image.state) == (1, Image.State.NOT_STARTED)
    assert AuditEntry.objects.filter(action="create", target_repr__contains="sklearn-image")

    job = run_build(image)
    image.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, (job.error, image.build_log)
    assert image.state == Image.State.SUCCEEDED
    assert job.progress_done == job.progress_total == svc.PHASES
    for phase in (
        "Copying the model",
        "Reading the model's requirements",
        "Writing the build context",
        "Building the Python environment",
        "No container image: DOCKER_ENABLED=0",
    ):
        assert phase in image.build_log, image.build_log
    assert "Building the Python environment" in job.log
    # No server path in what people see.
    assert str(tmp_path) not in image.build_log and str(ENV_CACHE_ROOT) not in image.build_log
    assert image.python_version == "3.11"
    assert image.signature and "inputs" in image.signature
    names = {r.split("==")[0] for r in image.requirements}
    assert {"mlflow-skinny", "scikit-learn", "uvicorn", "orjson", "pandas"} <= names
    assert "mlflow" not in names
    assert all("==" in r for r in image.requirements), image.requirements
    assert image.image_location == f"local environment {image.env_hash[:12]}"
    assert image.env_hash == svc._env_spec(image).build_hash()
    assert (ENV_CACHE_ROOT / "envs" / image.env_hash / "bin" / "python").exists()

    # The stored context: Dockerfile on the base image, the model, requirements, our server.
    assert image.context_uri == "mlflow-artifacts:/images/sklearn-image/1/context.zip"
    archive = context_zip(image)
    members = set(archive.namelist())
    assert {"Dockerfile", "requirements.txt", "scoring-config.json", "model/MLmodel"} <= members
    assert "mlstudio_scoring/__main__.py" in members and "mlstudio_scoring/app.py" in members
    assert not any(m.startswith(("wheelhouse/", "mlstudio_scoring/__pycache__")) for m in members)
    dockerfile = archive.read("Dockerfile").decode()
    assert dockerfile.startswith("# Built by ML Studio") and (
        "FROM mlstudio/python:3.11-bookworm" in dockerfile
    )
    assert "--no-index --find-links /wheelhouse" in dockerfile
    assert archive.read("requirements.txt").decode().splitlines() == image.requirements

    # On this host: the context unpacked once, the scoring server answers from the env.
    local = svc.image_local(image)
    assert svc.image_local(image) == local  # idempotent
    assert (local.model_dir / "MLmodel").is_file()
    config = tmp_path / "config.json"
    config.write_text(json.dumps(svc.ctx.default_config("sklearn-image", str(local.model_dir))))
    port = free_port()
    server = subprocess.Popen(
        [str(local.python), "-m", "mlstudio_scoring", "--config", str(config),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=local.context_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
            time.sleep(0.2)
        answer = requests.post(f"{base}/score", json={"data": [ROW]}, timeout=10)
        assert answer.status_code == 200, answer.text
        predictions = answer.json()
        assert isinstance(predictions, list) and len(predictions) == 1, predictions
        assert 100 < predictions[0] < 300  # the diabetes progression score's range
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_model_uris_versions_and_errors_through_the_api(cast):
    import mlflow

    run_id = log_diabetes_model(registered="diabetes")
    mlflow.MlflowClient().set_registered_model_alias("diabetes", "champion", "1")
    contributor = api(cast, "contributor")
    images_url = url(cast, "api-images")

    def build(**body):
        return send(contributor, "post", images_url, {"image_name": "diabetes-img", **body})

    # models:/name/version and @alias name that version: no new one.
    first = build(model_uri="models:/diabetes/1")
    assert first.status_code == 202, first.content
    assert first.json()["model_name"] == "diabetes" and first.json()["model_version"] == 1
    assert first.json()["state"] == "NotStarted" and first.json()["id"] == "diabetes-img:1"
    second = build(model_uri="models:/diabetes@champion", tags={"a": "b"})
    assert second.json()["version"] == 2 and second.json()["model_version"] == 1
    assert ModelVersion.objects.filter(registered_model__name="diabetes").count() == 1
    # Another model name makes a version of it from the referenced one.
    third = build(model_uri="models:/diabetes/1", model_name="diabetes-copy")
    assert (third.json()["model_name"], third.json()["model_version"]) == ("diabetes-copy", 1)
    assert ImageBuildJob.objects.count() == 3

    for body, status, code in [
        ({"model_uri": "runs:/0123456789abcdef0123456789abcdef/model", "model_name": "m"},
         404, "RESOURCE_DOES_NOT_EXIST"),
        ({"model_uri": f"runs:/{run_id}/no-such-path", "model_name": "m"},
         404, "RESOURCE_DOES_NOT_EXIST"),
        ({"model_uri": "models:/nope/1"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"model_uri": "models:/diabetes/7"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"model_uri": "file:///etc/passwd", "model_name": "m"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"model_uri": "runs:/../../x", "model_name": "m"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"model_uri": f"runs:/{run_id}/model"}, 400, "INVALID_PARAMETER_VALUE"),  # no name
        ({"model_uri": "models:/diabetes/1", "image_name": "Bad_Name"},
         400, "INVALID_PARAMETER_VALUE"),
        ({"model_uri": "models:/diabetes/1", "image_name": "ab"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"model_uri": "models:/diabetes/1", "image_name": "a" * 33},
         400, "INVALID_PARAMETER_VALUE"),
    ]:  # fmt: skip
        body = assert_error(build(**body), status, code)
        assert "/tmp" not in body["message"], body
    assert ImageBuildJob.objects.count() == 3  # nothing half made

    # Reads: the newest of each name, a name's versions, one version with its log.
    reader = api(cast, "reader")
    listed = reader.get(images_url).json()["images"]
    assert [(i["name"], i["version"]) for i in listed] == [("diabetes-img", 3)]
    versions = reader.get(url(cast, "api-image-versions", image="diabetes-img")).json()
    assert [i["version"] for i in versions["images"]] == [3, 2, 1]
    one = reader.get(url(cast, "api-image-version", image="diabetes-img", version="2")).json()
    assert one["tags"] == {"a": "b"} and "build_log" in one and one["job_id"]
    latest = reader.get(url(cast, "api-image-version", image="diabetes-img", version="latest"))
    assert latest.json()["version"] == 3
    assert_error(reader.get(url(cast, "api-image-version", image="diabetes-img", version="9")), 404)
    assert_error(reader.get(url(cast, "api-image-versions", image="nope")), 404)
    # Readers do not build.
    denied = send(reader, "post", images_url, {"image_name": "x-img", "model_uri": "models:/x/1"})
    assert_error(denied, 403, "PERMISSION_DENIED")


def test_failed_build_shows_the_error_on_the_image(cast):
    """A model whose requirements cannot be installed: the image fails with a short error."""
    run_id = log_diabetes_model()
    image = svc.image_build_request(
        actor=cast.contributor,
        workspace=cast.workspace,
        model_uri=f"runs:/{run_id}/model",
        model_name="broken",
        image_name="broken-image",
    )
    # The model's own requirements.txt names a package that does not exist.
    store = store_for(cast.workspace)
    path = artifact_uri_path(image.model_source) + "/requirements.txt"
    store.write(path, [b"mlflow==3.1.0\nno-such-package-mlstudio-xyz==1.0\n"])
    job = run_build(image)
    image.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.attempts == 1  # not retried: ours to fix
    assert image.state == Image.State.FAILED
    assert "could not be built" in image.error, image.error
    assert "no-such-package-mlstudio-xyz" in image.build_log
    with pytest.raises(InvalidParameter):
        svc.image_local(image)


def test_image_names_and_purge(cast, settings):
    for bad in ("ab", "a" * 33, "-abc", "abc-", "ab..c", "Abc", "a_b", "a b"):
        with pytest.raises(InvalidParameter):
            svc.check_image_name(bad)
    for good in ("abc", "a.b-c", "sklearn-image", "x" * 32, "1.2.3"):
        assert svc.check_image_name(good) == good
    with pytest.raises(NotFound):
        svc.image_get(workspace=cast.workspace, name="none")
    store = store_for(cast.workspace)
    store.write("images/x/1/context.zip", [b"zip"])
    local = Path(settings.DATA_DIR) / "images" / "local" / str(cast.workspace.pk)
    local.mkdir(parents=True, exist_ok=True)
    steps = []
    svc.images_purge(workspace=cast.workspace, progress=lambda n, phase: steps.append(phase))
    assert not store.exists("images/x/1/context.zip") and not local.exists()
    assert steps == []  # no image rows: files are removed, but no unit was counted
    from portal import registry

    names = [step.name for step in registry.purge_steps()]
    # After the web services stop (they run from their images), before tracking's step.
    assert names.index("deployments-web-services") < names.index("deployments-images")
    assert names.index("deployments-images") < names.index("tracking")
