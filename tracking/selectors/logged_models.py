"""Reads of MLflow 3 logged models: lookup by id, search, run outputs, MLflow JSON."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from mlflow.exceptions import MlflowException
from mlflow.utils.search_logged_model_utils import EntityType, parse_filter_string
from mlflow.utils.search_utils import SearchLoggedModelsPaginationToken

from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from tracking.encoding import json_float
from tracking.models import (
    LifecycleStage,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    RunOutput,
)
from tracking.selectors.core import MLFLOW_EXPERIMENT_ID, default_experiment_pks, experiment_pks
from tracking.selectors.registry import field_comparison

SEARCH_DEFAULT_RESULTS = 100
SEARCH_MAX_RESULTS = 10_000

STATUS_NAMES = {
    LoggedModel.Status.UNSPECIFIED: "LOGGED_MODEL_STATUS_UNSPECIFIED",
    LoggedModel.Status.PENDING: "LOGGED_MODEL_PENDING",
    LoggedModel.Status.READY: "LOGGED_MODEL_READY",
    LoggedModel.Status.UPLOAD_FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
}

# MLflow's attribute names (SqlLoggedModel columns and their aliases) → our fields.
_ATTRIBUTES = {
    "model_id": "model_id",
    "experiment_id": "mlflow_experiment_id",  # aliased: the Default's is 0
    "name": "name",
    "artifact_location": "artifact_location",
    "artifact_uri": "artifact_location",
    "creation_timestamp_ms": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "creation_time": "creation_timestamp_ms",
    "last_updated_timestamp_ms": "last_updated_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
    "status": "status",
    "status_message": "status_message",
    "lifecycle_stage": "lifecycle_stage",
    "model_type": "model_type",
    "source_run_id": "source_run_uuid",
}


def status_value(value: Any) -> int:
    """A LoggedModelStatus from JSON: the enum name or its number."""
    if isinstance(value, str):
        for number, name in STATUS_NAMES.items():
            if value in (name, name.removeprefix("LOGGED_MODEL_"), str(int(number))):
                return int(number)
        if value == "FAILED":
            return int(LoggedModel.Status.UPLOAD_FAILED)
    elif isinstance(value, int) and not isinstance(value, bool) and value in STATUS_NAMES:
        return value
    raise InvalidParameter(f"Invalid value {value!r} for parameter 'status'.")


def logged_model_get(
    *,
    workspace: Workspace,
    model_id: str,
    allow_deleted: bool = True,
    for_update: bool = False,
) -> LoggedModel:
    """The workspace's logged model with this id, or RESOURCE_DOES_NOT_EXIST. Like
    `mlflow server`, only get (and registering) hide deleted models by default."""
    models = LoggedModel.objects.filter(workspace=workspace, model_id=model_id)
    if not allow_deleted:
        models = models.exclude(lifecycle_stage=LifecycleStage.DELETED)
    # Lock only the model row: PostgreSQL refuses FOR UPDATE on the nullable side of
    # the source_run join.
    models = models.select_related("source_run")
    if for_update:
        models = models.select_for_update(of=("self",))
    model = models.first() if model_id else None
    if model is None:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return model


def run_outputs(run_pks: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The logged models each run produced: {run pk: [{"model_id", "step"}, ...]}, for
    `outputs.model_outputs` in the run JSON. One query."""
    result: dict[int, list[dict[str, Any]]] = {pk: [] for pk in run_pks}
    rows = (
        RunOutput.objects.filter(run_id__in=run_pks)
        .order_by("run_id", "pk")
        .values_list("run_id", "model__model_id", "step")
    )
    for run_pk, model_id, step in rows:
        result[run_pk].append({"model_id": model_id, "step": step})
    return result


# --- Search ------------------------------------------------------------------------------------


def normalize_order_by(order_by: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """order_by entries as `mlflow server` hands them to its store (and into page tokens)."""
    result = []
    for entry in order_by:
        field_name = entry.get("field_name")
        if not isinstance(field_name, str) or not field_name:
            raise InvalidParameter("Missing value for required parameter 'order_by.field_name'.")
        ascending = entry.get("ascending", True)
        if isinstance(ascending, str) and ascending.lower() in ("true", "false"):
            ascending = ascending.lower() == "true"
        if not isinstance(ascending, bool):
            raise InvalidParameter(f"Invalid value {ascending!r} for 'order_by.ascending'.")
        result.append(
            {
                "field_name": field_name,
                "ascending": ascending,
                "dataset_name": entry.get("dataset_name") or None,
                "dataset_digest": entry.get("dataset_digest") or None,
            }
        )
    return result or None


def logged_model_search(
    *,
    workspace: Workspace,
    experiment_ids: list[str],
    filter_string: str | None = None,
    datasets: list[dict[str, Any]] | None = None,
    max_results: int | None = None,
    order_by: list[dict[str, Any]] | None = None,
    page_token: str | None = None,
) -> tuple[list[LoggedModel], str | None]:
    """A page of the workspace's live logged models in these experiments, filtered and
    ordered as `mlflow server` does, and the next page's token."""
    if datasets and not all(d.get("dataset_name") for d in datasets):
        raise InvalidParameter("`dataset_name` in the `datasets` clause must be specified.")
    offset = 0
    if page_token:
        try:
            token = SearchLoggedModelsPaginationToken.decode(page_token)
        except MlflowException as exc:
            raise InvalidParameter(exc.message) from None
        except Exception:
            raise InvalidParameter(f"Invalid page token: {page_token}.") from None
        try:
            token.validate(experiment_ids, filter_string, order_by)
        except MlflowException as exc:
            raise InvalidParameter(exc.message) from None
        if not isinstance(token.offset, int) or token.offset < 0:
            raise InvalidParameter(f"Invalid page token: {page_token}.")
        offset = token.offset
    if max_results is not None and max_results < 0:
        raise InvalidParameter(f"Invalid value {max_results} for parameter 'max_results'.")
    page_size = min(max_results or SEARCH_DEFAULT_RESULTS, SEARCH_MAX_RESULTS)
    pks = []
    for value in experiment_pks(workspace=workspace, experiment_ids=experiment_ids):
        try:
            pks.append(int(value))
        except (TypeError, ValueError):
            raise InvalidParameter(f"Invalid experiment ID: '{value}'") from None
    models = (
        LoggedModel.objects.filter(workspace=workspace, experiment_id__in=pks)
        .exclude(lifecycle_stage=LifecycleStage.DELETED)
        .alias(mlflow_experiment_id=MLFLOW_EXPERIMENT_ID)
    )
    models = _apply_filter(models, filter_string, datasets or [])
    models = models.order_by(*_ordering(order_by or []))
    rows = list(models.select_related("source_run")[offset : offset + page_size + 1])
    next_token = None
    if len(rows) > page_size:
        next_token = SearchLoggedModelsPaginationToken(
            offset=offset + page_size,
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            order_by=order_by,
        ).encode()
    return rows[:page_size], next_token


def _dataset_q(datasets: list[dict[str, Any]]) -> Q:
    condition = Q()
    for dataset in datasets:
        one = Q(dataset_name=dataset["dataset_name"])
        if dataset.get("dataset_digest"):
            one &= Q(dataset_digest=dataset["dataset_digest"])
        condition |= one
    return condition


def _apply_filter(
    models: QuerySet[LoggedModel], filter_string: str | None, datasets: list[dict[str, Any]]
) -> QuerySet[LoggedModel]:
    try:
        comparisons = parse_filter_string(filter_string)
    except MlflowException as exc:
        raise InvalidParameter(exc.message) from None
    except Exception:
        raise InvalidParameter(f"Invalid filter string: {filter_string!r}.") from None
    has_metric_filter = False
    for comp in comparisons:
        key, op, value = comp.entity.key, comp.op, comp.value
        kind = comp.entity.type
        if kind == EntityType.ATTRIBUTE:
            field = _ATTRIBUTES.get(key)
            if field is None:
                raise InvalidParameter(f"Invalid attribute key: {key!r}")
            models = models.filter(field_comparison(field, op, _attribute_value(field, value)))
        elif kind == EntityType.METRIC:
            has_metric_filter = True
            metrics = LoggedModelMetric.objects.filter(
                model=OuterRef("pk"), key=key, is_nan=False
            ).filter(field_comparison("value", op, value))
            if datasets:
                metrics = metrics.filter(_dataset_q(datasets))
            models = models.filter(Exists(metrics))
        else:
            table = LoggedModelParam if kind == EntityType.PARAM else LoggedModelTag
            rows = table.objects.filter(model=OuterRef("pk"), key=key)
            models = models.filter(Exists(rows.filter(field_comparison("value", op, value))))
    if datasets and not has_metric_filter:
        metrics = LoggedModelMetric.objects.filter(model=OuterRef("pk")).filter(
            _dataset_q(datasets)
        )
        models = models.filter(Exists(metrics))
    return models


def _attribute_value(field: str, value: Any) -> Any:
    """Attribute values as our columns hold them: status by name, experiment ids as ints."""
    values = value if isinstance(value, tuple | list) else None
    if field == "status":
        convert = status_value
    elif field == "mlflow_experiment_id":

        def convert(v: Any) -> int:
            try:
                return int(v)
            except (TypeError, ValueError):
                raise InvalidParameter(f"Invalid experiment ID: '{v}'") from None

    else:
        return value
    return [convert(v) for v in values] if values is not None else convert(value)


def _ordering(order_by: list[dict[str, Any]]) -> list[Any]:
    clauses: list[Any] = []
    seen: set[str] = set()
    for entry in order_by:
        field_name = entry["field_name"]
        ascending = entry.get("ascending", True)
        if "." not in field_name:
            field = _ATTRIBUTES.get(field_name)
            if field is None:
                raise InvalidParameter(f"Invalid order by field name: {field_name}")
            seen.add(field)
            expression = F(field)
        else:
            entity, key = field_name.split(".", 1)
            if entity != "metrics":
                raise InvalidParameter(
                    f"Invalid order by field name: {field_name}. Only metrics are supported."
                )
            metrics = LoggedModelMetric.objects.filter(model=OuterRef("pk"), key=key)
            if entry.get("dataset_name"):
                metrics = metrics.filter(dataset_name=entry["dataset_name"])
            if entry.get("dataset_digest"):
                metrics = metrics.filter(dataset_digest=entry["dataset_digest"])
            latest = metrics.order_by("-timestamp", "-step", "run__run_uuid").values("value")[:1]
            expression = Subquery(latest)
        clauses.append(
            expression.asc(nulls_last=True) if ascending else expression.desc(nulls_last=True)
        )
    if "creation_timestamp_ms" not in seen:
        clauses.append(F("creation_timestamp_ms").desc())
    if "model_id" not in seen:
        clauses.append(F("model_id").asc())
    return clauses


# --- MLflow JSON -------------------------------------------------------------------------------


def logged_models_data(models: Iterable[LoggedModel]) -> list[dict[str, Any]]:
    """Logged models as `LoggedModel.to_proto` writes them (info + data with params,
    metrics, tags), in three queries for any number of models. `source_run` should be
    select_related."""
    models = list(models)
    if not models:
        return []
    pks = [m.pk for m in models]
    tags: dict[int, list[dict[str, str]]] = defaultdict(list)
    for model_pk, key, value in (
        LoggedModelTag.objects.filter(model_id__in=pks)
        .order_by("key")
        .values_list("model_id", "key", "value")
    ):
        tags[model_pk].append({"key": key, "value": value})
    params: dict[int, list[dict[str, str]]] = defaultdict(list)
    for model_pk, key, value in (
        LoggedModelParam.objects.filter(model_id__in=pks)
        .order_by("key")
        .values_list("model_id", "key", "value")
    ):
        params[model_pk].append({"key": key, "value": value})
    ids = {m.pk: m.model_id for m in models}
    defaults = default_experiment_pks(m.workspace_id for m in models)
    metrics: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        LoggedModelMetric.objects.filter(model_id__in=pks)
        .order_by("key", "step", "timestamp")
        .values_list(
            "model_id",
            "key",
            "value",
            "is_nan",
            "timestamp",
            "step",
            "dataset_name",
            "dataset_digest",
            "run__run_uuid",
        )
    )
    for model_pk, key, value, is_nan, timestamp, step, ds_name, ds_digest, run_id in rows:
        metric: dict[str, Any] = {
            "key": key,
            "value": json_float(value, is_nan),
            "timestamp": timestamp,
            "step": step,
            "model_id": ids[model_pk],
            "run_id": run_id,
        }
        if ds_name:
            metric["dataset_name"] = ds_name
        if ds_digest:
            metric["dataset_digest"] = ds_digest
        metrics[model_pk].append(metric)
    return [
        _logged_model_data(m, tags[m.pk], params[m.pk], metrics[m.pk], defaults) for m in models
    ]


def _logged_model_data(
    model: LoggedModel,
    tags: list[dict[str, str]],
    params: list[dict[str, str]],
    metrics: list[dict[str, Any]],
    default_experiments: set[int],
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": "0"
        if model.experiment_id in default_experiments
        else str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp_ms,
        "last_updated_timestamp_ms": model.last_updated_timestamp_ms,
        "artifact_uri": model.artifact_location,
        "status": STATUS_NAMES.get(model.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
        "tags": tags,
    }
    if model.model_type:
        info["model_type"] = model.model_type
    if model.source_run_uuid:
        info["source_run_id"] = model.source_run_uuid
    if model.status_message:
        info["status_message"] = model.status_message
    return {"info": info, "data": {"params": params, "metrics": metrics}}
