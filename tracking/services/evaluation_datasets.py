"""Evaluation dataset writes: create, delete, tags, record upserts and deletes, links to
experiments; as mlflow's SQL store does them (`SqlAlchemyStore.create_dataset`,
`upsert_dataset_records`, ...).

What mlflow's store computes, so do we: the digest (the first 8 hex of the sha256 of
"<name>:<last_update_time>", new on every upsert), the schema (each input, output and
expectation field's JSON type, as first seen) and the profile (`{"num_records": n}`).
A record is found again by the sha256 of its inputs as sorted JSON: upserting the same
inputs merges the new outputs, expectations and tags into it.

Differs on purpose: `created_by`/`last_updated_by` (of datasets and records) are the
authenticated user, not the `mlflow.user` tag the client sends (which stays a tag); and
experiment ids must name experiments of this workspace, on create as on add (mlflow's
create links any id it is given).

Creates, deletes, upserts, record deletes and experiment links are audited; tags are not
(as for experiments)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from mlflow.entities.dataset_record import DatasetRecord
from mlflow.entities.dataset_record_source import DatasetRecordSource
from mlflow.exceptions import MlflowException
from mlflow.utils.time import get_current_time_millis

from portal.errors import InvalidParameter
from portal.models import Workspace
from portal.services import audit_record
from tracking.models import (
    EvaluationDataset,
    EvaluationDatasetExperiment,
    EvaluationDatasetRecord,
    EvaluationDatasetTag,
    Experiment,
)
from tracking.selectors.evaluation_datasets import evaluation_dataset_get

DATASET_ID_PREFIX = "d-"
RECORD_ID_PREFIX = "dr-"
MAX_NAME_LENGTH = 255  # mlflow's columns
MAX_TAG_KEY_LENGTH = 255
MAX_TAG_VALUE_LENGTH = 5000


def _username(actor: AbstractBaseUser | None) -> str:
    if actor is None or not actor.is_authenticated:
        return ""
    return actor.get_username()[:255]


def dataset_digest(name: str, last_update_time: int) -> str:
    return hashlib.sha256(f"{name}:{last_update_time}".encode()).hexdigest()[:8]


def _checked_tags(tags: dict[str, Any]) -> dict[str, str]:
    """Tag values as mlflow stores them: text (`str()` of anything else). A null value
    sets nothing (as mlflow's set does; its create would store a null tag)."""
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_KEY_LENGTH:
            raise InvalidParameter(
                f"A dataset tag key must be 1 to {MAX_TAG_KEY_LENGTH} characters; got {key!r:.300}."
            )
        if value is None:
            continue
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_TAG_VALUE_LENGTH:
            raise InvalidParameter(
                f"The value of dataset tag '{key}' exceeds the maximum length of "
                f"{MAX_TAG_VALUE_LENGTH}."
            )
        checked[key] = text
    return checked


@transaction.atomic
def evaluation_dataset_create(
    *,
    workspace: Workspace,
    name: str,
    experiments: list[Experiment],
    tags: dict[str, Any] | None = None,
    actor: AbstractBaseUser | None,
) -> EvaluationDataset:
    """A new, empty dataset; its schema and profile come with its first records."""
    if not name:
        raise InvalidParameter("Missing value for required parameter 'name'.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(
            f"A dataset name must be at most {MAX_NAME_LENGTH} characters; got {len(name)}."
        )
    checked = _checked_tags(tags or {})
    now = get_current_time_millis()
    user = _username(actor)
    dataset = EvaluationDataset.objects.create(
        dataset_id=f"{DATASET_ID_PREFIX}{uuid.uuid4().hex}",
        workspace=workspace,
        name=name,
        digest=dataset_digest(name, now),
        created_time=now,
        last_update_time=now,
        created_by=user,
        last_updated_by=user,
    )
    EvaluationDatasetTag.objects.bulk_create(
        [EvaluationDatasetTag(dataset=dataset, key=k, value=v) for k, v in checked.items()]
    )
    _link(dataset, experiments, now)
    audit_record(actor=actor, action="create", target=dataset)
    return dataset


def _link(dataset: EvaluationDataset, experiments: list[Experiment], now: int) -> int:
    linked = set(
        EvaluationDatasetExperiment.objects.filter(dataset=dataset).values_list(
            "experiment_id", flat=True
        )
    )
    new = {e.pk: e for e in experiments if e.pk not in linked}
    EvaluationDatasetExperiment.objects.bulk_create(
        [
            EvaluationDatasetExperiment(dataset=dataset, experiment=e, created_time=now)
            for e in new.values()
        ]
    )
    return len(new)


@transaction.atomic
def evaluation_dataset_delete(
    *, workspace: Workspace, dataset_id: str, actor: AbstractBaseUser | None
) -> None:
    """For good, with its records, tags and links. A dataset that is not there is no
    error (mlflow's delete is idempotent)."""
    dataset = (
        EvaluationDataset.objects.filter(workspace=workspace, dataset_id=dataset_id)
        .select_for_update()
        .first()
    )
    if dataset is None:
        return
    audit_record(actor=actor, action="delete", target=dataset)
    dataset.delete()


@transaction.atomic
def evaluation_dataset_tags_set(
    *, workspace: Workspace, dataset_id: str, tags: dict[str, Any]
) -> None:
    """Merge: the keys given get their new values, the others stay."""
    dataset = evaluation_dataset_get(
        workspace=workspace,
        dataset_id=dataset_id,
        for_update=True,
        message=f"Could not find evaluation dataset with ID {dataset_id}",
    )
    checked = _checked_tags(tags)
    EvaluationDatasetTag.objects.bulk_create(
        [EvaluationDatasetTag(dataset=dataset, key=k, value=v) for k, v in checked.items()],
        update_conflicts=True,
        unique_fields=["dataset", "key"],
        update_fields=["value"],
    )


def evaluation_dataset_tag_delete(*, workspace: Workspace, dataset_id: str, key: str) -> None:
    """Idempotent, as mlflow's: no dataset or no such tag is no error."""
    EvaluationDatasetTag.objects.filter(
        dataset__workspace=workspace, dataset__dataset_id=dataset_id, key=key
    ).delete()


# --- Records ---------------------------------------------------------------------------


def input_hash(inputs: dict[str, Any]) -> str:
    """mlflow's: the sha256 of the inputs as JSON with sorted keys (Python's defaults)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _field_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _schema(existing: str, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The stored schema with the fields these records add; a field keeps its first type."""
    if not records and not existing:
        return None
    schema = (
        json.loads(existing)
        if existing
        else {"inputs": {}, "outputs": {}, "expectations": {}, "version": "1.0"}
    )
    for record in records:
        for key, value in (record.get("inputs") or {}).items():
            schema["inputs"].setdefault(key, _field_type(value))
        outputs = record.get("outputs")
        if isinstance(outputs, dict):
            for key, value in outputs.items():
                schema["outputs"].setdefault(key, _field_type(value))
        elif outputs is not None and not schema["outputs"]:
            schema["outputs"] = _field_type(outputs)
        for key, value in (record.get("expectations") or {}).items():
            schema["expectations"].setdefault(key, _field_type(value))
    return schema


def _optional_dict(record: dict[str, Any], name: str, index: int) -> dict[str, Any] | None:
    value = record.get(name)
    if value is not None and not isinstance(value, dict):
        raise InvalidParameter(f"Record {index}: '{name}' must be an object.")
    return value


def _checked_record(record: Any, index: int) -> dict[str, Any]:
    """The record with its source read as mlflow reads it; a record without inputs has
    empty ones (as mlflow's store takes it)."""
    if not isinstance(record, dict):
        raise InvalidParameter(f"Record {index} must be an object.")
    if record.get("inputs") is None:
        record = {**record, "inputs": {}}
    _optional_dict(record, "inputs", index)
    _optional_dict(record, "expectations", index)
    _optional_dict(record, "tags", index)
    source = record.get("source")
    if source:
        source_data = source.get("source_data") if isinstance(source, dict) else None
        if not isinstance(source, dict) or not isinstance(source_data or {}, dict):
            raise InvalidParameter(
                f"Record {index}: 'source' must be an object with a 'source_type' and an "
                "object 'source_data'."
            )
        try:
            DatasetRecordSource.from_dict(source)
        except MlflowException as exc:
            raise InvalidParameter(f"Record {index}: {exc.message}") from None
        except TypeError:
            raise InvalidParameter(
                f"Record {index}: 'source' takes 'source_type' and 'source_data' only."
            ) from None
    return record


def _new_record(
    dataset: EvaluationDataset, record: dict[str, Any], hashed: str, now: int, user: str
) -> EvaluationDatasetRecord:
    source = DatasetRecordSource.from_dict(record["source"]) if record.get("source") else None
    # mlflow's entity derives source_id and source_type from the source.
    entity = DatasetRecord(
        dataset_id=dataset.dataset_id,
        inputs=record["inputs"],
        dataset_record_id="",
        created_time=now,
        last_update_time=now,
        source=source,
    )
    return EvaluationDatasetRecord(
        record_id=f"{RECORD_ID_PREFIX}{uuid.uuid4().hex}",
        dataset=dataset,
        input_hash=hashed,
        inputs=record["inputs"],
        outputs=record.get("outputs", {}),
        expectations=record.get("expectations"),
        tags=record.get("tags") or {},
        source=source.to_dict() if source else None,
        source_id=entity.source_id or "",
        source_type=entity.source_type or "",
        created_time=now,
        last_update_time=now,
        created_by=user,
        last_updated_by=user,
    )


def _merge(row: EvaluationDatasetRecord, record: dict[str, Any], now: int, user: str) -> None:
    """mlflow's merge: outputs replaced when given, expectations and tags merged."""
    if "outputs" in record:
        row.outputs = record["outputs"]
    if record.get("expectations"):
        row.expectations = {**(row.expectations or {}), **record["expectations"]}
    if record.get("tags"):
        row.tags = {**(row.tags or {}), **record["tags"]}
    row.last_update_time = now
    row.last_updated_by = user


@transaction.atomic
def evaluation_dataset_records_upsert(
    *,
    workspace: Workspace,
    dataset_id: str,
    records: list[Any],
    actor: AbstractBaseUser | None,
) -> dict[str, int]:
    """Insert records with new inputs, merge into those whose inputs are known (also
    within this batch); then the dataset's schema, profile, digest and update time.
    Returns mlflow's counts: {"inserted": n, "updated": m}."""
    dataset = evaluation_dataset_get(
        workspace=workspace,
        dataset_id=dataset_id,
        for_update=True,
        message=f"Dataset '{dataset_id}' not found.",
    )
    checked = [_checked_record(record, index) for index, record in enumerate(records)]
    now = get_current_time_millis()
    user = _username(actor)
    hashes = [input_hash(record["inputs"]) for record in checked]
    known = {
        row.input_hash: row
        for row in EvaluationDatasetRecord.objects.filter(
            dataset=dataset, input_hash__in=set(hashes)
        )
    }
    new: dict[str, EvaluationDatasetRecord] = {}
    updated: dict[str, EvaluationDatasetRecord] = {}
    counts = {"inserted": 0, "updated": 0}
    for record, hashed in zip(checked, hashes, strict=True):
        row = new.get(hashed) or known.get(hashed)
        if row is None:
            new[hashed] = _new_record(dataset, record, hashed, now, user)
            counts["inserted"] += 1
            continue
        _merge(row, record, now, user)
        if hashed in known:
            updated[hashed] = row
        counts["updated"] += 1
    EvaluationDatasetRecord.objects.bulk_create(new.values(), batch_size=500)
    EvaluationDatasetRecord.objects.bulk_update(
        updated.values(),
        ["outputs", "expectations", "tags", "last_update_time", "last_updated_by"],
        batch_size=500,
    )
    schema = _schema(dataset.schema, checked)
    if schema:
        dataset.schema = json.dumps(schema)
    total = EvaluationDatasetRecord.objects.filter(dataset=dataset).count()
    if total:
        dataset.profile = json.dumps({"num_records": total})
    dataset.last_update_time = now
    dataset.last_updated_by = user
    dataset.digest = dataset_digest(dataset.name, now)
    dataset.save(
        update_fields=["schema", "profile", "last_update_time", "last_updated_by", "digest"]
    )
    audit_record(actor=actor, action="update", target=dataset, changes={"records": counts})
    return counts


@transaction.atomic
def evaluation_dataset_records_delete(
    *,
    workspace: Workspace,
    dataset_id: str,
    record_ids: list[str],
    actor: AbstractBaseUser | None,
) -> int:
    """Delete these records of the dataset (ids of none are passed over); the profile
    counts what is left. Returns how many went."""
    dataset = evaluation_dataset_get(
        workspace=workspace,
        dataset_id=dataset_id,
        for_update=True,
        message=f"Dataset '{dataset_id}' not found.",
    )
    deleted, _ = EvaluationDatasetRecord.objects.filter(
        dataset=dataset, record_id__in=record_ids
    ).delete()
    if not deleted:
        return 0
    left = EvaluationDatasetRecord.objects.filter(dataset=dataset).count()
    dataset.profile = json.dumps({"num_records": left}) if left else ""
    dataset.save(update_fields=["profile"])
    audit_record(
        actor=actor, action="update", target=dataset, changes={"records": {"deleted": deleted}}
    )
    return deleted


# --- Experiments -------------------------------------------------------------------------


@transaction.atomic
def evaluation_dataset_experiments_add(
    *,
    workspace: Workspace,
    dataset_id: str,
    experiments: list[Experiment],
    actor: AbstractBaseUser | None,
) -> EvaluationDataset:
    """Link the dataset to these experiments (of this workspace); links it has stay."""
    dataset = evaluation_dataset_get(
        workspace=workspace,
        dataset_id=dataset_id,
        for_update=True,
        message=f"Dataset '{dataset_id}' not found",
    )
    now = get_current_time_millis()
    added = _link(dataset, experiments, now)
    dataset.last_update_time = now
    dataset.save(update_fields=["last_update_time"])
    if added:
        audit_record(
            actor=actor,
            action="update",
            target=dataset,
            changes={"experiments": {"added": sorted(str(e.pk) for e in experiments)}},
        )
    return dataset


@transaction.atomic
def evaluation_dataset_experiments_remove(
    *,
    workspace: Workspace,
    dataset_id: str,
    experiment_pks: list[int],
    actor: AbstractBaseUser | None,
) -> EvaluationDataset:
    """Unlink the dataset from these experiments; ids it is not linked to are passed
    over (mlflow's remove is idempotent)."""
    dataset = evaluation_dataset_get(
        workspace=workspace,
        dataset_id=dataset_id,
        for_update=True,
        message=f"Dataset '{dataset_id}' not found",
    )
    links = EvaluationDatasetExperiment.objects.filter(
        dataset=dataset, experiment_id__in=experiment_pks
    )
    removed = sorted(str(pk) for pk in links.values_list("experiment_id", flat=True))
    if removed:
        links.delete()
        dataset.last_update_time = get_current_time_millis()
        dataset.save(update_fields=["last_update_time"])
        audit_record(
            actor=actor,
            action="update",
            target=dataset,
            changes={"experiments": {"removed": removed}},
        )
    return dataset
