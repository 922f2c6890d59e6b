"""Writes of the model registry: registered models, versions, tags, aliases, stages.

A version's `source` must be inside this workspace; see `_resolve_source`.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from mlflow.entities.model_registry.model_version_stages import (
    DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS,
    STAGE_ARCHIVED,
    STAGE_DELETED_INTERNAL,
    get_canonical_stage,
)
from mlflow.exceptions import MlflowException
from mlflow.prompt.constants import _PROMPT_SOURCE_PLACEHOLDERS as PROMPT_SOURCES
from mlflow.store.artifact.utils.models import _parse_model_uri
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import (
    _validate_model_alias_name,
    _validate_model_alias_name_reserved,
    _validate_model_name,
    _validate_model_renaming,
    _validate_model_version_tag,
    _validate_registered_model_tag,
    _validate_tag_name,
)

from portal.errors import AlreadyExists, InvalidParameter, NotFound
from portal.models import Workspace
from tracking.artifacts import artifact_uri_path, clean_artifact_path, join, store_for
from tracking.models import (
    LifecycleStage,
    LoggedModel,
    LoggedModelTag,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Run,
)
from tracking.selectors.registry import (
    IS_PROMPT_TAG,
    model_version_get,
    model_version_resolve,
    registered_model_get,
)

MAX_NAME_LENGTH = 256  # RegisteredModel.name


def _check_name(name: str, field: str = "name") -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(
            f"'{field}' exceeds the maximum length of {MAX_NAME_LENGTH} characters."
        )


def _tag_pairs(tags: list[dict[str, Any]] | None, validate) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for index, tag in enumerate(tags or []):
        key, value = tag.get("key"), tag.get("value", "")
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidParameter(f"Invalid value for parameter 'tags[{index}]'.")
        validate(key, value)
        pairs[key] = value
    return pairs


# --- Registered models -------------------------------------------------------------------------


@transaction.atomic
def registered_model_create(
    *,
    workspace: Workspace,
    name: str,
    tags: list[dict[str, Any]] | None = None,
    description: str = "",
) -> RegisteredModel:
    _validate_model_name(name)
    _check_name(name)
    pairs = _tag_pairs(tags, _validate_registered_model_tag)
    existing = RegisteredModel.objects.filter(workspace=workspace, name=name).first()
    if existing is not None:
        _already_exists(existing, new_is_prompt=pairs.get(IS_PROMPT_TAG, "").lower() == "true")
    now = get_current_time_millis()
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                workspace=workspace,
                name=name,
                description=description or "",
                creation_timestamp=now,
                last_updated_timestamp=now,
            )
    except IntegrityError:
        raise AlreadyExists(f"Registered Model (name={name}) already exists.") from None
    RegisteredModelTag.objects.bulk_create(
        RegisteredModelTag(registered_model=model, key=k, value=v) for k, v in pairs.items()
    )
    return model


def _already_exists(existing: RegisteredModel, *, new_is_prompt: bool) -> None:
    old_is_prompt = RegisteredModelTag.objects.filter(
        registered_model=existing, key=IS_PROMPT_TAG, value__iexact="true"
    ).exists()
    old = "Prompt" if old_is_prompt else "Registered Model"
    new = "Prompt" if new_is_prompt else "Registered Model"
    if old != new:
        raise AlreadyExists(
            f"Tried to create a {new.lower()} with name {existing.name!r}, but the name is "
            f"already taken by a {old.lower()}. MLflow does not allow creating a "
            "model and a prompt with the same name."
        )
    raise AlreadyExists(f"{new} (name={existing.name}) already exists.")


@transaction.atomic
def registered_model_update(
    *, workspace: Workspace, name: str, description: str
) -> RegisteredModel:
    model = registered_model_get(workspace=workspace, name=name, for_update=True)
    model.description = description or ""
    model.last_updated_timestamp = get_current_time_millis()
    model.save(update_fields=["description", "last_updated_timestamp"])
    return model


@transaction.atomic
def registered_model_rename(*, workspace: Workspace, name: str, new_name: str) -> RegisteredModel:
    _validate_model_renaming(new_name)
    _check_name(new_name, "new_name")
    model = registered_model_get(workspace=workspace, name=name, for_update=True)
    if new_name == name:
        return model
    if RegisteredModel.objects.filter(workspace=workspace, name=new_name).exists():
        raise AlreadyExists(f"Registered Model (name={new_name}) already exists.")
    now = get_current_time_millis()
    model.name = new_name
    model.last_updated_timestamp = now
    try:
        with transaction.atomic():
            model.save(update_fields=["name", "last_updated_timestamp"])
    except IntegrityError:
        raise AlreadyExists(f"Registered Model (name={new_name}) already exists.") from None
    ModelVersion.objects.filter(registered_model=model).update(last_updated_timestamp=now)
    return model


@transaction.atomic
def registered_model_delete(*, workspace: Workspace, name: str) -> None:
    """Deletes the model with its versions, tags and aliases (the files stay where the
    runs and logged models keep them)."""
    registered_model_get(workspace=workspace, name=name, for_update=True).delete()


@transaction.atomic
def registered_model_tag_set(*, workspace: Workspace, name: str, key: str, value: str) -> None:
    _validate_registered_model_tag(key, value)
    model = registered_model_get(workspace=workspace, name=name, for_update=True)
    RegisteredModelTag.objects.update_or_create(
        registered_model=model, key=key, defaults={"value": value}
    )


@transaction.atomic
def registered_model_tag_delete(*, workspace: Workspace, name: str, key: str) -> None:
    _validate_tag_name(key)
    model = registered_model_get(workspace=workspace, name=name, for_update=True)
    RegisteredModelTag.objects.filter(registered_model=model, key=key).delete()


@transaction.atomic
def registered_model_alias_set(
    *, workspace: Workspace, name: str, alias: str, version: Any
) -> None:
    _validate_model_alias_name(alias)
    _validate_model_alias_name_reserved(alias)
    found = model_version_get(workspace=workspace, name=name, version=version)
    RegisteredModelAlias.objects.update_or_create(
        registered_model=found.registered_model, alias=alias, defaults={"version": found.version}
    )


@transaction.atomic
def registered_model_alias_delete(*, workspace: Workspace, name: str, alias: str) -> None:
    _validate_model_alias_name(alias)
    model = registered_model_get(workspace=workspace, name=name, for_update=True)
    RegisteredModelAlias.objects.filter(registered_model=model, alias=alias).delete()


# --- Sources -----------------------------------------------------------------------------------


@dataclass
class _Source:
    source: str
    storage_location: str
    run_id: str
    model_id: str


def _invalid_source(source: str, why: str = "") -> InvalidParameter:
    return InvalidParameter(
        f"Invalid model version source: '{source}'. "
        + (why or "A source must be inside this workspace: runs:/<run_id>/<path>, ")
        + (
            ""
            if why
            else "models:/<model_id>, models:/<name>/<version> or mlflow-artifacts:/<path>."
        )
    )


def _safe_relative(source: str, path: str) -> str:
    """A workspace-relative artifact path with no way out of it (the artifact API's own
    check: no `..`, `.`, empty or backslashed segments, control characters, even
    percent-encoded)."""
    try:
        cleaned = clean_artifact_path(path.lstrip("/"))
    except InvalidParameter as exc:
        raise _invalid_source(source, exc.message) from None
    if not cleaned:
        raise _invalid_source(source, "The path is empty.")
    return cleaned


def _within(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def _artifact_path(uri: str) -> str | None:
    """The workspace-relative path of an `mlflow-artifacts:/...` location we created."""
    try:
        return artifact_uri_path(uri)
    except InvalidParameter:
        return None


def _source_run(workspace: Workspace, source: str, run_id: str) -> Run:
    run = Run.objects.filter(workspace=workspace, run_uuid=run_id).first() if run_id else None
    if run is None:
        raise _invalid_source(
            source, "The run_id request parameter must identify a run of this workspace."
        )
    return run


def _source_model(workspace: Workspace, source: str, model_id: str) -> LoggedModel:
    model = (
        LoggedModel.objects.filter(workspace=workspace, model_id=model_id)
        .exclude(lifecycle_stage=LifecycleStage.DELETED)
        .select_related("source_run")
        .first()
        if model_id
        else None
    )
    if model is None:
        raise _invalid_source(
            source, "The model_id request parameter must identify a logged model of this workspace."
        )
    return model


def _resolve_source(*, workspace: Workspace, source: str, run_id: str, model_id: str) -> _Source:
    """Where a new version's files are, refusing anything outside this workspace.

    Accepted: `runs:/<run_id>/<path>` (a run of this workspace), `models:/<model_id>` (a
    logged model of this workspace), `models:/<name>/<version|stage|latest>` and
    `models:/<name>@<alias>` (this workspace's registry) and `mlflow-artifacts:/<path>`
    (workspace-relative, checked for traversal; inside the run's or logged model's
    location when run_id or model_id is given). Everything else — `file:`, local paths,
    other schemes and hosts — is INVALID_PARAMETER_VALUE: the server never reads a path
    or a host a caller names.
    """
    if not source:
        raise InvalidParameter("Missing value for required parameter 'source'.")
    if len(source) > 2000 or re.search(r"[\x00-\x1f]", source):
        raise _invalid_source(source)
    parsed = urllib.parse.urlsplit(source)
    scheme = parsed.scheme.lower()
    if parsed.query or parsed.fragment:
        raise _invalid_source(source, "A source has no query or fragment.")
    if scheme == "models":
        return _resolve_models_source(workspace, source, run_id, model_id)
    if scheme == "runs":
        return _resolve_runs_source(workspace, source, run_id, model_id)
    if scheme == "mlflow-artifacts" and not parsed.netloc:
        path = _safe_relative(source, parsed.path)
        if model_id:
            model = _source_model(workspace, source, model_id)
            if not _within(path, _artifact_path(model.artifact_location) or "\x00"):
                raise _invalid_source(
                    source, "The source must be inside the logged model's artifact location."
                )
            run_id = run_id or (model.source_run.run_uuid if model.source_run else "")
        if run_id:
            run = _source_run(workspace, source, run_id)
            if not model_id and not _within(path, _artifact_path(run.artifact_uri) or "\x00"):
                raise _invalid_source(source, "The source must be inside the run's artifacts.")
        return _Source(f"mlflow-artifacts:/{path}", f"mlflow-artifacts:/{path}", run_id, model_id)
    raise _invalid_source(source)


def _resolve_models_source(
    workspace: Workspace, source: str, run_id: str, model_id: str
) -> _Source:
    parsed = urllib.parse.urlsplit(source)
    if parsed.netloc:
        raise _invalid_source(
            source, "Registered model sources must use this workspace's model registry."
        )
    try:
        uri = _parse_model_uri(source)
    except MlflowException:
        raise _invalid_source(source) from None
    if uri.model_id is not None:
        if model_id and model_id != uri.model_id:
            raise _invalid_source(
                source, "The model_id request parameter must match the source's model."
            )
        model = _source_model(workspace, source, uri.model_id)
        run_id = run_id or (model.source_run.run_uuid if model.source_run else "")
        if run_id:
            _source_run(workspace, source, run_id)
        return _Source(source, model.artifact_location, run_id, model.model_id)
    try:
        origin = model_version_resolve(
            workspace=workspace,
            uri_name=uri.name,
            version=uri.version,
            stage=uri.stage,
            alias=uri.alias,
        )
    except NotFound as exc:
        raise _invalid_source(source, exc.message) from None
    if (run_id and run_id != origin.run_id) or (model_id and model_id != origin.model_id):
        raise _invalid_source(
            source,
            "The run_id and model_id request parameters must match the referenced model version.",
        )
    return _Source(
        f"models:/{origin.registered_model.name}/{origin.version}",
        origin.storage_location or origin.source,
        origin.run_id,
        origin.model_id,
    )


def _resolve_runs_source(workspace: Workspace, source: str, run_id: str, model_id: str) -> _Source:
    parsed = urllib.parse.urlsplit(source)
    if parsed.netloc:
        raise _invalid_source(source, "A runs:/ source is runs:/<run_id>/<path>, with no host.")
    source_run_id, _, path = parsed.path.lstrip("/").partition("/")
    if run_id and run_id != source_run_id:
        raise _invalid_source(source, "The run_id request parameter must match the source's run.")
    run = _source_run(workspace, source, source_run_id)
    path = _safe_relative(source, path) if path.strip("/") else ""
    # MLflow 3 keeps a model's files with the logged model, not the run: like the client,
    # take the run's own folder when it holds an MLmodel, else the run's logged model of
    # that name.
    run_root = _artifact_path(run.artifact_uri)
    has_mlmodel = (
        bool(path)
        and run_root is not None
        and not model_id
        and store_for(workspace).exists(join(run_root, path, "MLmodel"))
    )
    if has_mlmodel:
        return _Source(source, f"{run.artifact_uri.rstrip('/')}/{path}", run.run_uuid, "")
    logged = None
    if path:
        models = (
            LoggedModel.objects.filter(workspace=workspace, source_run=run, name=path)
            .exclude(lifecycle_stage=LifecycleStage.DELETED)
            .order_by("-creation_timestamp_ms")
        )
        if model_id:
            models = models.filter(model_id=model_id)
        logged = models.first()
    if model_id and logged is None:
        raise _invalid_source(source, "The model_id request parameter must match the source.")
    if logged is not None:
        return _Source(source, logged.artifact_location, run.run_uuid, logged.model_id)
    location = run.artifact_uri.rstrip("/") + (f"/{path}" if path else "")
    return _Source(source, location, run.run_uuid, "")


# --- Model versions ----------------------------------------------------------------------------


def model_version_create(
    *,
    workspace: Workspace,
    name: str,
    source: str,
    run_id: str = "",
    model_id: str = "",
    tags: list[dict[str, Any]] | None = None,
    run_link: str = "",
    description: str = "",
    user_id: str = "",
) -> ModelVersion:
    """The next version of a registered model of this workspace, from a source inside
    this workspace. Numbers only grow: a deleted version's number is never reused."""
    _validate_model_name(name)
    pairs = _tag_pairs(tags, _validate_model_version_tag)
    if pairs.get(IS_PROMPT_TAG, "").lower() == "true":
        if source not in PROMPT_SOURCES:
            raise InvalidParameter(
                f"Invalid prompt source: '{source}'. Prompt sources must use an MLflow placeholder."
            )
        resolved = _Source(source, source, "", "")
    else:
        resolved = _resolve_source(
            workspace=workspace, source=source, run_id=run_id or "", model_id=model_id or ""
        )
    for attempt in range(3):
        try:
            return _create_version(workspace, name, resolved, pairs, run_link, description, user_id)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _create_version(
    workspace: Workspace,
    name: str,
    resolved: _Source,
    tags: dict[str, str],
    run_link: str,
    description: str,
    user_id: str,
) -> ModelVersion:
    model = registered_model_get(workspace=workspace, name=name, for_update=True)
    now = get_current_time_millis()
    top = ModelVersion.objects.filter(registered_model=model).aggregate(top=Max("version"))["top"]
    version = ModelVersion.objects.create(
        registered_model=model,
        version=(top or 0) + 1,
        description=description or "",
        creation_timestamp=now,
        last_updated_timestamp=now,
        user_id=user_id or "",
        source=resolved.source,
        storage_location=resolved.storage_location,
        run_id=resolved.run_id,
        run_link=run_link or "",
        model_id=resolved.model_id,
    )
    ModelVersionTag.objects.bulk_create(
        ModelVersionTag(model_version=version, key=k, value=v) for k, v in tags.items()
    )
    model.last_updated_timestamp = now
    model.save(update_fields=["last_updated_timestamp"])
    if resolved.model_id:
        _record_on_logged_model(workspace, resolved.model_id, name, version.version)
    return version


def _record_on_logged_model(workspace: Workspace, model_id: str, name: str, version: int) -> None:
    """The `mlflow.modelVersions` tag on the logged model lists the versions made from it."""
    logged = LoggedModel.objects.filter(workspace=workspace, model_id=model_id).first()
    if logged is None:
        return
    entry = {"name": name, "version": version}
    tag = LoggedModelTag.objects.filter(model=logged, key=MLFLOW_MODEL_VERSIONS).first()
    entries: list[Any] = []
    if tag is not None:
        try:
            entries = json.loads(tag.value)
        except ValueError:
            entries = []
        if not isinstance(entries, list):
            entries = []
    if entry not in entries:
        entries.append(entry)
    LoggedModelTag.objects.update_or_create(
        model=logged, key=MLFLOW_MODEL_VERSIONS, defaults={"value": json.dumps(entries)}
    )


def _touch_model(version: ModelVersion, now: int) -> None:
    model = version.registered_model
    model.last_updated_timestamp = now
    model.save(update_fields=["last_updated_timestamp"])


@transaction.atomic
def model_version_update(
    *, workspace: Workspace, name: str, version: Any, description: str
) -> ModelVersion:
    found = model_version_get(workspace=workspace, name=name, version=version, for_update=True)
    found.description = description or ""
    found.last_updated_timestamp = get_current_time_millis()
    found.save(update_fields=["description", "last_updated_timestamp"])
    return found


@transaction.atomic
def model_version_transition_stage(
    *,
    workspace: Workspace,
    name: str,
    version: Any,
    stage: str,
    archive_existing_versions: bool = False,
) -> ModelVersion:
    canonical = get_canonical_stage(stage)
    if archive_existing_versions and canonical not in DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS:
        raise InvalidParameter(
            "Model version transition cannot archive existing model versions because "
            f"'{stage}' is not an Active stage. Valid stages are "
            f"{DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS}"
        )
    found = model_version_get(workspace=workspace, name=name, version=version, for_update=True)
    now = get_current_time_millis()
    if archive_existing_versions:
        ModelVersion.objects.filter(
            registered_model=found.registered_model, current_stage=canonical
        ).exclude(pk=found.pk).update(current_stage=STAGE_ARCHIVED, last_updated_timestamp=now)
    found.current_stage = canonical
    found.last_updated_timestamp = now
    found.save(update_fields=["current_stage", "last_updated_timestamp"])
    _touch_model(found, now)
    return found


@transaction.atomic
def model_version_delete(*, workspace: Workspace, name: str, version: Any) -> None:
    """Redact the version and keep its row, so its number is never reused; its aliases
    go."""
    found = model_version_get(workspace=workspace, name=name, version=version, for_update=True)
    now = get_current_time_millis()
    RegisteredModelAlias.objects.filter(
        registered_model=found.registered_model, version=found.version
    ).delete()
    found.current_stage = STAGE_DELETED_INTERNAL
    found.last_updated_timestamp = now
    found.description = ""
    found.user_id = ""
    found.source = "REDACTED-SOURCE-PATH"
    found.storage_location = ""
    found.run_id = "REDACTED-RUN-ID"
    found.run_link = "REDACTED-RUN-LINK"
    found.status_message = ""
    found.save()
    _touch_model(found, now)


@transaction.atomic
def model_version_tag_set(
    *, workspace: Workspace, name: str, version: Any, key: str, value: str
) -> None:
    _validate_model_version_tag(key, value)
    found = model_version_get(workspace=workspace, name=name, version=version, for_update=True)
    ModelVersionTag.objects.update_or_create(
        model_version=found, key=key, defaults={"value": value}
    )


@transaction.atomic
def model_version_tag_delete(*, workspace: Workspace, name: str, version: Any, key: str) -> None:
    _validate_tag_name(key)
    found = model_version_get(workspace=workspace, name=name, version=version, for_update=True)
    ModelVersionTag.objects.filter(model_version=found, key=key).delete()
