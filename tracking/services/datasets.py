"""Run inputs: datasets logged with `mlflow.log_input`, and the logged models a run used."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from mlflow.utils.validation import (
    MAX_DATASET_DIGEST_SIZE,
    MAX_DATASET_NAME_SIZE,
    MAX_DATASET_PROFILE_SIZE,
    MAX_DATASET_SCHEMA_SIZE,
    MAX_DATASET_SOURCE_SIZE,
    MAX_DATASETS_PER_BATCH,
    MAX_INPUT_TAG_KEY_SIZE,
    MAX_INPUT_TAG_VALUE_SIZE,
)

from portal.errors import InvalidParameter
from tracking.models import Dataset, Run, RunInput, RunModelInput
from tracking.services.runs import require_active


def _field(data: dict[str, Any], name: str, limit: int, required: bool = True) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise InvalidParameter(f"Dataset is missing its '{name}'.")
        return ""
    if not isinstance(value, str):
        raise InvalidParameter(f"Dataset '{name}' must be a string.")
    if len(value) > limit:
        raise InvalidParameter(f"Dataset '{name}' exceeds the maximum length of {limit}.")
    return value


def _input_tags(raw: Any) -> list[dict[str, str]]:
    tags = []
    for tag in raw or []:
        if not isinstance(tag, dict):
            raise InvalidParameter("Input tags must be objects with key and value.")
        key, value = tag.get("key"), tag.get("value")
        if not isinstance(key, str) or not key or len(key) > MAX_INPUT_TAG_KEY_SIZE:
            raise InvalidParameter("An input tag needs a key of at most 255 characters.")
        if not isinstance(value, str) or len(value) > MAX_INPUT_TAG_VALUE_SIZE:
            raise InvalidParameter("An input tag value must be a string of at most 500 characters.")
        tags.append({"key": key, "value": value})
    return tags


MAX_MODEL_ID_LENGTH = 64  # RunModelInput.model_id


def _model_ids(model_inputs: list[dict[str, Any]]) -> list[str]:
    ids = []
    for index, item in enumerate(model_inputs):
        model_id = item.get("model_id") if isinstance(item, dict) else None
        if not isinstance(model_id, str) or not model_id:
            raise InvalidParameter(
                f"Missing value for required parameter 'models[{index}].model_id'."
            )
        if len(model_id) > MAX_MODEL_ID_LENGTH or "\x00" in model_id:
            raise InvalidParameter(
                f"Invalid value for 'models[{index}].model_id': at most "
                f"{MAX_MODEL_ID_LENGTH} characters."
            )
        ids.append(model_id)
    return list(dict.fromkeys(ids))


@transaction.atomic
def run_log_inputs(
    *,
    run: Run,
    dataset_inputs: list[dict[str, Any]],
    model_inputs: list[dict[str, Any]] | None = None,
) -> None:
    """Attach datasets to the run (a dataset is shared per (experiment, name, digest)) and
    the logged models it used. A model id is kept as given, as `mlflow server` keeps it
    without looking it up; it is only ever echoed back with the run. Logging the same
    model again records nothing new."""
    require_active(run)
    if len(dataset_inputs) > MAX_DATASETS_PER_BATCH:
        raise InvalidParameter(f"At most {MAX_DATASETS_PER_BATCH} datasets per request.")
    model_ids = _model_ids(model_inputs or [])
    for item in dataset_inputs:
        if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
            raise InvalidParameter("Each dataset input needs a 'dataset' object.")
        data = item["dataset"]
        name = _field(data, "name", MAX_DATASET_NAME_SIZE)
        digest = _field(data, "digest", MAX_DATASET_DIGEST_SIZE)
        fields = {
            "source_type": _field(data, "source_type", 36),
            "source": _field(data, "source", MAX_DATASET_SOURCE_SIZE),
            "schema": _field(data, "schema", MAX_DATASET_SCHEMA_SIZE, required=False),
            "profile": _field(data, "profile", MAX_DATASET_PROFILE_SIZE, required=False),
        }
        tags = _input_tags(item.get("tags"))
        dataset = Dataset.objects.filter(
            experiment_id=run.experiment_id, name=name, digest=digest
        ).first()
        if dataset is None:
            try:
                with transaction.atomic():
                    dataset = Dataset.objects.create(
                        dataset_uuid=uuid.uuid4().hex,
                        experiment_id=run.experiment_id,
                        name=name,
                        digest=digest,
                        **fields,
                    )
            except IntegrityError:
                dataset = Dataset.objects.get(
                    experiment_id=run.experiment_id, name=name, digest=digest
                )
        RunInput.objects.update_or_create(run=run, dataset=dataset, defaults={"tags": tags})
    if model_ids:
        RunModelInput.objects.bulk_create(
            [RunModelInput(run=run, model_id=model_id) for model_id in model_ids],
            ignore_conflicts=True,
        )
