"""Experiments through the real mlflow client against a live server."""

from __future__ import annotations

import mlflow
import pytest
import requests
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException, RestException

pytestmark = pytest.mark.django_db(transaction=True)


def test_set_experiment_creates_then_reuses(tracking, monkeypatch):
    first = mlflow.set_experiment("experiment_with_mlflow")
    again = mlflow.set_experiment("experiment_with_mlflow")
    assert first.experiment_id == again.experiment_id
    assert first.name == "experiment_with_mlflow"
    assert first.artifact_location == f"mlflow-artifacts:/{first.experiment_id}"
    client = mlflow.MlflowClient()
    got = client.get_experiment(first.experiment_id)
    assert got.name == "experiment_with_mlflow"
    assert got.lifecycle_stage == "active"
    assert (
        client.get_experiment_by_name("experiment_with_mlflow").experiment_id == got.experiment_id
    )
    assert client.get_experiment_by_name("nope") is None


def test_create_duplicate_is_resource_already_exists(tracking):
    client = mlflow.MlflowClient()
    client.create_experiment("dup")
    with pytest.raises(MlflowException) as err:
        client.create_experiment("dup")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_rename_tags_delete_restore(tracking):
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("before", tags={"team": "vision"})
    client.rename_experiment(exp_id, "after")
    client.set_experiment_tag(exp_id, "stage", "dev")
    client.delete_experiment_tag(exp_id, "team")
    exp = client.get_experiment(exp_id)
    assert exp.name == "after"
    assert exp.tags == {"stage": "dev"}
    run = client.create_run(exp_id)
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as err:
        client.create_run(exp_id)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


def test_search_experiments_filter_order_pages(tracking):
    client = mlflow.MlflowClient()
    ids = [client.create_experiment(f"exp-{i:02d}", tags={"n": str(i)}) for i in range(7)]
    client.delete_experiment(ids[0])
    found = client.search_experiments(filter_string="name LIKE 'exp-%'", order_by=["name DESC"])
    assert [e.name for e in found] == [f"exp-{i:02d}" for i in range(6, 0, -1)]
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert [e.name for e in deleted] == ["exp-00"]
    page = client.search_experiments(max_results=4, filter_string="tags.n != '3'")
    assert len(page) == 4 and page.token
    rest = client.search_experiments(
        max_results=4, filter_string="tags.n != '3'", page_token=page.token
    )
    names = {e.name for e in page} | {e.name for e in rest}
    assert "exp-03" not in names and len(names) == len(page) + len(rest)


def test_unknown_experiment_is_resource_does_not_exist(tracking):
    client = mlflow.MlflowClient()
    with pytest.raises(RestException) as err:
        client.get_experiment("987654")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_new_workspace_has_default_as_experiment_0(tracking):
    """As `mlflow server`: experiment 0, "Default", is there before anyone uses it."""
    from tracking.models import Experiment

    client = mlflow.MlflowClient()
    found = client.search_experiments()
    assert [(e.experiment_id, e.name, e.lifecycle_stage) for e in found] == [
        ("0", "Default", "active")
    ]
    assert client.get_experiment("0").name == "Default"
    assert client.get_experiment_by_name("Default").experiment_id == "0"
    assert client.search_experiments(filter_string="attribute.experiment_id = '0'")[0].name == (
        "Default"
    )
    # Made by the workspace's creation, once, and found again by id only.
    default = Experiment.objects.get(is_default=True, workspace__name="ws-main")
    assert default.name == "Default" and default.created_by is None

    # Renamed, it is still experiment 0; a run without an experiment lands in it.
    client.rename_experiment("0", "Scratch")
    client.create_experiment("Default")  # the name is free again
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == "0"
    assert client.get_run(run.info.run_id).info.experiment_id == "0"
    assert client.get_experiment("0").name == "Scratch"
    assert [r.info.run_id for r in client.search_runs(["0"])] == [run.info.run_id]


def test_default_experiment_deleted_and_restored_as_mlflow_does(tracking):
    client = mlflow.MlflowClient()
    client.set_experiment_tag("0", "team", "vision")
    assert client.get_experiment("0").tags["team"] == "vision"
    client.delete_experiment("0")
    assert client.get_experiment("0").lifecycle_stage == "deleted"
    assert [e.experiment_id for e in client.search_experiments()] == []
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert [(e.experiment_id, e.name) for e in deleted] == [("0", "Default")]
    with pytest.raises(MlflowException) as err:
        client.create_run("0")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "experiment 0 must be in the 'active' state" in err.value.message
    client.restore_experiment("0")
    assert [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)] == ["0"]
    assert client.create_run("0").info.experiment_id == "0"


def test_datasets_and_logged_models_of_experiment_0(tracking):
    import pandas as pd

    client = mlflow.MlflowClient()
    model = client.create_logged_model(experiment_id="0", name="in-default")
    assert model.experiment_id == "0"
    found = client.search_logged_models(experiment_ids=["0"])
    assert [(m.model_id, m.experiment_id) for m in found] == [(model.model_id, "0")]
    filtered = client.search_logged_models(experiment_ids=["0"], filter_string="experiment_id = 0")
    assert [m.model_id for m in filtered] == [model.model_id]
    with mlflow.start_run():
        mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"a": [1]}), name="d"), "train")
    response = requests.post(
        f"{tracking.uri}/ajax-api/2.0/mlflow/experiments/search-datasets",
        json={"experiment_ids": ["0"]},
        headers={"Authorization": f"Bearer {tracking.tokens['owner']}"},
        timeout=30,
    )
    summaries = response.json()["dataset_summaries"]
    assert [(s["experiment_id"], s["name"], s["context"]) for s in summaries] == [
        ("0", "d", "train")
    ]
