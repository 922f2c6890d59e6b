"""The model registry through the real mlflow client against a live server."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import requests
from django.test import Client
from django.urls import reverse
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LinearRegression

from tracking.models import ModelVersion, RegisteredModel
from tracking.views.common import ws_kwargs

pytestmark = pytest.mark.django_db(transaction=True)

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 5.0]])
Y = np.array([1.0, 2.0, 4.0, 9.0])


def _api(tracking, who: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {tracking.tokens[who]}"}
    return requests.request(
        method, f"{tracking.uri}/api/2.0/mlflow/{path}", headers=headers, timeout=30, **kwargs
    )


def _logged(experiment: str = "registry", registered_model_name: str | None = None):
    """A fitted model, logged in a fresh run: (sklearn model, run id, ModelInfo)."""
    model = LinearRegression().fit(X, Y)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=registered_model_name
        )
    return model, run.info.run_id, info


def test_register_load_by_version_alias_latest(tracking):
    sk_model, run_id, info = _logged(registered_model_name="diabetes")
    assert str(info.registered_model_version) == "1"
    client = mlflow.MlflowClient()
    v1 = client.get_model_version("diabetes", "1")
    assert v1.source == f"models:/{info.model_id}"
    assert v1.run_id == run_id
    download = client.get_model_version_download_uri("diabetes", "1")
    assert download == client.get_logged_model(info.model_id).artifact_location
    assert download.startswith("mlflow-artifacts:/")

    # Registering the run's model path resolves to the same logged model.
    v2 = mlflow.register_model(f"runs:/{run_id}/model", "diabetes")
    assert v2.version == "2"
    assert client.get_model_version_download_uri("diabetes", "2") == download

    client.set_registered_model_alias("diabetes", "champion", "1")
    expected = sk_model.predict(X)
    for uri in ("models:/diabetes/1", "models:/diabetes@champion", "models:/diabetes/latest"):
        np.testing.assert_allclose(mlflow.pyfunc.load_model(uri).predict(X), expected)
    assert client.get_model_version_by_alias("diabetes", "champion").version == "1"
    assert client.get_registered_model("diabetes").aliases == {"champion": "1"}
    assert client.get_model_version("diabetes", "1").aliases == ["champion"]
    # The logged model lists the versions made from it.
    tags = client.get_logged_model(info.model_id).tags
    assert '"version": 1' in tags["mlflow.modelVersions"]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # stages are deprecated, still served
def test_registry_lifecycle(tracking):
    _, run_id, info = _logged()
    client = mlflow.MlflowClient()
    client.create_registered_model("m1", tags={"team": "a"}, description="first")
    with pytest.raises(MlflowException) as err:
        client.create_registered_model("m1")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert err.value.get_http_status_code() == 400

    source = f"models:/{info.model_id}"
    for _ in range(3):
        client.create_model_version("m1", source, run_id=run_id, tags={"k": "v"})
    client.delete_model_version("m1", "3")
    v4 = client.create_model_version("m1", source)
    assert v4.version == "4"  # numbers are never reused
    with pytest.raises(MlflowException) as err:
        client.get_model_version("m1", "3")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.update_model_version("m1", "1", description="one")
    client.set_model_version_tag("m1", "1", "stage", "qa")
    client.delete_model_version_tag("m1", "1", "k")
    v1 = client.get_model_version("m1", "1")
    assert v1.description == "one" and v1.tags == {"stage": "qa"}

    client.transition_model_version_stage("m1", "1", "Production")
    client.transition_model_version_stage("m1", "2", "production", archive_existing_versions=True)
    assert client.get_model_version("m1", "1").current_stage == "Archived"
    latest = {v.current_stage: v.version for v in client.get_latest_versions("m1")}
    assert latest == {"Production": "2", "Archived": "1", "None": "4"}
    assert [v.version for v in client.get_latest_versions("m1", stages=["Production"])] == ["2"]

    client.set_registered_model_tag("m1", "owner", "olivia")
    client.delete_registered_model_tag("m1", "team")
    client.update_registered_model("m1", description="updated")
    client.set_registered_model_alias("m1", "prod", "2")
    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("m1", "latest", "2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    client.rename_registered_model("m1", "m2")
    got = client.get_registered_model("m2")
    assert got.tags == {"owner": "olivia"}
    assert got.description == "updated"
    assert got.aliases == {"prod": "2"}
    assert client.get_model_version("m2", "2").aliases == ["prod"]
    client.delete_registered_model_alias("m2", "prod")
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("m2", "prod")
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("m1")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.create_registered_model("taken")
    with pytest.raises(MlflowException) as err:
        client.rename_registered_model("m2", "taken")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.delete_registered_model("m2")
    assert not ModelVersion.objects.filter(registered_model__name="m2").exists()
    with pytest.raises(MlflowException) as err:
        client.get_model_version("m2", "1")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_registered_models_and_versions(tracking):
    _, run_id, info = _logged()
    client = mlflow.MlflowClient()
    for i in range(5):
        client.create_registered_model(f"reg-{i}", tags={"parity": "even" if i % 2 == 0 else "odd"})
        client.create_model_version(f"reg-{i}", f"models:/{info.model_id}", tags={"i": str(i)})
    client.create_registered_model("other")

    def names(**kwargs) -> list[str]:
        return [m.name for m in client.search_registered_models(**kwargs)]

    assert names(filter_string="name LIKE 'reg-%'") == [f"reg-{i}" for i in range(5)]
    assert names(filter_string="name ILIKE 'REG-1'") == ["reg-1"]
    assert names(filter_string="name = 'reg-1'") == ["reg-1"]
    assert names(filter_string="tags.parity = 'odd'") == ["reg-1", "reg-3"]
    assert names(filter_string="name LIKE 'reg-%'", order_by=["name DESC"])[0] == "reg-4"
    assert names(filter_string="name IN ('reg-2', 'other')") == ["other", "reg-2"]
    found = client.search_registered_models(filter_string="name = 'reg-0'")[0]
    assert [v.version for v in found.latest_versions] == ["1"]

    page = client.search_registered_models(max_results=2)
    seen = [m.name for m in page]
    while page.token:
        page = client.search_registered_models(max_results=2, page_token=page.token)
        seen.extend(m.name for m in page)
    assert sorted(seen) == sorted([f"reg-{i}" for i in range(5)] + ["other"])

    versions = client.search_model_versions(f"run_id = '{run_id}'")
    assert len(versions) == 5
    assert [v.name for v in client.search_model_versions("name = 'reg-3'")] == ["reg-3"]
    assert len(client.search_model_versions("tags.i = '2'")) == 1
    assert len(client.search_model_versions(f"source_path = 'models:/{info.model_id}'")) == 5
    assert len(client.search_model_versions("version_number > 1")) == 0
    ordered = client.search_model_versions("name LIKE 'reg-%'", order_by=["name DESC"])
    assert ordered[0].name == "reg-4"
    with pytest.raises(MlflowException) as err:
        client.search_registered_models(filter_string="bogus = 'x'")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_legacy_run_artifact_model_can_be_registered(tracking, tmp_path):
    """A model saved as plain run artifacts (MLflow 2 style) registers by runs:/ and loads."""
    sk_model = LinearRegression().fit(X, Y)
    local = tmp_path / "saved"
    mlflow.sklearn.save_model(sk_model, str(local))
    mlflow.set_experiment("legacy")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(local), "legacy")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/legacy", "legacy-model")
    client = mlflow.MlflowClient()
    assert version.source == f"{run.info.artifact_uri}/legacy"
    assert client.get_model_version_download_uri("legacy-model", "1") == version.source
    loaded = mlflow.pyfunc.load_model("models:/legacy-model/1")
    np.testing.assert_allclose(loaded.predict(X), sk_model.predict(X))


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/passwd",
        "/etc",
        "relative/path",
        "http://evil.example.com/model",
        "https://example.com/api/2.0/mlflow-artifacts/artifacts/1/x",
        "s3://bucket/model",
        "dbfs:/model",
        "mlflow-artifacts://other-host/1/x",
        "mlflow-artifacts:/1/../../etc",
        "mlflow-artifacts:/1/%2e%2e/%2e%2e/etc",
        "mlflow-artifacts:/1/%252e%252e/x",
        "mlflow-artifacts:/1/a\\..\\b",
        "models://host/m-0123",
        "mlflow-artifacts:/1/x?redirect=http://evil",
        "models:/m-00000000000000000000000000000000",
    ],
)
def test_foreign_sources_are_refused(tracking, source):
    client = mlflow.MlflowClient()
    client.create_registered_model("guarded")
    response = _api(
        tracking,
        "owner",
        "POST",
        "model-versions/create",
        json={"name": "guarded", "source": source},
    )
    assert response.status_code == 400, (source, response.text)
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not ModelVersion.objects.exists()


def test_sources_inside_the_workspace(tracking):
    _, run_id, info = _logged()
    client = mlflow.MlflowClient()
    client.create_registered_model("inside")
    location = client.get_logged_model(info.model_id).artifact_location
    run_uri = client.get_run(run_id).info.artifact_uri
    ok = [
        {"source": location, "model_id": info.model_id},
        {"source": location + "/sub", "model_id": info.model_id},
        {"source": f"{run_uri}/model", "run_id": run_id},
        {"source": location},  # workspace-relative, no lineage given
        {"source": f"runs:/{run_id}/model"},
        {"source": "models:/inside/1"},
    ]
    for body in ok:
        response = _api(
            tracking, "owner", "POST", "model-versions/create", json={"name": "inside", **body}
        )
        assert response.status_code == 200, (body, response.text)
    stored = list(
        ModelVersion.objects.order_by("version").values_list("source", "storage_location")
    )
    assert stored[4] == (f"runs:/{run_id}/model", location)
    assert stored[5] == ("models:/inside/1", location)
    # Lineage that does not contain the source is refused.
    bad = [
        {"source": f"{run_uri}/model", "model_id": info.model_id},
        {"source": location, "run_id": run_id},
        {"source": f"runs:/{run_id}/model", "run_id": "0" * 32},
        {"source": f"models:/{info.model_id}", "model_id": "m-" + "0" * 32},
    ]
    for body in bad:
        response = _api(
            tracking, "owner", "POST", "model-versions/create", json={"name": "inside", **body}
        )
        assert response.status_code == 400, (body, response.text)


def test_access_rules_and_workspace_isolation(tracking, cast, monkeypatch):
    _, _, info = _logged()
    owner = mlflow.MlflowClient()
    owner.create_registered_model("private")
    owner.create_model_version("private", f"models:/{info.model_id}")

    reader = tracking.client("reader", monkeypatch)
    assert reader.get_registered_model("private").name == "private"
    assert [m.name for m in reader.search_registered_models()] == ["private"]
    assert reader.get_model_version_download_uri("private", "1").startswith("mlflow-artifacts:/")
    for attempt in (
        lambda: reader.create_registered_model("nope"),
        lambda: reader.create_model_version("private", f"models:/{info.model_id}"),
        lambda: reader.set_registered_model_tag("private", "a", "b"),
        lambda: reader.set_registered_model_alias("private", "x", "1"),
        lambda: reader.rename_registered_model("private", "p2"),
        lambda: reader.delete_model_version("private", "1"),
        lambda: reader.delete_registered_model("private"),
    ):
        with pytest.raises(MlflowException) as err:
            attempt()
        assert err.value.error_code == "PERMISSION_DENIED"

    outsider = tracking.client("outsider", monkeypatch)
    with pytest.raises(MlflowException) as err:
        outsider.get_registered_model("private")
    assert err.value.get_http_status_code() == 404

    other = tracking.client("outsider", monkeypatch, uri=tracking.uri_for(cast.other_workspace))
    with pytest.raises(MlflowException) as err:
        other.get_registered_model("private")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert other.search_registered_models() == []
    assert other.search_model_versions("name = 'private'") == []
    # The same name is free in another workspace, but our model is not a source there.
    other.create_registered_model("private")
    for source in (f"models:/{info.model_id}", "models:/private/1"):
        with pytest.raises(MlflowException) as err:
            other.create_model_version("private", source)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE", source
    assert RegisteredModel.objects.filter(name="private").count() == 2
    assert (
        ModelVersion.objects.filter(registered_model__workspace=cast.other_workspace).count() == 0
    )


def _download_error(name: str, version: str) -> MlflowException:
    with pytest.raises(MlflowException) as err:
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}")
    return err.value


def test_a_source_run_that_does_not_exist_is_kept_as_given(tracking):
    """As `mlflow server`: a runs:/ source is stored without looking the run up."""
    client = mlflow.MlflowClient()
    client.create_registered_model("unborn")
    missing = "f" * 32
    version = client.create_model_version("unborn", f"runs:/{missing}/model", run_id=missing)
    assert version.source == f"runs:/{missing}/model" and version.run_id == missing
    got = client.get_model_version("unborn", version.version)
    assert got.source == f"runs:/{missing}/model" and got.run_id == missing
    assert client.get_model_version_download_uri("unborn", "1") == f"runs:/{missing}/model"
    error = _download_error("unborn", "1")
    assert error.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_another_workspaces_run_never_resolves(tracking, cast, monkeypatch):
    _, run_id, _ = _logged()
    other = tracking.client("outsider", monkeypatch, uri=tracking.uri_for(cast.other_workspace))
    other.create_registered_model("borrowed")
    nobody = "e" * 32
    # Stored as given, as any run id is, and never followed into our workspace.
    theirs = other.create_model_version("borrowed", f"runs:/{run_id}/model", run_id=run_id)
    assert theirs.source == f"runs:/{run_id}/model" and theirs.run_id == run_id
    other.create_model_version("borrowed", f"runs:/{nobody}/model", run_id=nobody)
    uri = other.get_model_version_download_uri("borrowed", "1")
    assert uri == f"runs:/{run_id}/model"

    foreign = _download_error("borrowed", "1")
    unknown = _download_error("borrowed", "2")
    assert foreign.error_code == unknown.error_code == "RESOURCE_DOES_NOT_EXIST"
    # The same words as for a run that exists nowhere: nothing of our workspace.
    assert str(foreign.message).replace(run_id, "<id>") == str(unknown.message).replace(
        nobody, "<id>"
    )
    for word in (cast.workspace.name, str(cast.subscription.pk), "registry"):
        assert word not in str(foreign.message)

    # The model's page in their workspace names the run without linking it.
    browser = Client()
    browser.force_login(cast.outsider)
    url = reverse("model", kwargs={**ws_kwargs(cast.other_workspace), "name": "borrowed"})
    page = browser.get(url).content.decode()
    assert run_id[:8] in page and f"/runs/{run_id}" not in page


def test_like_is_case_sensitive_and_literal_outside_wildcards(tracking):
    client = mlflow.MlflowClient()
    for name in ("a.b", "axb", "A.B", "a.b.c"):
        client.create_registered_model(name)

    def names(filter_string: str) -> list[str]:
        return [m.name for m in client.search_registered_models(filter_string=filter_string)]

    assert names("name LIKE 'a.b'") == ["a.b"]
    assert names("name LIKE 'a_b'") == ["a.b", "axb"]
    assert names("name ILIKE 'a.b'") == ["A.B", "a.b"]
    assert names("name LIKE 'a.%'") == ["a.b", "a.b.c"]
    assert names("name != 'axb'") == ["A.B", "a.b", "a.b.c"]


def test_prompts_use_the_registry_but_stay_out_of_model_search(tracking):
    prompt = mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}")
    assert str(prompt.version) == "1"
    assert mlflow.genai.load_prompt("prompts:/greeting/1").template == "Hello {{name}}"
    client = mlflow.MlflowClient()
    client.create_registered_model("a-model")
    assert [m.name for m in client.search_registered_models()] == ["a-model"]
    assert [p.name for p in mlflow.genai.search_prompts()] == ["greeting"]
    # A prompt version's source must be MLflow's placeholder.
    response = _api(
        tracking,
        "owner",
        "POST",
        "model-versions/create",
        json={
            "name": "greeting",
            "source": "file:///etc/passwd",
            "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}],
        },
    )
    assert response.status_code == 400


def test_protocol_edges(tracking):
    client = mlflow.MlflowClient()
    client.create_registered_model("edges")
    for path, params in (
        ("model-versions/get", {"name": "edges", "version": "one"}),
        ("registered-models/alias", {"name": "edges", "alias": "nope"}),
        ("registered-models/get", {"name": "bad/name"}),
        ("registered-models/search", {"max_results": "5000"}),
        ("registered-models/search", {"page_token": "garbage"}),
        ("model-versions/search", {"order_by": "bogus DESC"}),
    ):
        response = _api(tracking, "reader", "GET", path, params=params)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    latest = _api(
        tracking, "reader", "GET", "registered-models/get-latest-versions", params={"name": "edges"}
    )
    assert latest.status_code == 200 and latest.json()["model_versions"] == []
    missing = _api(
        tracking, "reader", "GET", "model-versions/get", params={"name": "edges", "version": "9"}
    )
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
