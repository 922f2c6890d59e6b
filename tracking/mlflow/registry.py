"""MLflow protocol: the model registry (registered models, versions, tags, aliases)."""

from __future__ import annotations

from typing import Any

from tracking.mlflow.protocol import Call, page, route
from tracking.selectors import registry as sel
from tracking.services import registry as svc


def _name(call: Call) -> str:
    return call.str("name", required=True)


def _version(call: Call) -> str:
    return call.str("version", required=True)


def _registered_model_json(call: Call, name: str) -> dict[str, Any]:
    model = sel.registered_model_get(workspace=call.workspace, name=name)
    return {"registered_model": sel.registered_models_data([model])[0]}


def _model_version_json(call: Call, name: str, version: Any) -> dict[str, Any]:
    found = sel.model_version_get(workspace=call.workspace, name=name, version=version)
    return {"model_version": sel.model_versions_data([found])[0]}


# --- Registered models -------------------------------------------------------------------------


@route("POST", "2.0/mlflow/registered-models/create", write=True)
def create_registered_model(call: Call) -> dict:
    model = svc.registered_model_create(
        workspace=call.workspace,
        name=_name(call),
        tags=call.dicts("tags"),
        description=call.str("description"),
        actor=call.user,
    )
    return _registered_model_json(call, model.name)


@route("GET", "2.0/mlflow/registered-models/get")
def get_registered_model(call: Call) -> dict:
    return _registered_model_json(call, _name(call))


@route("POST", "2.0/mlflow/registered-models/rename", write=True)
def rename_registered_model(call: Call) -> dict:
    model = svc.registered_model_rename(
        workspace=call.workspace, name=_name(call), new_name=call.str("new_name"), actor=call.user
    )
    return _registered_model_json(call, model.name)


@route("PATCH", "2.0/mlflow/registered-models/update", write=True)
def update_registered_model(call: Call) -> dict:
    model = svc.registered_model_update(
        workspace=call.workspace, name=_name(call), description=call.str("description")
    )
    return _registered_model_json(call, model.name)


@route("DELETE", "2.0/mlflow/registered-models/delete", write=True)
def delete_registered_model(call: Call) -> dict:
    svc.registered_model_delete(workspace=call.workspace, name=_name(call), actor=call.user)
    return {}


@route("GET", "2.0/mlflow/registered-models/search")
def search_registered_models(call: Call) -> dict:
    models, token = sel.registered_model_search(
        workspace=call.workspace,
        filter_string=call.str("filter"),
        max_results=call.int("max_results"),
        order_by=call.str_list("order_by"),
        page_token=call.str("page_token"),
    )
    return page("registered_models", sel.registered_models_data(models), token)


@route("POST", "2.0/mlflow/registered-models/get-latest-versions")
@route("GET", "2.0/mlflow/registered-models/get-latest-versions")
def get_latest_versions(call: Call) -> dict:
    versions = sel.latest_versions(
        workspace=call.workspace, name=_name(call), stages=call.str_list("stages")
    )
    return {"model_versions": sel.model_versions_data(versions)}


@route("POST", "2.0/mlflow/registered-models/set-tag", write=True)
def set_registered_model_tag(call: Call) -> dict:
    svc.registered_model_tag_set(
        workspace=call.workspace,
        name=_name(call),
        key=call.str("key", required=True),
        value=call.str("value"),
    )
    return {}


@route("DELETE", "2.0/mlflow/registered-models/delete-tag", write=True)
def delete_registered_model_tag(call: Call) -> dict:
    svc.registered_model_tag_delete(
        workspace=call.workspace, name=_name(call), key=call.str("key", required=True)
    )
    return {}


@route("POST", "2.0/mlflow/registered-models/alias", write=True)
def set_alias(call: Call) -> dict:
    svc.registered_model_alias_set(
        workspace=call.workspace,
        name=_name(call),
        alias=call.str("alias", required=True),
        version=_version(call),
    )
    return {}


@route("DELETE", "2.0/mlflow/registered-models/alias", write=True)
def delete_alias(call: Call) -> dict:
    svc.registered_model_alias_delete(
        workspace=call.workspace, name=_name(call), alias=call.str("alias", required=True)
    )
    return {}


@route("GET", "2.0/mlflow/registered-models/alias")
def get_version_by_alias(call: Call) -> dict:
    found = sel.model_version_by_alias(
        workspace=call.workspace, name=_name(call), alias=call.str("alias", required=True)
    )
    return {"model_version": sel.model_versions_data([found])[0]}


# --- Model versions ----------------------------------------------------------------------------


@route("POST", "2.0/mlflow/model-versions/create", write=True)
def create_model_version(call: Call) -> dict:
    version = svc.model_version_create(
        workspace=call.workspace,
        name=_name(call),
        source=call.str("source", required=True),
        run_id=call.str("run_id"),
        model_id=call.str("model_id"),
        tags=call.dicts("tags"),
        run_link=call.str("run_link"),
        description=call.str("description"),
        user_id=call.username,
    )
    return {"model_version": sel.model_versions_data([version])[0]}


@route("GET", "2.0/mlflow/model-versions/get")
def get_model_version(call: Call) -> dict:
    return _model_version_json(call, _name(call), _version(call))


@route("PATCH", "2.0/mlflow/model-versions/update", write=True)
def update_model_version(call: Call) -> dict:
    found = svc.model_version_update(
        workspace=call.workspace,
        name=_name(call),
        version=_version(call),
        description=call.str("description"),
    )
    return {"model_version": sel.model_versions_data([found])[0]}


@route("POST", "2.0/mlflow/model-versions/transition-stage", write=True)
def transition_stage(call: Call) -> dict:
    found = svc.model_version_transition_stage(
        workspace=call.workspace,
        name=_name(call),
        version=_version(call),
        stage=call.str("stage", required=True),
        archive_existing_versions=call.bool("archive_existing_versions"),
    )
    return {"model_version": sel.model_versions_data([found])[0]}


@route("DELETE", "2.0/mlflow/model-versions/delete", write=True)
def delete_model_version(call: Call) -> dict:
    svc.model_version_delete(
        workspace=call.workspace, name=_name(call), version=_version(call), actor=call.user
    )
    return {}


@route("GET", "2.0/mlflow/model-versions/search")
def search_model_versions(call: Call) -> dict:
    versions, token = sel.model_version_search(
        workspace=call.workspace,
        filter_string=call.str("filter"),
        max_results=call.int("max_results"),
        order_by=call.str_list("order_by"),
        page_token=call.str("page_token"),
    )
    return page("model_versions", sel.model_versions_data(versions), token)


@route("GET", "2.0/mlflow/model-versions/get-download-uri")
def get_download_uri(call: Call) -> dict:
    uri = sel.model_version_download_uri(
        workspace=call.workspace, name=_name(call), version=_version(call)
    )
    return {"artifact_uri": uri}


@route("POST", "2.0/mlflow/model-versions/set-tag", write=True)
def set_model_version_tag(call: Call) -> dict:
    svc.model_version_tag_set(
        workspace=call.workspace,
        name=_name(call),
        version=_version(call),
        key=call.str("key", required=True),
        value=call.str("value"),
    )
    return {}


@route("DELETE", "2.0/mlflow/model-versions/delete-tag", write=True)
def delete_model_version_tag(call: Call) -> dict:
    svc.model_version_tag_delete(
        workspace=call.workspace,
        name=_name(call),
        version=_version(call),
        key=call.str("key", required=True),
    )
    return {}
