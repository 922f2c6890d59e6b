"""MLflow 3 logged models through the real mlflow client against a live server, and the
protocol edges the client does not reach."""

from __future__ import annotations

import json
import uuid

import mlflow
import numpy as np
import pytest
import requests
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LinearRegression

from tracking.models import LoggedModel, LoggedModelMetric, RunOutput
from tracking.selectors.logged_models import run_outputs

pytestmark = pytest.mark.django_db(transaction=True)

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 5.0], [4.0, 2.0]])
Y = np.array([1.0, 2.0, 4.0, 9.0, 7.0])


def _sklearn_model() -> LinearRegression:
    return LinearRegression().fit(X, Y)


def _api(tracking, who: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {tracking.tokens[who]}"}
    return requests.request(
        method, f"{tracking.uri}/api/2.0/mlflow/{path}", headers=headers, timeout=30, **kwargs
    )


def test_log_model_and_load_it_back_by_run_and_by_model_id(tracking):
    sk_model = _sklearn_model()
    mlflow.set_experiment("logged-models")
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("rmse", 0.25, step=0)
        info = mlflow.sklearn.log_model(sk_model, name="model")
    assert info.model_id.startswith("m-")
    expected = sk_model.predict(X)
    by_run = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_allclose(by_run.predict(X), expected)
    by_id = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    np.testing.assert_allclose(by_id.predict(X), expected)
    assert np.allclose(mlflow.sklearn.load_model(info.model_uri).predict(X), expected)

    client = mlflow.MlflowClient()
    model = client.get_logged_model(info.model_id)
    assert model.name == "model"
    assert model.source_run_id == run.info.run_id
    assert model.experiment_id == run.info.experiment_id
    assert model.artifact_location == (
        f"mlflow-artifacts:/{run.info.experiment_id}/models/{info.model_id}/artifacts"
    )
    assert model.params == {"alpha": "0.5"}
    # log_model copies the run's metrics at its step onto the model.
    assert [(m.key, m.value, m.model_id) for m in model.metrics] == [("rmse", 0.25, info.model_id)]
    # The run JSON lists the model among its outputs.
    outputs = client.get_run(run.info.run_id).outputs
    assert [(o.model_id, o.step) for o in outputs.model_outputs] == [(info.model_id, 0)]
    files = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert "MLmodel" in files

    # The web UI reads one file of a model under ajax-api/, as an attachment.
    headers = {"Authorization": f"Bearer {tracking.tokens['owner']}"}
    files_url = f"{tracking.uri}/ajax-api/2.0/mlflow/logged-models/{info.model_id}/artifacts/files"
    got = requests.get(
        files_url, params={"artifact_file_path": "MLmodel"}, headers=headers, timeout=30
    )
    assert got.status_code == 200, got.text
    assert "attachment" in got.headers["Content-Disposition"]
    assert f"model_id: {info.model_id}" in got.text
    for params, status in (
        ({}, 400),
        ({"artifact_file_path": "nope"}, 404),
        ({"artifact_file_path": "../x"}, 400),
    ):
        bad = requests.get(files_url, params=params, headers=headers, timeout=30)
        assert bad.status_code == status, (params, bad.text)


def test_create_finalize_tags_params_delete(tracking):
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("lm-crud")
    run = client.create_run(exp_id)
    model = client.create_logged_model(
        exp_id,
        name="clf",
        source_run_id=run.info.run_id,
        params={"depth": "3"},
        tags={"team": "vision"},
        model_type="classifier",
    )
    assert model.status == LoggedModelStatus.PENDING
    assert model.model_type == "classifier"
    assert model.tags["team"] == "vision"
    finalized = client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert finalized.status == LoggedModelStatus.READY
    client.set_logged_model_tags(model.model_id, {"team": "nlp", "path/like": "x"})
    client.delete_logged_model_tag(model.model_id, "path/like")
    client.log_model_params(model.model_id, {"lr": "0.1"})
    got = client.get_logged_model(model.model_id)
    assert got.tags["team"] == "nlp" and "path/like" not in got.tags
    assert got.params == {"depth": "3", "lr": "0.1"}
    with pytest.raises(MlflowException) as err:
        client.delete_logged_model_tag(model.model_id, "missing")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException) as err:
        client.get_logged_model(model.model_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    deleted = _api(
        tracking,
        "owner",
        "GET",
        f"logged-models/{model.model_id}",
        params={"allow_deleted": "true"},
    )
    assert deleted.status_code == 200 and deleted.json()["model"]["info"]["model_id"]
    assert client.search_logged_models(experiment_ids=[exp_id]) == []


def test_search_filters_orders_and_pages(tracking):
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("lm-search")
    run = client.create_run(exp_id)
    ids = []
    for i in range(5):
        model = client.create_logged_model(
            exp_id, name=f"model-{i}", params={"i": str(i)}, tags={"even": str(i % 2 == 0)}
        )
        ids.append(model.model_id)
        client.log_metric(run.info.run_id, "acc", 0.5 + i / 10, model_id=model.model_id)
    client.log_metric(
        run.info.run_id, "acc", 0.99, model_id=ids[0], dataset_name="test", dataset_digest="d1"
    )
    client.finalize_logged_model(ids[1], LoggedModelStatus.READY)

    def names(**kwargs) -> list[str]:
        return [m.name for m in client.search_logged_models(experiment_ids=[exp_id], **kwargs)]

    assert names() == [f"model-{i}" for i in reversed(range(5))]  # newest first
    assert names(filter_string="name LIKE 'model-1%'") == ["model-1"]
    assert names(filter_string="name ILIKE 'MODEL-2'") == ["model-2"]
    assert set(names(filter_string="metrics.acc > 0.75")) == {"model-3", "model-4", "model-0"}
    assert names(filter_string="params.i = '3'") == ["model-3"]
    assert set(names(filter_string="tags.even = 'True'")) == {"model-0", "model-2", "model-4"}
    assert names(filter_string="status = 'READY'") == ["model-1"]
    assert names(filter_string="metrics.acc > 0.9", datasets=[{"dataset_name": "test"}]) == [
        "model-0"
    ]
    ordered = names(order_by=[{"field_name": "name", "ascending": True}])
    assert ordered == [f"model-{i}" for i in range(5)]
    by_metric = names(order_by=[{"field_name": "metrics.acc", "ascending": False}])
    assert by_metric[0] == "model-0"  # its latest acc is 0.99

    page = client.search_logged_models(experiment_ids=[exp_id], max_results=2)
    seen = [m.model_id for m in page]
    while page.token:
        page = client.search_logged_models(
            experiment_ids=[exp_id], max_results=2, page_token=page.token
        )
        seen.extend(m.model_id for m in page)
    assert sorted(seen) == sorted(ids) and len(seen) == 5

    with pytest.raises(MlflowException) as err:
        client.search_logged_models(experiment_ids=[exp_id], filter_string="nonsense.x = 1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    # The client's own fluent search works too.
    assert len(mlflow.search_logged_models(experiment_ids=[exp_id], output_format="list")) == 5


def test_metrics_with_unknown_or_foreign_model_id_are_refused(tracking, cast):
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("lm-metrics")
    run = client.create_run(exp_id)
    with pytest.raises(MlflowException) as err:
        client.log_metric(run.info.run_id, "acc", 0.5, model_id="m-" + uuid.uuid4().hex)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert not LoggedModelMetric.objects.exists()


def test_run_outputs_selector_and_log_outputs_checks(tracking, monkeypatch):
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("lm-outputs")
    run = client.create_run(exp_id)
    model = client.create_logged_model(exp_id, name="m")
    from mlflow.entities import LoggedModelOutput

    client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=3)])
    client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=7)])
    pk = RunOutput.objects.get().run_id
    assert run_outputs([pk, pk + 1000]) == {
        pk: [{"model_id": model.model_id, "step": 7}],
        pk + 1000: [],
    }
    with pytest.raises(MlflowException) as err:
        client.log_outputs(run.info.run_id, [LoggedModelOutput("m-" + uuid.uuid4().hex, 0)])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_legacy_log_model_appends_history_tag(tracking):
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("lm-legacy")
    run_id = client.create_run(exp_id).info.run_id
    entry = {
        "artifact_path": "model",
        "flavors": {"python_function": {}},
        "utc_time_created": "2024-01-01 00:00:00.000000",
        "run_id": run_id,
    }
    for _ in range(2):
        response = _api(
            tracking,
            "owner",
            "POST",
            "runs/log-model",
            json={"run_id": run_id, "model_json": json.dumps(entry)},
        )
        assert response.status_code == 200, response.text
    history = json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["model", "model"]
    bad = _api(
        tracking,
        "owner",
        "POST",
        "runs/log-model",
        json={"run_id": run_id, "model_json": json.dumps({"run_id": run_id})},
    )
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_access_rules(tracking, cast, monkeypatch):
    owner = mlflow.MlflowClient()
    exp_id = owner.create_experiment("lm-access")
    model = owner.create_logged_model(exp_id, name="shared")

    reader = tracking.client("reader", monkeypatch)
    assert reader.get_logged_model(model.model_id).name == "shared"
    assert [m.model_id for m in reader.search_logged_models(experiment_ids=[exp_id])] == [
        model.model_id
    ]
    for attempt in (
        lambda: reader.create_logged_model(exp_id, name="nope"),
        lambda: reader.set_logged_model_tags(model.model_id, {"a": "b"}),
        lambda: reader.finalize_logged_model(model.model_id, LoggedModelStatus.READY),
        lambda: reader.delete_logged_model(model.model_id),
    ):
        with pytest.raises(MlflowException) as err:
            attempt()
        assert err.value.error_code == "PERMISSION_DENIED"

    outsider = tracking.client("outsider", monkeypatch)
    with pytest.raises(MlflowException) as err:
        outsider.get_logged_model(model.model_id)
    assert err.value.get_http_status_code() == 404

    # The outsider's own workspace does not reach the model by id either.
    other = tracking.client("outsider", monkeypatch, uri=tracking.uri_for(cast.other_workspace))
    with pytest.raises(MlflowException) as err:
        other.get_logged_model(model.model_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    other_exp = other.create_experiment("theirs")
    run = other.create_run(other_exp)
    with pytest.raises(MlflowException):
        other.log_metric(run.info.run_id, "acc", 1.0, model_id=model.model_id)
    from mlflow.entities import LoggedModelOutput

    with pytest.raises(MlflowException) as err:
        other.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, 0)])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:
        other.create_logged_model(other_exp, name="x", source_run_id=_owner_run(owner, exp_id))
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # Searching by our experiment id from their workspace finds nothing of ours.
    assert other.search_logged_models(experiment_ids=[exp_id]) == []
    assert LoggedModel.objects.filter(workspace=cast.other_workspace).count() == 0


def _owner_run(owner, exp_id: str) -> str:
    return owner.create_run(exp_id).info.run_id


def test_protocol_edges(tracking):
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("lm-edges")
    model = client.create_logged_model(exp_id, name="edge")
    # Finalize takes the enum by name or by number.
    for status, expected in (("LOGGED_MODEL_UPLOAD_FAILED", "FAILED"), (2, "READY")):
        response = _api(
            tracking,
            "contributor",
            "PATCH",
            f"logged-models/{model.model_id}",
            json={"model_id": model.model_id, "status": status},
        )
        assert response.status_code == 200, response.text
        assert response.json()["model"]["info"]["status"].endswith(expected)
    bad = _api(
        tracking, "owner", "PATCH", f"logged-models/{model.model_id}", json={"status": "BOGUS"}
    )
    assert bad.status_code == 400
    names = {"/": "slash", "a:b": "colon", "a.b": "dot"}
    for bad_name in names:
        response = _api(
            tracking,
            "owner",
            "POST",
            "logged-models",
            json={"experiment_id": exp_id, "name": bad_name},
        )
        assert response.status_code == 400, bad_name
    unnamed = _api(tracking, "owner", "POST", "logged-models", json={"experiment_id": exp_id})
    assert unnamed.status_code == 200 and unnamed.json()["model"]["info"]["name"]
    missing = _api(tracking, "owner", "POST", "logged-models/search", json={})
    assert missing.status_code == 400
    garbage = _api(
        tracking,
        "owner",
        "POST",
        "logged-models/search",
        json={"experiment_ids": [exp_id], "page_token": "!!not-a-token"},
    )
    assert garbage.status_code == 400
    traversal = _api(
        tracking,
        "owner",
        "GET",
        f"logged-models/{model.model_id}/artifacts/directories",
        params={"artifact_directory_path": "../../etc"},
    )
    assert traversal.status_code == 400
    changed = _api(
        tracking,
        "owner",
        "POST",
        f"logged-models/{model.model_id}/params",
        json={"params": [{"key": "k", "value": "1"}]},
    )
    assert changed.status_code == 200
    again = _api(
        tracking,
        "owner",
        "POST",
        f"logged-models/{model.model_id}/params",
        json={"params": [{"key": "k", "value": "2"}]},
    )
    assert again.status_code == 400


def test_source_run_id_is_kept_as_given_and_linked_only_in_this_workspace(
    tracking, cast, monkeypatch
):
    """As `mlflow server`: the source run id is stored without looking the run up. Only a
    run of this workspace is linked (the pages, the run's own models)."""
    client = mlflow.MlflowClient()
    missing = "a" * 32
    model = client.create_logged_model(experiment_id="0", source_run_id=missing)
    assert model.source_run_id == missing
    assert client.get_logged_model(model.model_id).source_run_id == missing
    found = client.search_logged_models(
        experiment_ids=["0"], filter_string=f"source_run_id = '{missing}'"
    )
    assert [m.model_id for m in found] == [model.model_id]
    assert LoggedModel.objects.get(model_id=model.model_id).source_run is None

    ours = client.create_run("0").info.run_id
    mine = client.create_logged_model(experiment_id="0", source_run_id=ours)
    assert LoggedModel.objects.get(model_id=mine.model_id).source_run.run_uuid == ours
    other = tracking.client("outsider", monkeypatch, uri=tracking.uri_for(cast.other_workspace))
    theirs = other.create_logged_model(experiment_id="0", source_run_id=ours)
    assert other.get_logged_model(theirs.model_id).source_run_id == ours
    assert LoggedModel.objects.get(model_id=theirs.model_id).source_run is None
