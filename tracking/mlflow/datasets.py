"""MLflow protocol: GenAI evaluation datasets (`api/3.0/mlflow/datasets/...`), as
`mlflow server`'s handlers read and answer them. Tags and records travel as JSON text
inside the JSON body (`"tags": "{...}"`, `"records": "[...]"`), as the messages have
them."""

from __future__ import annotations

import json
from typing import Any

from portal.errors import InvalidParameter
from tracking.mlflow.experiments import resolve_experiment
from tracking.mlflow.protocol import Call, page, route
from tracking.models import EvaluationDataset, Experiment
from tracking.selectors.evaluation_datasets import (
    evaluation_dataset_experiment_ids,
    evaluation_dataset_get,
    evaluation_dataset_json,
    evaluation_dataset_records,
    evaluation_dataset_records_json,
    evaluation_dataset_search,
    evaluation_datasets_json,
    experiment_pks,
)
from tracking.services import evaluation_datasets as svc

D = "3.0/mlflow/datasets"


def _json_text(call: Call, name: str, kind: type, *, required: bool = False) -> Any:
    """A field holding JSON text: parsed, and of the kind expected (object, array)."""
    text = call.str(name, required=required)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidParameter(f"Invalid value for parameter '{name}': not valid JSON.") from None
    if not isinstance(value, kind):
        expected = "an object" if kind is dict else "an array"
        raise InvalidParameter(f"Invalid value for parameter '{name}': expected {expected}.")
    return value


def _experiments(call: Call) -> list[Experiment]:
    """The experiments named, each of this workspace ("0" is its Default one); an id of
    none here is RESOURCE_DOES_NOT_EXIST."""
    return [resolve_experiment(call, str(value)) for value in call.list("experiment_ids")]


def _experiment_pks(call: Call) -> list[int]:
    return experiment_pks(workspace=call.workspace, experiment_ids=call.list("experiment_ids"))


def _dataset(dataset: EvaluationDataset) -> dict:
    return {"dataset": evaluation_dataset_json(dataset)}


@route("POST", f"{D}/create", write=True)
def create(call: Call) -> dict:
    name = call.str("name", required=True)
    tags = _json_text(call, "tags", dict)
    dataset = svc.evaluation_dataset_create(
        workspace=call.workspace,
        name=name,
        experiments=_experiments(call),
        tags=tags,
        actor=call.user,
    )
    return _dataset(dataset)


@route("GET", f"{D}/<dataset_id>")
def get(call: Call) -> dict:
    return _dataset(
        evaluation_dataset_get(workspace=call.workspace, dataset_id=call.args["dataset_id"])
    )


@route("DELETE", f"{D}/<dataset_id>", write=True)
def delete(call: Call) -> dict:
    svc.evaluation_dataset_delete(
        workspace=call.workspace, dataset_id=call.args["dataset_id"], actor=call.user
    )
    return {}


def _search(call: Call) -> dict:
    given = call.list("experiment_ids")
    datasets, token = evaluation_dataset_search(
        workspace=call.workspace,
        experiment_pks=_experiment_pks(call) if given else None,
        filter_string=call.str("filter_string") or None,
        max_results=call.int("max_results", default=1000),
        order_by=call.str_list("order_by") or None,
        page_token=call.str("page_token") or None,
    )
    return page("datasets", evaluation_datasets_json(datasets), token)


route("POST", f"{D}/search")(_search)
route("GET", f"{D}/search")(_search)


@route("PATCH", f"{D}/<dataset_id>/tags", write=True)
def set_tags(call: Call) -> dict:
    svc.evaluation_dataset_tags_set(
        workspace=call.workspace,
        dataset_id=call.args["dataset_id"],
        tags=_json_text(call, "tags", dict, required=True),
    )
    return {}


@route("DELETE", f"{D}/<dataset_id>/tags/<path:tag_key>", write=True)
def delete_tag(call: Call) -> dict:
    svc.evaluation_dataset_tag_delete(
        workspace=call.workspace, dataset_id=call.args["dataset_id"], key=call.args["tag_key"]
    )
    return {}


@route("POST", f"{D}/<dataset_id>/records", write=True)
def upsert_records(call: Call) -> dict:
    records = _json_text(call, "records", list, required=True)
    counts = svc.evaluation_dataset_records_upsert(
        workspace=call.workspace,
        dataset_id=call.args["dataset_id"],
        records=records,
        actor=call.user,
    )
    return {"inserted_count": counts["inserted"], "updated_count": counts["updated"]}


@route("GET", f"{D}/<dataset_id>/records")
def get_records(call: Call) -> dict:
    dataset_id = call.args["dataset_id"]
    records, token = evaluation_dataset_records(
        workspace=call.workspace,
        dataset_id=dataset_id,
        max_results=call.int("max_results"),
        page_token=call.str("page_token") or None,
    )
    payload: dict[str, Any] = {
        "records": json.dumps(evaluation_dataset_records_json(dataset_id, records))
    }
    if token:
        payload["next_page_token"] = token
    return payload


@route("DELETE", f"{D}/<dataset_id>/records", write=True)
def delete_records(call: Call) -> dict:
    record_ids = call.str_list("dataset_record_ids")
    deleted = svc.evaluation_dataset_records_delete(
        workspace=call.workspace,
        dataset_id=call.args["dataset_id"],
        record_ids=record_ids,
        actor=call.user,
    )
    return {"deleted_count": deleted}


@route("GET", f"{D}/<dataset_id>/experiment-ids")
def experiment_ids(call: Call) -> dict:
    ids = evaluation_dataset_experiment_ids(
        workspace=call.workspace, dataset_id=call.args["dataset_id"]
    )
    return {"experiment_ids": ids}


@route("POST", f"{D}/<dataset_id>/add-experiments", write=True)
def add_experiments(call: Call) -> dict:
    # The dataset first: naming "0" makes the Default experiment, which a call refused
    # for its dataset must not leave behind.
    evaluation_dataset_get(
        workspace=call.workspace,
        dataset_id=call.args["dataset_id"],
        message=f"Dataset '{call.args['dataset_id']}' not found",
    )
    dataset = svc.evaluation_dataset_experiments_add(
        workspace=call.workspace,
        dataset_id=call.args["dataset_id"],
        experiments=_experiments(call),
        actor=call.user,
    )
    return _dataset(dataset)


@route("POST", f"{D}/<dataset_id>/remove-experiments", write=True)
def remove_experiments(call: Call) -> dict:
    dataset = svc.evaluation_dataset_experiments_remove(
        workspace=call.workspace,
        dataset_id=call.args["dataset_id"],
        experiment_pks=_experiment_pks(call),
        actor=call.user,
    )
    return _dataset(dataset)
