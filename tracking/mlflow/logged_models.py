"""MLflow protocol: MLflow 3 logged models, run outputs, the legacy runs/log-model."""

from __future__ import annotations

from typing import Any

from portal.errors import InvalidParameter
from tracking.artifacts import list_under_uri
from tracking.mlflow.protocol import Call, as_int, missing, page, route
from tracking.selectors.logged_models import (
    logged_model_get,
    logged_model_search,
    logged_models_data,
    normalize_order_by,
    status_value,
)
from tracking.services import logged_models as svc


def _model_json(call: Call, model_id: str) -> dict[str, Any]:
    model = logged_model_get(workspace=call.workspace, model_id=model_id)
    return {"model": logged_models_data([model])[0]}


@route("POST", "2.0/mlflow/logged-models", write=True)
def create(call: Call) -> dict:
    model = svc.logged_model_create(
        workspace=call.workspace,
        experiment_id=call.str("experiment_id", required=True),
        name=call.str("name") or None,
        model_type=call.str("model_type"),
        source_run_id=call.str("source_run_id"),
        params=call.dicts("params"),
        tags=call.dicts("tags"),
    )
    return _model_json(call, model.model_id)


@route("GET", "2.0/mlflow/logged-models/<model_id>")
def get(call: Call) -> dict:
    model = logged_model_get(
        workspace=call.workspace,
        model_id=call.args["model_id"],
        allow_deleted=call.bool("allow_deleted"),
    )
    return {"model": logged_models_data([model])[0]}


@route("PATCH", "2.0/mlflow/logged-models/<model_id>", write=True)
def finalize(call: Call) -> dict:
    if call.data.get("status") in (None, ""):
        raise missing("status")
    model = svc.logged_model_finalize(
        workspace=call.workspace,
        model_id=call.args["model_id"],
        status=status_value(call.data["status"]),
    )
    return _model_json(call, model.model_id)


@route("DELETE", "2.0/mlflow/logged-models/<model_id>", write=True)
def delete(call: Call) -> dict:
    svc.logged_model_delete(
        workspace=call.workspace, model_id=call.args["model_id"], actor=call.user
    )
    return {}


@route("POST", "2.0/mlflow/logged-models/<model_id>/params", write=True)
def log_params(call: Call) -> dict:
    svc.logged_model_params_log(
        workspace=call.workspace, model_id=call.args["model_id"], params=call.dicts("params")
    )
    return {}


@route("PATCH", "2.0/mlflow/logged-models/<model_id>/tags", write=True)
def set_tags(call: Call) -> dict:
    svc.logged_model_tags_set(
        workspace=call.workspace, model_id=call.args["model_id"], tags=call.dicts("tags")
    )
    return {}


@route("DELETE", "2.0/mlflow/logged-models/<model_id>/tags/<path:tag_key>", write=True)
def delete_tag(call: Call) -> dict:
    svc.logged_model_tag_delete(
        workspace=call.workspace, model_id=call.args["model_id"], key=call.args["tag_key"]
    )
    return {}


@route("POST", "2.0/mlflow/logged-models/search")
def search(call: Call) -> dict:
    experiment_ids = call.str_list("experiment_ids")
    if not experiment_ids:
        raise missing("experiment_ids")
    datasets = call.dicts("datasets")
    models, token = logged_model_search(
        workspace=call.workspace,
        experiment_ids=experiment_ids,
        filter_string=call.str("filter") or None,
        datasets=[
            {"dataset_name": d.get("dataset_name"), "dataset_digest": d.get("dataset_digest")}
            for d in datasets
        ],
        max_results=call.int("max_results"),
        order_by=normalize_order_by(call.dicts("order_by")),
        page_token=call.str("page_token") or None,
    )
    return page("models", logged_models_data(models), token)


@route("GET", "2.0/mlflow/logged-models/<model_id>/artifacts/directories")
def list_artifacts(call: Call) -> dict:
    model = logged_model_get(
        workspace=call.workspace, model_id=call.args["model_id"], allow_deleted=False
    )
    entries = list_under_uri(
        call.workspace, model.artifact_location, call.str("artifact_directory_path")
    )
    files = []
    for entry in entries:
        item: dict[str, Any] = {"path": entry.path, "is_dir": entry.is_dir}
        if not entry.is_dir and entry.file_size is not None:
            item["file_size"] = entry.file_size
        files.append(item)
    return {"root_uri": model.artifact_location, "files": files}


@route("POST", "2.0/mlflow/runs/outputs", write=True)
def log_outputs(call: Call) -> dict:
    models = []
    for index, item in enumerate(call.dicts("models")):
        model_id = item.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise missing(f"models[{index}].model_id")
        if item.get("step") in (None, ""):
            raise missing(f"models[{index}].step")
        models.append({"model_id": model_id, "step": as_int(item["step"], "step")})
    if not models:
        raise missing("models")
    svc.run_outputs_log(
        workspace=call.workspace, run_id=call.str("run_id", required=True), models=models
    )
    return {}


@route("POST", "2.0/mlflow/runs/log-model", write=True)
def log_model(call: Call) -> dict:
    model_json = call.data.get("model_json")
    if model_json in (None, ""):
        raise missing("model_json")
    if not isinstance(model_json, str):
        raise InvalidParameter("Invalid value for parameter 'model_json': expected a string")
    svc.run_model_history_append(
        workspace=call.workspace, run_id=call.str("run_id", required=True), model_json=model_json
    )
    return {}
