"""Writes of the model registry: registered models, versions, tags, aliases, stages.

A version's `source` must be inside this workspace; see `model_sources.resolve_source`.

Creating, renaming and deleting a registered model and deleting a version take the
acting user (`actor`, None for the system) and write their audit entry in the same
transaction. Versions created, tags, aliases and stages are not audited: they come with
every `log_model(registered_model_name=...)` and are the registry's own history.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from mlflow.entities.model_registry.model_version_stages import (
    DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS,
    STAGE_ARCHIVED,
    STAGE_DELETED_INTERNAL,
    get_canonical_stage,
)
from mlflow.prompt.constants import _PROMPT_SOURCE_PLACEHOLDERS as PROMPT_SOURCES
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

from portal.errors import AlreadyExists, InvalidParameter
from portal.models import Workspace
from portal.services import audit_record
from tracking.models import (
    LoggedModel,
    LoggedModelTag,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from tracking.selectors.registry import (
    IS_PROMPT_TAG,
    model_version_get,
    registered_model_get,
)
from tracking.services.model_sources import Source, resolve_source

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
    actor: AbstractBaseUser | None,
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
    audit_record(actor=actor, action="create", target=model)
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
def registered_model_rename(
    *, workspace: Workspace, name: str, new_name: str, actor: AbstractBaseUser | None
) -> RegisteredModel:
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
    audit_record(actor=actor, action="rename", target=model, changes={"name": [name, new_name]})
    return model


@transaction.atomic
def registered_model_delete(
    *, workspace: Workspace, name: str, actor: AbstractBaseUser | None
) -> None:
    """Deletes the model with its versions, tags and aliases (the files stay where the
    runs and logged models keep them)."""
    model = registered_model_get(workspace=workspace, name=name, for_update=True)
    audit_record(actor=actor, action="delete", target=model)  # while it still has its id
    model.delete()


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
        resolved = Source(source, source, "", "")
    else:
        resolved = resolve_source(
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
    resolved: Source,
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
def model_version_delete(
    *, workspace: Workspace, name: str, version: Any, actor: AbstractBaseUser | None
) -> None:
    """Redact the version and keep its row, so its number is never reused; its aliases
    go."""
    found = model_version_get(workspace=workspace, name=name, version=version, for_update=True)
    audit_record(actor=actor, action="delete", target=found)
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
