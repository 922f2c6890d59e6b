"""Reads of the model registry: registered models, versions, aliases, search.

Every lookup is by name within one workspace, so a name from another workspace is
simply not found. Deleted versions stay as rows in the internal stage
`Deleted_Internal` and are left out of every read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from mlflow.entities.model_registry.model_version_stages import (
    ALL_STAGES,
    STAGE_DELETED_INTERNAL,
    get_canonical_stage,
)
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils, SearchUtils
from mlflow.utils.validation import _validate_model_alias_name, _validate_model_name

from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from tracking.models import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
REGISTERED_MODELS_MAX_RESULTS = 1000
REGISTERED_MODELS_DEFAULT_RESULTS = 100
MODEL_VERSIONS_MAX_RESULTS = 200_000


# --- Comparisons shared with the logged-model search ---------------------------------------


def like_regex(pattern: str, *, case_insensitive: bool = False) -> str:
    """A SQL LIKE pattern as a regular expression both SQLite (Python `re`) and
    PostgreSQL (`~`) read the same way, so LIKE is case-sensitive on both."""
    parts = ["(?si)\\A" if case_insensitive else "(?s)\\A"]
    for char in pattern:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    parts.append("\\Z")
    return "".join(parts)


def field_comparison(field: str, op: str, value: Any) -> Q:
    """`field <op> value` as a Q, with MLflow's comparators."""
    if op == "=":
        return Q(**{field: value})
    if op == "!=":
        return Q(**{f"{field}__isnull": False}) & ~Q(**{field: value})
    if op in ("LIKE", "ILIKE"):
        return Q(**{f"{field}__regex": like_regex(str(value), case_insensitive=op == "ILIKE")})
    if op == "IN":
        return Q(**{f"{field}__in": list(value)})
    if op == "NOT IN":
        return ~Q(**{f"{field}__in": list(value)})
    lookups = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
    if op in lookups:
        return Q(**{f"{field}__{lookups[op]}": value})
    raise InvalidParameter(f"Invalid comparator '{op}'")


def page_offset(page_token: str) -> int:
    if not page_token:
        return 0
    try:
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
    except MlflowException as exc:
        raise InvalidParameter(exc.message) from None
    except Exception:
        raise InvalidParameter(f"Invalid page token '{page_token}'.") from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameter(f"Invalid page token '{page_token}'.")
    return offset


def page_token_for(offset: int) -> str:
    return SearchUtils.create_page_token(offset).decode("ascii")


def _parse_filter(utils: type[SearchUtils], filter_string: str) -> list[dict[str, Any]]:
    try:
        return utils.parse_search_filter(filter_string)
    except MlflowException as exc:
        raise InvalidParameter(exc.message) from None
    except Exception:
        raise InvalidParameter(f"Invalid filter string '{filter_string}'.") from None


def _queries_prompts(parsed: list[dict[str, Any]]) -> bool:
    for clause in parsed:
        if clause["type"] == "tag" and clause["key"] == IS_PROMPT_TAG:
            value = str(clause["value"]).lower()
            return (clause["comparator"] == "=" and value == "true") or (
                clause["comparator"] == "!=" and value == "false"
            )
    return False


# --- Lookups -------------------------------------------------------------------------------


def registered_model_get(
    *, workspace: Workspace, name: str, for_update: bool = False
) -> RegisteredModel:
    _validate_model_name(name)
    models = RegisteredModel.objects.filter(workspace=workspace, name=name)
    if for_update:
        models = models.select_for_update()
    model = models.first()
    if model is None:
        raise NotFound(f"Registered Model with name={name} not found")
    return model


def version_number(version: Any) -> int:
    try:
        number = int(str(version).strip())
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"Parameter 'version' must be an integer, got '{version}'."
        ) from None
    if not -(2**31) <= number < 2**31:
        raise InvalidParameter(f"Parameter 'version' is out of range: '{version}'.")
    return number


def _active_versions() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.exclude(current_stage=STAGE_DELETED_INTERNAL)


def model_version_get(
    *, workspace: Workspace, name: str, version: Any, for_update: bool = False
) -> ModelVersion:
    _validate_model_name(name)
    number = version_number(version)
    versions = _active_versions().filter(
        registered_model__workspace=workspace, registered_model__name=name, version=number
    )
    if for_update:
        versions = versions.select_for_update()
    found = versions.select_related("registered_model").first()
    if found is None:
        raise NotFound(f"Model Version (name={name}, version={version}) not found")
    return found


def model_version_download_uri(*, workspace: Workspace, name: str, version: Any) -> str:
    """Where the client downloads a version's files from: the `mlflow-artifacts:/`
    location inside this workspace recorded at registration, or, for a `runs:/` source
    that named no run of this workspace then, the source as given: the client resolves
    it through this workspace's runs, where another workspace's run does not exist."""
    found = model_version_get(workspace=workspace, name=name, version=version)
    return found.storage_location or found.source


def latest_versions(
    *, workspace: Workspace, name: str, stages: list[str] | None = None
) -> list[ModelVersion]:
    """The newest version in each requested stage (every stage when none are given)."""
    model = registered_model_get(workspace=workspace, name=name)
    wanted = {get_canonical_stage(s) for s in (stages or ALL_STAGES)}
    found = [v for v in _latest_by_model([model.pk]).get(model.pk, []) if v.current_stage in wanted]
    for version in found:
        version.registered_model = model
    return found


def model_version_by_alias(*, workspace: Workspace, name: str, alias: str) -> ModelVersion:
    _validate_model_name(name)
    _validate_model_alias_name(alias)
    model = registered_model_get(workspace=workspace, name=name)
    if alias.lower() == "latest":
        newest = _active_versions().filter(registered_model=model).order_by("-version").first()
        if newest is None:
            raise NotFound(f"Latest version not found for model {name}.")
        newest.registered_model = model
        return newest
    row = RegisteredModelAlias.objects.filter(registered_model=model, alias=alias).first()
    if row is None:
        raise InvalidParameter(f"Registered model alias {alias} not found.")
    return model_version_get(workspace=workspace, name=name, version=row.version)


def model_version_resolve(
    *,
    workspace: Workspace,
    uri_name: str,
    version: str | None,
    stage: str | None,
    alias: str | None,
) -> ModelVersion:
    """The version a `models:/<name>/<version|stage|latest>` or `models:/<name>@<alias>`
    URI names, within the workspace."""
    if version is not None:
        return model_version_get(workspace=workspace, name=uri_name, version=version)
    if alias is not None:
        return model_version_by_alias(workspace=workspace, name=uri_name, alias=alias)
    if stage is not None:
        found = latest_versions(workspace=workspace, name=uri_name, stages=[stage])
        if not found:
            raise NotFound(f"No versions of model with name '{uri_name}' and stage '{stage}' found")
        return found[0]
    return model_version_by_alias(workspace=workspace, name=uri_name, alias="latest")


def _latest_by_model(model_pks: list[int]) -> dict[int, list[ModelVersion]]:
    """The newest live version per (registered model, stage), in one query."""
    if not model_pks:
        return {}
    newest = (
        _active_versions()
        .filter(
            registered_model=OuterRef("registered_model"),
            current_stage=OuterRef("current_stage"),
        )
        .order_by("-version")
        .values("version")[:1]
    )
    versions = _active_versions().filter(
        registered_model_id__in=model_pks, version=Subquery(newest)
    )
    result: dict[int, list[ModelVersion]] = defaultdict(list)
    for version in versions.order_by("version"):
        result[version.registered_model_id].append(version)
    return result


# --- Search ----------------------------------------------------------------------------------


def registered_model_search(
    *,
    workspace: Workspace,
    filter_string: str = "",
    max_results: int | None = None,
    order_by: list[str] | None = None,
    page_token: str = "",
) -> tuple[list[RegisteredModel], str | None]:
    """A page of the workspace's registered models and the token of the next page."""
    max_results = REGISTERED_MODELS_DEFAULT_RESULTS if max_results is None else max_results
    if max_results > REGISTERED_MODELS_MAX_RESULTS:
        raise InvalidParameter(
            "Invalid value for request parameter max_results. It must be at most "
            f"{REGISTERED_MODELS_MAX_RESULTS}, but got value {max_results}"
        )
    if max_results < 1:
        raise InvalidParameter(f"Invalid value for request parameter max_results: {max_results}")
    parsed = _parse_filter(SearchModelUtils, filter_string)
    models = RegisteredModel.objects.filter(workspace=workspace)
    for clause in parsed:
        key, op, value = clause["key"], clause["comparator"], clause["value"]
        if clause["type"] == "attribute":
            if key != "name":
                raise InvalidParameter(f"Invalid attribute name: {key}")
            if op not in ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"):
                raise InvalidParameter(f"Invalid comparator for attribute: {op}")
            models = models.filter(field_comparison("name", op, value))
        elif clause["type"] == "tag":
            if op not in SearchModelUtils.VALID_TAG_COMPARATORS:
                raise InvalidParameter(f"Invalid comparator for tag: {op}")
            if key == IS_PROMPT_TAG:
                continue
            tags = RegisteredModelTag.objects.filter(registered_model=OuterRef("pk"), key=key)
            models = models.filter(Exists(tags.filter(field_comparison("value", op, value))))
        else:
            raise InvalidParameter(f"Invalid token type: {clause['type']}")
    prompts = RegisteredModelTag.objects.filter(
        registered_model=OuterRef("pk"), key=IS_PROMPT_TAG, value="true"
    )
    models = models.filter(Exists(prompts) if _queries_prompts(parsed) else ~Exists(prompts))
    models = models.order_by(*_registered_model_ordering(order_by or []))
    offset = page_offset(page_token)
    rows = list(models[offset : offset + max_results + 1])
    token = page_token_for(offset + max_results) if len(rows) > max_results else None
    return rows[:max_results], token


def _registered_model_ordering(order_by: list[str]) -> list[Any]:
    clauses: list[Any] = []
    seen: set[str] = set()
    for clause in order_by:
        try:
            key, ascending = SearchUtils.parse_order_by_for_search_registered_models(clause)
        except MlflowException as exc:
            raise InvalidParameter(exc.message) from None
        if key == "name":
            field = "name"
        elif key in SearchUtils.VALID_TIMESTAMP_ORDER_BY_KEYS:
            field = "last_updated_timestamp"
        else:
            raise InvalidParameter(
                f"Invalid order by key '{key}' specified.Valid keys are "
                f"'{SearchUtils.RECOMMENDED_ORDER_BY_KEYS_REGISTERED_MODELS}'"
            )
        if field in seen:
            raise InvalidParameter(f"`order_by` contains duplicate fields: {order_by}")
        seen.add(field)
        clauses.append(F(field).asc() if ascending else F(field).desc())
    if "name" not in seen:
        clauses.append(F("name").asc())
    return clauses


_VERSION_FIELDS = {
    "name": "registered_model__name",
    "version_number": "version",
    "run_id": "run_id",
    "source_path": "source",
    "creation_timestamp": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
}


def model_version_search(
    *,
    workspace: Workspace,
    filter_string: str = "",
    max_results: int | None = None,
    order_by: list[str] | None = None,
    page_token: str = "",
) -> tuple[list[ModelVersion], str | None]:
    """A page of the workspace's live model versions and the token of the next page."""
    max_results = MODEL_VERSIONS_MAX_RESULTS if max_results is None else max_results
    if max_results < 1:
        raise InvalidParameter(
            f"Invalid value for max_results. It must be a positive integer, but got {max_results}"
        )
    if max_results > MODEL_VERSIONS_MAX_RESULTS:
        raise InvalidParameter(
            "Invalid value for request parameter max_results. It must be at most "
            f"{MODEL_VERSIONS_MAX_RESULTS}, but got value {max_results}"
        )
    parsed = _parse_filter(SearchModelVersionUtils, filter_string)
    versions = _active_versions().filter(registered_model__workspace=workspace)
    for clause in parsed:
        versions = versions.filter(_version_clause(clause))
    prompts = RegisteredModelTag.objects.filter(
        registered_model=OuterRef("registered_model"), key=IS_PROMPT_TAG, value="true"
    )
    versions = versions.filter(Exists(prompts) if _queries_prompts(parsed) else ~Exists(prompts))
    ordering = _version_ordering(
        order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]
    )
    versions = versions.select_related("registered_model").order_by(*ordering)
    offset = page_offset(page_token)
    rows = list(versions[offset : offset + max_results + 1])
    token = page_token_for(offset + max_results) if len(rows) > max_results else None
    return rows[:max_results], token


def _version_clause(clause: dict[str, Any]) -> Q:
    key, op, value = clause["key"], clause["comparator"], clause["value"]
    if clause["type"] == "tag":
        if op not in SearchModelVersionUtils.VALID_TAG_COMPARATORS:
            raise InvalidParameter(f"Invalid comparator for tag: {op}")
        if key == IS_PROMPT_TAG:
            return Q()
        tags = ModelVersionTag.objects.filter(model_version=OuterRef("pk"), key=key)
        return Q(Exists(tags.filter(field_comparison("value", op, value))))
    if clause["type"] != "attribute":
        raise InvalidParameter(f"Invalid token type: {clause['type']}")
    if key not in SearchModelVersionUtils.VALID_SEARCH_ATTRIBUTE_KEYS:
        raise InvalidParameter(f"Invalid attribute name: {key}")
    if key in SearchModelVersionUtils.NUMERIC_ATTRIBUTES:
        if op not in SearchModelVersionUtils.VALID_NUMERIC_ATTRIBUTE_COMPARATORS:
            raise InvalidParameter(f"Invalid comparator for attribute {key}: {op}")
        if isinstance(value, float):
            raise InvalidParameter(f"Invalid value for numeric attribute '{key}': {value!r}")
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise InvalidParameter(
                f"Invalid value for numeric attribute '{key}': {value!r}"
            ) from None
    elif op not in SearchModelVersionUtils.VALID_STRING_ATTRIBUTE_COMPARATORS or (
        op in ("IN", "NOT IN") and key not in ("run_id", "name")
    ):
        raise InvalidParameter(f"Invalid comparator for attribute: {op}")
    return field_comparison(_VERSION_FIELDS[key], op, value)


def _version_ordering(order_by: list[str]) -> list[Any]:
    clauses: list[Any] = []
    seen: set[str] = set()
    for clause in order_by:
        try:
            _, key, ascending = SearchModelVersionUtils.parse_order_by_for_search_model_versions(
                clause
            )
        except MlflowException as exc:
            raise InvalidParameter(exc.message) from None
        if key not in SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS:
            raise InvalidParameter(
                f"Invalid order by key '{key}' specified. Valid keys are "
                f"{SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS}"
            )
        field = _VERSION_FIELDS[key]
        if field in seen:
            raise InvalidParameter(f"`order_by` contains duplicate fields: {order_by}")
        seen.add(field)
        clauses.append(F(field).asc() if ascending else F(field).desc())
    if "registered_model__name" not in seen:
        clauses.append(F("registered_model__name").asc())
    if "version" not in seen:
        clauses.append(F("version").desc())
    return clauses


# --- MLflow JSON -------------------------------------------------------------------------------


def model_versions_data(versions: Iterable[ModelVersion]) -> list[dict[str, Any]]:
    """Model versions as the MLflow protocol writes them, tags and aliases included, in
    two queries for any number of versions. Each version's `registered_model` should be
    loaded (select_related) or it costs one query per model."""
    versions = list(versions)
    if not versions:
        return []
    tags: dict[int, list[dict[str, str]]] = defaultdict(list)
    for tag in ModelVersionTag.objects.filter(model_version__in=versions).order_by("key"):
        tags[tag.model_version_id].append({"key": tag.key, "value": tag.value})
    aliases: dict[tuple[int, int], list[str]] = defaultdict(list)
    rows = RegisteredModelAlias.objects.filter(
        registered_model_id__in={v.registered_model_id for v in versions}
    ).order_by("alias")
    for row in rows:
        aliases[(row.registered_model_id, row.version)].append(row.alias)
    return [
        _model_version_data(v, tags[v.pk], aliases[(v.registered_model_id, v.version)])
        for v in versions
    ]


def _model_version_data(
    version: ModelVersion, tags: list[dict[str, str]], aliases: list[str]
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": version.registered_model.name,
        "version": str(version.version),
        "creation_timestamp": version.creation_timestamp,
        "last_updated_timestamp": version.last_updated_timestamp,
        "current_stage": version.current_stage,
        "description": version.description,
        "source": version.source,
        "run_id": version.run_id,
        "run_link": version.run_link,
        "status": version.status,
        "tags": tags,
        "aliases": aliases,
    }
    if version.user_id:
        data["user_id"] = version.user_id
    if version.status_message:
        data["status_message"] = version.status_message
    if version.model_id:
        data["model_id"] = version.model_id
    return data


def registered_models_data(models: Iterable[RegisteredModel]) -> list[dict[str, Any]]:
    """Registered models as the MLflow protocol writes them: tags, aliases and the newest
    version per stage, in a fixed number of queries."""
    models = list(models)
    if not models:
        return []
    pks = [m.pk for m in models]
    by_pk = {m.pk: m for m in models}
    latest = _latest_by_model(pks)
    for versions in latest.values():
        for version in versions:
            version.registered_model = by_pk[version.registered_model_id]
    rendered = iter(model_versions_data([v for pk in pks for v in latest.get(pk, [])]))
    latest_data = {pk: [next(rendered) for _ in latest.get(pk, [])] for pk in pks}
    tags: dict[int, list[dict[str, str]]] = defaultdict(list)
    for tag in RegisteredModelTag.objects.filter(registered_model_id__in=pks).order_by("key"):
        tags[tag.registered_model_id].append({"key": tag.key, "value": tag.value})
    aliases: dict[int, list[dict[str, str]]] = defaultdict(list)
    rows = RegisteredModelAlias.objects.filter(registered_model_id__in=pks).order_by("alias")
    for row in rows:
        aliases[row.registered_model_id].append({"alias": row.alias, "version": str(row.version)})
    result = []
    for model in models:
        data: dict[str, Any] = {
            "name": model.name,
            "creation_timestamp": model.creation_timestamp,
            "last_updated_timestamp": model.last_updated_timestamp,
            "latest_versions": latest_data[model.pk],
            "tags": tags[model.pk],
            "aliases": aliases[model.pk],
        }
        if model.description:
            data["description"] = model.description
        result.append(data)
    return result
