"""Issue 15's deployment workflow, end to end, from the SDK, with only the imports changed.

The scikit-learn diabetes model is logged by the real `mlflow` client against the live
server; `build_image` is done by a real Celery worker process; the service is run by the
service host (`manage.py service_host`, what `make run` starts) as a real scoring-server
process, scored over HTTP. Then the things around it: no key (401), bad input (400 with a
short message), the URIs, keys, logs, an update of tags and description, and delete.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import ROOT, start_worker, stop_worker
from mlstudio.exceptions import WebserviceException
from mlstudio.tests.conftest import sdk_env, studio  # noqa: F401 - fixtures
from tests.test_deletion import producer_on_worker_broker  # noqa: F401 - fixture

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROW = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path) -> None:
    # Before `cast`: the workspace's artifacts go to this test's folder, which the worker
    # and the service host read too; the data folder is theirs (start_worker's), so the
    # live server reads the instances' logs where the service host writes them.
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")
    settings.DATA_DIR = tmp_path / "data"


def log_diabetes_model(ws) -> str:
    """Train and log the diabetes model with the real client; answer the run id."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.03).fit(X, y)
    mlflow.set_tracking_uri(ws.get_mlflow_tracking_uri())
    mlflow.set_experiment("experiment_with_mlflow")
    with mlflow.start_run() as run:
        mlflow.log_metric("alpha", 0.03)
        mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X, model.predict(X)), input_example=X[:2]
        )
    return run.info.run_id


def start_service_host(worker, tmp_path: Path, site_url: str) -> tuple[subprocess.Popen, Path]:
    """`manage.py service_host` with the worker's database and data folder; its scoring
    servers send their telemetry to the live server."""
    log = tmp_path / "service_host.log"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "service_host"],
        cwd=ROOT,
        env={**worker.env, "SITE_URL": site_url},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return process, log


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def test_the_deployment_workflow(
    studio,  # noqa: F811 - the live server, the cast, a clean SDK environment
    sdk_env,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
    producer_on_worker_broker,  # noqa: F811 - this process enqueues to the worker's folder
) -> None:
    (sdk_env / "config.json").write_text(
        json.dumps(
            {
                "subscription_id": studio.subscription_id,
                "resource_group": "rg-main",
                "workspace_name": "ws-main",
                "server_url": studio.url,
            }
        )
    )
    monkeypatch.setenv("MLSTUDIO_TOKEN", studio.tokens["contributor"])
    # The processes started below (they copy this environment) tell scoring servers
    # where to send telemetry: the live server.
    monkeypatch.setenv("SITE_URL", studio.url)
    worker = start_worker(tmp_path, "filesystem")
    host, host_log = start_service_host(worker, tmp_path, studio.url)

    def diagnostics() -> str:
        return f"\n--- worker ---\n{tail(worker.log)}\n--- service host ---\n{tail(host_log)}"

    try:
        # --- The workflow as the issue writes it (the run id from a run logged just now).
        from mlstudio import Workspace
        from mlstudio.deployment import build_image
        from mlstudio.image import Image
        from mlstudio.webservice import AciWebservice, Webservice

        ws = Workspace.from_config()
        run_id = log_diabetes_model(ws)
        capsys.readouterr()

        image, model = build_image(
            model_uri=f"runs:/{run_id}/model",
            workspace=ws,
            model_name="sklearn-model",
            image_name="sklearn-image",
            synchronous=True,
        )
        assert image.creation_state == "Succeeded", diagnostics()
        config = AciWebservice.deploy_configuration(
            cpu_cores=1, memory_gb=1, tags={"method": "sklearn"}, description="Diabetes model"
        )
        service = Webservice.deploy_from_image(
            workspace=ws, name="diabetes-model-1", image=image, deployment_config=config
        )
        try:
            service.wait_for_deployment(show_output=True, timeout_sec=240)
        except Exception as exc:
            raise AssertionError(f"{exc}{diagnostics()}") from exc
        predictions = service.run(json.dumps({"data": [ROW]}))
        print(predictions)
        print(service.scoring_uri, service.swagger_uri, service.get_keys(), service.get_logs())

        # --- What it printed and answered.
        out = capsys.readouterr().out
        assert "Healthy" in out and 'operation "Succeeded"' in out, out
        assert isinstance(service, AciWebservice) and service.compute_type == "ACI"
        assert service.state == "Healthy"
        values = predictions["predictions"] if isinstance(predictions, dict) else predictions
        assert len(values) == 1 and isinstance(values[0], float), predictions
        # The same model scored here: the service serves what was logged.
        import mlflow

        local = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
        import pandas as pd
        from sklearn.datasets import load_diabetes

        columns = list(load_diabetes(as_frame=True).data.columns)
        expected = float(local.predict(pd.DataFrame([ROW], columns=columns))[0])
        assert values[0] == pytest.approx(expected)

        assert service.scoring_uri.endswith("/score")
        assert service.swagger_uri.endswith("/swagger.json")
        primary, secondary = service.get_keys()
        assert primary and secondary and primary != secondary
        logs = service.get_logs()
        assert "Uvicorn running" in logs and str(tmp_path) not in logs, logs
        assert model.name == "sklearn-model" and Image(ws, "sklearn-image").version == image.version
        assert [s.name for s in Webservice.list(ws)] == ["diabetes-model-1"]
        assert service.image.name == "sklearn-image"

        # --- Scoring over plain HTTP: the key, no key, a bad key, bad input, a token.
        def score(key: str | None, data: str = json.dumps({"data": [ROW]})) -> requests.Response:
            headers = {"Content-Type": "application/json"}
            if key is not None:
                headers["Authorization"] = f"Bearer {key}"
            return requests.post(service.scoring_uri, data=data, headers=headers, timeout=60)

        ok = score(primary)
        assert ok.status_code == 200, ok.text
        assert score(secondary).status_code == 200
        assert score(None).status_code == 401
        assert score("not-a-key").status_code == 401
        bad = score(secondary, json.dumps({"data": [["x"] * 3]}))
        assert bad.status_code == 400, bad.text
        assert len(bad.text) < 1000, bad.text  # a short message, not the schema or the data
        with pytest.raises(WebserviceException, match="400") as caught:
            service.run({"data": [[1.0, 2.0]]})
        assert caught.value.status_code == 400
        token, refresh_by = service.get_token()
        assert score(token).status_code == 200 and refresh_by > time.time()
        swagger = requests.get(service.swagger_uri, timeout=60)
        assert swagger.status_code == 200 and "paths" in swagger.json()

        # --- Update tags and description: no rollout, the service stays healthy.
        service.update(tags={"method": "sklearn", "stage": "prod"}, description="Diabetes v1")
        again = Webservice(ws, "diabetes-model-1")
        assert again.tags == {"method": "sklearn", "stage": "prod"}
        assert again.description == "Diabetes v1" and again.state == "Healthy"
        assert service.run({"data": [ROW]})

        # --- Delete: gone from the studio, and nothing answers at its URI any more.
        scoring_uri = service.scoring_uri
        service.delete()
        assert Webservice.list(ws) == []
        with pytest.raises(WebserviceException):
            Webservice(ws, "diabetes-model-1")
        with pytest.raises(requests.ConnectionError):
            requests.post(scoring_uri, data=json.dumps({"data": [ROW]}), timeout=5)
    finally:
        stop(host)
        stop_worker(worker)
