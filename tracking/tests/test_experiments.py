"""Experiments through the real mlflow client against a live server."""

from __future__ import annotations

import mlflow
import pytest
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
