"""Reads for the Models pages: registered and logged models searched by name, sorted and
shaped into table rows.

The MLflow search (`registered_model_search`) takes a filter string, where `_` and `%`
are wildcards and a quote ends the literal; a search box needs a plain substring, so
these pages filter with `icontains` and reuse the registry's JSON shaping for the rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, F, OuterRef, QuerySet
from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL

from portal.models import Workspace
from tracking.models import (
    LifecycleStage,
    LoggedModel,
    ModelVersion,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Run,
)
from tracking.selectors.registry import (
    IS_PROMPT_TAG,
    model_versions_data,
    registered_models_data,
)

# Sort keys a page accepts → ordering. Name breaks ties so pages never shuffle rows.
REGISTERED_SORTS: dict[str, list[Any]] = {
    "name": [F("name").asc()],
    "-name": [F("name").desc()],
    "modified": [F("last_updated_timestamp").asc(), F("name").asc()],
    "-modified": [F("last_updated_timestamp").desc(), F("name").asc()],
}
LOGGED_SORTS: dict[str, list[Any]] = {
    "name": [F("name").asc(), F("creation_timestamp_ms").desc()],
    "-name": [F("name").desc(), F("creation_timestamp_ms").desc()],
    "created": [F("creation_timestamp_ms").asc(), F("pk").asc()],
    "-created": [F("creation_timestamp_ms").desc(), F("pk").desc()],
}
REGISTERED_DEFAULT_SORT = "name"
LOGGED_DEFAULT_SORT = "-created"


def from_ms(ms: int | None) -> dt.datetime | None:
    """A timestamp in epoch milliseconds (MLflow's unit) as an aware datetime."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def registered_models_for_page(
    *, workspace: Workspace, q: str = "", sort: str = REGISTERED_DEFAULT_SORT
) -> QuerySet[RegisteredModel]:
    """The workspace's registered models whose name contains q (any case). Prompts share
    the table but are not models, so they are left out as `search_registered_models`
    does."""
    models = RegisteredModel.objects.filter(workspace=workspace)
    if q:
        models = models.filter(name__icontains=q)
    prompts = RegisteredModelTag.objects.filter(
        registered_model=OuterRef("pk"), key=IS_PROMPT_TAG, value="true"
    )
    ordering = REGISTERED_SORTS.get(sort, REGISTERED_SORTS[REGISTERED_DEFAULT_SORT])
    return models.filter(~Exists(prompts)).order_by(*ordering)


def registered_model_rows(models: Iterable[RegisteredModel]) -> list[dict[str, Any]]:
    """Table rows for a page of registered models, in a fixed number of queries."""
    rows = []
    for data in registered_models_data(models):
        versions = [int(v["version"]) for v in data["latest_versions"]]
        rows.append(
            {
                "name": data["name"],
                "latest_version": max(versions) if versions else None,
                "aliases": [(a["alias"], a["version"]) for a in data["aliases"]],
                "tags": [(t["key"], t["value"]) for t in data["tags"]],
                "description": data.get("description", ""),
                "created": from_ms(data["creation_timestamp"]),
                "last_modified": from_ms(data["last_updated_timestamp"]),
            }
        )
    return rows


def registered_model_extras(model: RegisteredModel) -> dict[str, Any]:
    """A registered model's tags, aliases (alias → version) and live version count."""
    tags = list(
        RegisteredModelTag.objects.filter(registered_model=model)
        .order_by("key")
        .values_list("key", "value")
    )
    aliases = list(
        RegisteredModelAlias.objects.filter(registered_model=model)
        .order_by("alias")
        .values_list("alias", "version")
    )
    return {
        "tags": tags,
        "aliases": aliases,
        "version_count": model_versions_for_page(model).count(),
    }


def model_versions_for_page(model: RegisteredModel) -> QuerySet[ModelVersion]:
    """A model's live versions, newest first; deleted ones keep a redacted row that no
    read shows."""
    return (
        ModelVersion.objects.filter(registered_model=model)
        .exclude(current_stage=STAGE_DELETED_INTERNAL)
        .order_by("-version")
    )


def model_version_rows(
    model: RegisteredModel, versions: Iterable[ModelVersion]
) -> list[dict[str, Any]]:
    """Table rows for a page of one model's versions, with the source run's name."""
    versions = list(versions)
    for version in versions:
        version.registered_model = model  # spares model_versions_data one query per row
    names = _run_names(model.workspace, {v.run_id for v in versions if v.run_id})
    rows = []
    for data in model_versions_data(versions):
        run_id = data["run_id"]
        rows.append(
            {
                "version": int(data["version"]),
                "aliases": data["aliases"],
                "stage": data["current_stage"],
                "status": data["status"],
                "status_label": data["status"].replace("_", " ").capitalize(),
                "status_message": data.get("status_message", ""),
                "source": data["source"],
                "model_id": data.get("model_id", ""),
                "run_id": run_id,
                "run_name": names.get(run_id, ""),
                "run_exists": run_id in names,
                "created": from_ms(data["creation_timestamp"]),
                "user": data.get("user_id", ""),
                "description": data["description"],
                "tags": [(t["key"], t["value"]) for t in data["tags"]],
            }
        )
    return rows


def _run_names(workspace: Workspace, run_ids: set[str]) -> dict[str, str]:
    if not run_ids:
        return {}
    runs = Run.objects.filter(workspace=workspace, run_uuid__in=run_ids)
    return dict(runs.values_list("run_uuid", "name"))


def logged_models_for_page(
    *, workspace: Workspace, q: str = "", sort: str = LOGGED_DEFAULT_SORT
) -> QuerySet[LoggedModel]:
    """The workspace's live MLflow 3 logged models whose name contains q (any case)."""
    models = LoggedModel.objects.filter(workspace=workspace).exclude(
        lifecycle_stage=LifecycleStage.DELETED
    )
    if q:
        models = models.filter(name__icontains=q)
    ordering = LOGGED_SORTS.get(sort, LOGGED_SORTS[LOGGED_DEFAULT_SORT])
    return models.select_related("source_run", "experiment").order_by(*ordering)


def logged_model_rows(models: Iterable[LoggedModel]) -> list[dict[str, Any]]:
    """Table rows for a page of logged models, with the registered versions made from
    each (one query for the page)."""
    models = list(models)
    registered: dict[str, list[tuple[str, int]]] = defaultdict(list)
    versions = (
        ModelVersion.objects.filter(model_id__in=[m.model_id for m in models])
        .exclude(current_stage=STAGE_DELETED_INTERNAL)
        .order_by("registered_model__name", "version")
        .values_list("model_id", "registered_model__name", "version")
    )
    for model_id, name, number in versions:
        registered[model_id].append((name, number))
    return [
        {
            "name": m.name,
            "model_id": m.model_id,
            "experiment": m.experiment,
            "run_id": m.source_run.run_uuid if m.source_run else "",
            "run_name": m.source_run.name if m.source_run else "",
            "created": from_ms(m.creation_timestamp_ms),
            "status": LoggedModel.Status(m.status).label
            if m.status in LoggedModel.Status.values
            else str(m.status),
            "status_code": m.status,
            "model_type": m.model_type,
            "registered": registered[m.model_id],
        }
        for m in models
    ]
