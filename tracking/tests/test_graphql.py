"""The GraphQL endpoint mlflow's web UI queries, `<tracking URI>/graphql`: mlflow's own
schema, its store-reading fields answered by this workspace's protocol routes."""

from __future__ import annotations

import mlflow
import pytest
import requests
from mlflow.entities import Metric

from tracking.services.experiments import experiment_create
from tracking.services.runs import run_create

pytestmark = pytest.mark.django_db(transaction=True)

RUN_QUERY = """
query q($runId: String) {
  mlflowGetRun(input: {runId: $runId}) {
    run {
      info { runId experimentId status }
      data { metrics { key value step } params { key value } }
      experiment { experimentId name }
      modelVersions { name version }
    }
  }
}
"""


def _post(tracking, who: str, body: dict) -> requests.Response:
    headers = {"Authorization": f"Bearer {tracking.tokens[who]}"}
    return requests.post(f"{tracking.uri}/graphql", json=body, headers=headers, timeout=30)


def test_queries_and_mutations_answer_from_this_workspace(tracking):
    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("graphql")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_batch(
        run_id, metrics=[Metric("loss", 0.5, 1000, 3), Metric("nan", float("nan"), 1000, 0)]
    )
    client.log_param(run_id, "alpha", "0.1")
    client.create_registered_model("gql-model")
    client.create_model_version("gql-model", f"runs:/{run_id}/model", run_id=run_id)

    got = _post(tracking, "reader", {"query": RUN_QUERY, "variables": {"runId": run_id}})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["errors"] is None
    run = body["data"]["mlflowGetRun"]["run"]
    assert run["info"] == {"runId": run_id, "experimentId": experiment_id, "status": "RUNNING"}
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics == {"loss": 0.5, "nan": None}  # NaN is null, as mlflow's schema writes it
    assert run["data"]["params"] == [{"key": "alpha", "value": "0.1"}]
    assert run["experiment"] == {"experimentId": experiment_id, "name": "graphql"}
    assert run["modelVersions"] == [{"name": "gql-model", "version": "1"}]

    # The Default experiment is "0"; runs are searched through the mutation the UI posts.
    default = _post(
        tracking,
        "reader",
        {"query": '{ mlflowGetExperiment(input: {experimentId: "0"}) { experiment { name } } }'},
    ).json()
    assert default["data"]["mlflowGetExperiment"]["experiment"]["name"] == "Default"
    searched = _post(
        tracking,
        "reader",
        {
            "query": "mutation s($ids: [String]) { mlflowSearchRuns(input: {experimentIds: $ids})"
            " { runs { info { runId } } } }",
            "variables": {"ids": [experiment_id]},
        },
    ).json()
    assert searched["errors"] is None
    assert [r["info"]["runId"] for r in searched["data"]["mlflowSearchRuns"]["runs"]] == [run_id]


def test_another_workspaces_run_is_not_found_and_access_holds(tracking, cast):
    foreign_experiment = experiment_create(workspace=cast.other_workspace, name="x", actor=None)
    foreign = run_create(
        workspace=cast.other_workspace,
        experiment=foreign_experiment,
        user_id="someone",
        start_time=None,
    )
    got = _post(tracking, "owner", {"query": RUN_QUERY, "variables": {"runId": foreign.run_uuid}})
    body = got.json()
    assert body["data"]["mlflowGetRun"] is None
    assert body["errors"] == [f"Run with id={foreign.run_uuid} not found"]
    assert cast.other_workspace.name not in got.text

    anonymous = requests.post(f"{tracking.uri}/graphql", json={"query": "{ test { output } }"})
    assert anonymous.status_code == 401
    outsider = _post(tracking, "outsider", {"query": '{ test(inputString: "x") { output } }'})
    assert outsider.status_code == 404
    echo = _post(tracking, "reader", {"query": '{ test(inputString: "x") { output } }'})
    assert echo.json() == {"data": {"test": {"output": "x"}}, "errors": None}


def test_bad_queries_are_refused_with_a_message(tracking):
    assert _post(tracking, "reader", {}).status_code == 400
    broken = _post(tracking, "reader", {"query": "{ mlflowGetRun("}).json()
    assert broken["data"] is None and "Syntax Error" in broken["errors"][0]
    # mlflow's own safety checks: too many fields of one query are refused whole.
    many = "{" + " ".join(f'a{i}: test(inputString: "x") {{ output }}' for i in range(200)) + "}"
    refused = _post(tracking, "reader", {"query": many}).json()
    assert refused["data"] is None and refused["errors"]
