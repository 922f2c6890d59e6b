"""Writes of MLflow 3 logged models, and of what runs record about them: outputs, the
metrics logged with a model_id, the legacy `mlflow.log-model.history` run tag.

Deleting a logged model takes the acting user (`actor`) and is audited; creating,
finalizing and logging to one are not (they come with every `log_model`)."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_MODELS
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import (
    MAX_DATASET_DIGEST_SIZE,
    MAX_DATASET_NAME_SIZE,
    _validate_logged_model_name,
    _validate_param,
    _validate_tag,
)

from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from portal.services import audit_record
from tracking.models import (
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    Run,
    RunOutput,
    RunTag,
)
from tracking.selectors.core import experiment_get, is_default_id, mlflow_experiment_id, run_get
from tracking.selectors.logged_models import logged_model_get
from tracking.services.experiments import default_experiment

MODELS_FOLDER = "models"
ARTIFACTS_FOLDER = "artifacts"
MAX_NAME_LENGTH = 500  # LoggedModel.name and model_type
MAX_SOURCE_RUN_ID_LENGTH = 64  # LoggedModel.source_run_uuid


def require_active_run(run: Run) -> None:
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(
            f"The run {run.run_uuid} must be in the 'active' state. "
            f"Current state is {run.lifecycle_stage}."
        )


def _require_active_experiment(experiment: Experiment) -> None:
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(
            f"The experiment {mlflow_experiment_id(experiment)} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )


def _random_name() -> str:
    from mlflow.utils.name_utils import _generate_random_name

    return _generate_random_name()


def _checked_params(params: list[dict[str, Any]]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for index, param in enumerate(params):
        key, value = param.get("key"), param.get("value", "")
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidParameter(f"Invalid value for parameter 'params[{index}]'.")
        valid = _validate_param(key, value, path=f"params[{index}]")
        checked[valid.key] = valid.value
    return checked


def _checked_tags(tags: list[dict[str, Any]]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for index, tag in enumerate(tags):
        key, value = tag.get("key"), tag.get("value", "")
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidParameter(f"Invalid value for parameter 'tags[{index}]'.")
        valid = _validate_tag(key, value, path=f"tags[{index}]")
        checked[valid.key] = valid.value
    return checked


def _source_run(workspace: Workspace, source_run_id: str) -> Run | None:
    """The run a new model came from, if it is one of this workspace. The id is kept as
    given either way, as `mlflow server` keeps it without looking the run up; only a run
    of this workspace is ever linked, so another workspace's never resolves."""
    if not source_run_id:
        return None
    if not isinstance(source_run_id, str) or len(source_run_id) > MAX_SOURCE_RUN_ID_LENGTH:
        raise InvalidParameter(
            f"'source_run_id' must be a string of at most {MAX_SOURCE_RUN_ID_LENGTH} characters."
        )
    if "\x00" in source_run_id:
        raise InvalidParameter("'source_run_id' must not contain NUL characters.")
    return Run.objects.filter(workspace=workspace, run_uuid=source_run_id).first()


@transaction.atomic
def logged_model_create(
    *,
    workspace: Workspace,
    experiment_id: str,
    name: str | None = None,
    model_type: str = "",
    source_run_id: str = "",
    params: list[dict[str, Any]] | None = None,
    tags: list[dict[str, Any]] | None = None,
) -> LoggedModel:
    """A PENDING logged model in an active experiment of this workspace; its artifacts
    go under the experiment's location, `<location>/models/<model_id>/artifacts`."""
    _validate_logged_model_name(name)
    for field, value in (("name", name or ""), ("model_type", model_type or "")):
        if len(value) > MAX_NAME_LENGTH:
            raise InvalidParameter(
                f"'{field}' exceeds the maximum length of {MAX_NAME_LENGTH} characters."
            )
    if is_default_id(experiment_id):
        experiment = default_experiment(workspace=workspace)
    else:
        experiment = experiment_get(workspace=workspace, experiment_id=experiment_id)
    _require_active_experiment(experiment)
    source_run = _source_run(workspace, source_run_id or "")
    checked_params = _checked_params(params or [])
    checked_tags = _checked_tags(tags or [])
    model_id = f"m-{uuid.uuid4().hex}"
    now = get_current_time_millis()
    model = LoggedModel.objects.create(
        model_id=model_id,
        workspace=workspace,
        experiment=experiment,
        name=name or _random_name(),
        artifact_location="/".join(
            [experiment.artifact_location.rstrip("/"), MODELS_FOLDER, model_id, ARTIFACTS_FOLDER]
        ),
        creation_timestamp_ms=now,
        last_updated_timestamp_ms=now,
        status=LoggedModel.Status.PENDING,
        model_type=model_type or "",
        source_run=source_run,
        source_run_uuid=source_run_id or "",
    )
    LoggedModelParam.objects.bulk_create(
        LoggedModelParam(model=model, key=k, value=v) for k, v in checked_params.items()
    )
    LoggedModelTag.objects.bulk_create(
        LoggedModelTag(model=model, key=k, value=v) for k, v in checked_tags.items()
    )
    return model


@transaction.atomic
def logged_model_params_log(
    *, workspace: Workspace, model_id: str, params: list[dict[str, Any]]
) -> LoggedModel:
    """Params are immutable: logging the same value again is a no-op, a different one is
    refused."""
    model = logged_model_get(workspace=workspace, model_id=model_id, for_update=True)
    checked = _checked_params(params)
    existing = dict(
        LoggedModelParam.objects.filter(model=model, key__in=checked).values_list("key", "value")
    )
    for key, value in checked.items():
        if key in existing and existing[key] != value:
            raise InvalidParameter(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{existing[key]}' for model ID='{model_id}'. "
                f"Attempted logging new value '{value}'."
            )
    LoggedModelParam.objects.bulk_create(
        LoggedModelParam(model=model, key=k, value=v)
        for k, v in checked.items()
        if k not in existing
    )
    return model


@transaction.atomic
def logged_model_finalize(*, workspace: Workspace, model_id: str, status: int) -> LoggedModel:
    model = logged_model_get(workspace=workspace, model_id=model_id, for_update=True)
    model.status = status
    model.last_updated_timestamp_ms = get_current_time_millis()
    model.save(update_fields=["status", "last_updated_timestamp_ms"])
    return model


@transaction.atomic
def logged_model_delete(
    *, workspace: Workspace, model_id: str, actor: AbstractBaseUser | None
) -> LoggedModel:
    """Soft delete, as `mlflow server` does: the row stays (get with allow_deleted
    finds it), searches and registration no longer see it."""
    model = logged_model_get(workspace=workspace, model_id=model_id, for_update=True)
    was = model.lifecycle_stage
    model.lifecycle_stage = LifecycleStage.DELETED
    model.last_updated_timestamp_ms = get_current_time_millis()
    model.save(update_fields=["lifecycle_stage", "last_updated_timestamp_ms"])
    if was != LifecycleStage.DELETED:
        audit_record(actor=actor, action="delete", target=model)
    return model


@transaction.atomic
def logged_model_tags_set(
    *, workspace: Workspace, model_id: str, tags: list[dict[str, Any]]
) -> LoggedModel:
    """Last write wins; a key repeated in one call keeps its last value."""
    model = logged_model_get(workspace=workspace, model_id=model_id, for_update=True)
    checked = _checked_tags(tags)
    LoggedModelTag.objects.bulk_create(
        [LoggedModelTag(model=model, key=k, value=v) for k, v in checked.items()],
        update_conflicts=True,
        unique_fields=["model", "key"],
        update_fields=["value"],
    )
    return model


@transaction.atomic
def logged_model_tag_delete(*, workspace: Workspace, model_id: str, key: str) -> None:
    model = logged_model_get(workspace=workspace, model_id=model_id, for_update=True)
    deleted, _ = LoggedModelTag.objects.filter(model=model, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag with key {key!r} found for model with ID {model_id!r}.")


def logged_model_metrics_record(
    *, workspace: Workspace, run: Run, metrics: list[dict[str, Any]]
) -> int:
    """Record the metrics that name a `model_id` on those logged models, in bulk.

    Each dict: key, value (float), is_nan (bool), timestamp, step, model_id, dataset_name,
    dataset_digest. Metrics without a model_id are skipped. Every model_id must be a
    logged model of this workspace: an unknown one is INVALID_PARAMETER_VALUE and nothing
    is written (`mlflow server` fails the whole batch too, on its foreign key). A point
    already recorded (same model, key, timestamp, step, run) is left as it is. Call it
    inside the caller's transaction so the run's points and these commit together.
    Returns how many points were offered for insertion."""
    wanted = [m for m in metrics if m.get("model_id")]
    if not wanted:
        return 0
    ids = {m["model_id"] for m in wanted}
    models = dict(
        LoggedModel.objects.filter(workspace=workspace, model_id__in=ids).values_list(
            "model_id", "pk"
        )
    )
    unknown = sorted(ids - models.keys())
    if unknown:
        raise InvalidParameter(f"Logged model with ID '{unknown[0]}' not found.")
    rows = []
    for metric in wanted:
        dataset_name = metric.get("dataset_name") or ""
        dataset_digest = metric.get("dataset_digest") or ""
        if len(dataset_name) > MAX_DATASET_NAME_SIZE:
            raise InvalidParameter(
                f"'dataset_name' exceeds the maximum length of {MAX_DATASET_NAME_SIZE}"
            )
        if len(dataset_digest) > MAX_DATASET_DIGEST_SIZE:
            raise InvalidParameter(
                f"'dataset_digest' exceeds the maximum length of {MAX_DATASET_DIGEST_SIZE}"
            )
        value = float(metric["value"])
        is_nan = bool(metric.get("is_nan")) or math.isnan(value)
        rows.append(
            LoggedModelMetric(
                model_id=models[metric["model_id"]],
                run=run,
                key=metric["key"],
                value=0.0 if is_nan else value,
                is_nan=is_nan,
                timestamp=int(metric["timestamp"]),
                step=int(metric.get("step") or 0),
                dataset_name=dataset_name,
                dataset_digest=dataset_digest,
            )
        )
    LoggedModelMetric.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(rows)


@transaction.atomic
def run_outputs_log(*, workspace: Workspace, run_id: str, models: list[dict[str, Any]]) -> Run:
    """Record that an active run of this workspace produced these logged models (of this
    workspace), each at a step; logging one again records its new step."""
    run = run_get(workspace=workspace, run_id=run_id)
    require_active_run(run)
    steps: dict[str, int] = {}
    for output in models:
        steps[output["model_id"]] = int(output.get("step") or 0)
    found = dict(
        LoggedModel.objects.filter(workspace=workspace, model_id__in=steps).values_list(
            "model_id", "pk"
        )
    )
    for model_id in steps:
        if model_id not in found:
            raise NotFound(f"Logged model with ID '{model_id}' not found.")
    RunOutput.objects.bulk_create(
        [RunOutput(run=run, model_id=found[m], step=step) for m, step in steps.items()],
        update_conflicts=True,
        unique_fields=["run", "model"],
        update_fields=["step"],
    )
    return run


@transaction.atomic
def run_model_history_append(*, workspace: Workspace, run_id: str, model_json: str) -> Run:
    """`runs/log-model`: append the model's MLmodel summary to the run's
    `mlflow.log-model.history` tag, as `mlflow server` does."""
    from mlflow.models import Model

    try:
        model = json.loads(model_json)
    except ValueError:
        raise InvalidParameter(
            f"Malformed model info. \n {model_json} \n is not a valid JSON."
        ) from None
    if not isinstance(model, dict):
        raise InvalidParameter(f"Malformed model info. \n {model_json} \n is not a valid JSON.")
    missing = {"artifact_path", "flavors", "utc_time_created", "run_id"} - set(model)
    if missing:
        raise InvalidParameter(f"Model json is missing mandatory fields: {missing}")
    try:
        summary = Model.from_dict(model).get_tags_dict()
    except MlflowException as exc:
        raise InvalidParameter(exc.message) from None
    except Exception:
        raise InvalidParameter("Malformed model info.") from None
    run = run_get(workspace=workspace, run_id=run_id, for_update=True)
    require_active_run(run)
    previous = RunTag.objects.filter(run=run, key=MLFLOW_LOGGED_MODELS).first()
    history = []
    if previous is not None:
        try:
            history = json.loads(previous.value)
        except ValueError:
            history = []
        if not isinstance(history, list):
            history = []
    value = json.dumps([*history, summary])
    _validate_tag(MLFLOW_LOGGED_MODELS, value)
    RunTag.objects.update_or_create(run=run, key=MLFLOW_LOGGED_MODELS, defaults={"value": value})
    return run
