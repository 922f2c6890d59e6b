"""Run writes: create, update, delete/restore, params, tags, metrics, log-batch, inputs.

Logging is the hot path. A log-batch is validated in Python once per distinct key,
then written with a handful of set-based statements in one transaction: params
(insert, then one read to detect changed values), tags (upsert), the latest-metric
row per key (upsert that only moves forward), and the points (one multi-row
insert that ignores exact duplicates). No ORM objects per point.

Deletes, restores and cancels take the acting user (`actor`, None for the system) and
write their audit entry in the same transaction; logging is never audited (that would
put a write on every ingestion call).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
from mlflow.utils.name_utils import _generate_random_name
from mlflow.utils.validation import (
    _validate_batch_log_limits,
    _validate_metric,
    _validate_param,
    _validate_param_keys_unique,
    _validate_tag,
    append_to_json_path,
    invalid_value,
)

from portal import registry
from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from portal.services import audit_record
from tracking.models import Experiment, LifecycleStage, Run, RunStatus
from tracking.selectors.core import mlflow_experiment_id, run_get
from tracking.services.experiments import now_ms, refuse_restore_while_purging
from tracking.services.logged_models import logged_model_metrics_record

PARAM_TABLE = "tracking_param"
TAG_TABLE = "tracking_runtag"
SERIES_TABLE = "tracking_latestmetric"
POINT_TABLE = "tracking_metricpoint"


@dataclass(slots=True)
class MetricIn:
    key: str
    value: float  # 0.0 when is_nan
    is_nan: bool
    timestamp: int
    step: int
    model_id: str = ""
    dataset_name: str = ""
    dataset_digest: str = ""


def require_active(run: Run) -> None:
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(
            f"The run {run.run_uuid} must be in the 'active' state. "
            f"Current state is {run.lifecycle_stage}."
        )


def _require_str(key: Any, path: str) -> str:
    if not isinstance(key, str):
        hint = f" Hint: Value was of type '{type(key).__name__}'."
        raise InvalidParameter(invalid_value(path, key, hint))
    return key


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def clean_params(params: list[tuple[Any, Any]], *, batch: bool = False) -> list[tuple[str, str]]:
    """Keys checked and over-long values truncated by mlflow's own `_validate_param`, so
    the words of a refusal are mlflow server's: a batch names the item (`params[0].key`),
    a single log-param the argument (`key`)."""
    cleaned = []
    for index, (key, value) in enumerate(params):
        path = f"params[{index}]" if batch else ""
        _require_str(key, append_to_json_path(path, "key"))
        param = _validate_param(key, _text(value), path=path)
        cleaned.append((param.key, param.value))
    _validate_param_keys_unique([_KeyOnly(k) for k, _ in cleaned])
    return cleaned


def clean_tags(tags: list[tuple[Any, Any]], *, batch: bool = False) -> list[tuple[str, str]]:
    """As clean_params, with mlflow's `_validate_tag`; the last value of a key wins."""
    cleaned: dict[str, str] = {}
    for index, (key, value) in enumerate(tags):
        path = f"tags[{index}]" if batch else ""
        _require_str(key, append_to_json_path(path, "key"))
        tag = _validate_tag(key, _text(value), path=path)
        cleaned[tag.key] = tag.value
    return list(cleaned.items())


@dataclass(slots=True)
class _KeyOnly:
    key: str


def clean_metric(
    key: Any,
    value: float,
    timestamp: int,
    step: int,
    seen: set[str],
    path: str = "",
) -> MetricIn:
    """A metric checked by mlflow's own `_validate_metric` (its words on refusal; `path`
    is "metrics[3]" in a batch); a key seen before in the batch skips the name checks."""
    if key not in seen:
        _require_str(key, append_to_json_path(path, "name"))
        _validate_metric(key, value, timestamp, step, path)
        seen.add(key)
    elif timestamp < 0:
        _validate_metric(key, value, timestamp, step, path)  # raises, in mlflow's words
    is_nan = math.isnan(value)
    return MetricIn(key, 0.0 if is_nan else value, is_nan, timestamp, step or 0)


# --- Runs --------------------------------------------------------------------------


@transaction.atomic
def run_create(
    *,
    workspace: Workspace,
    experiment: Experiment,
    user_id: str,
    start_time: int | None,
    run_name: str = "",
    tags: list[tuple[Any, Any]] | None = None,
) -> Run:
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(
            f"The experiment {mlflow_experiment_id(experiment)} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )
    tag_list = clean_tags(tags or [], batch=True)
    tag_name = dict(tag_list).get(MLFLOW_RUN_NAME)
    if run_name and tag_name and run_name != tag_name:
        raise InvalidParameter(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
            f"different values (run_name='{run_name}', mlflow.runName='{tag_name}')."
        )
    name = (run_name or tag_name or _generate_random_name())[:250]
    run_uuid = uuid.uuid4().hex
    run = Run.objects.create(
        run_uuid=run_uuid,
        workspace=workspace,
        experiment=experiment,
        name=name,
        user_id=(user_id or "")[:256],
        status=RunStatus.RUNNING,
        start_time=start_time if start_time is not None else now_ms(),
        artifact_uri=f"{experiment.artifact_location}/{run_uuid}/artifacts",
    )
    tag_map = dict(tag_list)
    tag_map[MLFLOW_RUN_NAME] = name
    _upsert_tags(run.pk, list(tag_map.items()))
    return run


@transaction.atomic
def run_update(
    *, run: Run, status: str | None = None, end_time: int | None = None, run_name: str = ""
) -> Run:
    require_active(run)
    fields = []
    if status:
        if status not in RunStatus.values:
            raise InvalidParameter(f"Invalid run status '{status}'.")
        run.status = status
        fields.append("status")
    if end_time is not None:
        run.end_time = end_time
        fields.append("end_time")
    if run_name:
        run.name = run_name[:250]
        fields.append("name")
        _upsert_tags(run.pk, [(MLFLOW_RUN_NAME, run.name)])
    if fields:
        run.save(update_fields=fields)
    return run


@transaction.atomic
def run_delete(*, run: Run, actor: AbstractBaseUser | None) -> Run:
    """Soft delete (restorable); deleting a deleted run changes nothing."""
    if run.lifecycle_stage != LifecycleStage.DELETED:
        run.lifecycle_stage = LifecycleStage.DELETED
        run.deleted_at = timezone.now()
        run.save(update_fields=["lifecycle_stage", "deleted_at"])
        audit_record(actor=actor, action="delete", target=run)
    return run


@transaction.atomic
def run_restore(*, run: Run, actor: AbstractBaseUser | None) -> Run:
    """Bring back a deleted run; restoring an active run changes nothing. A run of a
    deleted experiment stays deleted: restoring the experiment brings back the runs
    deleted with it, and an active run under a deleted experiment would be lost from
    every list."""
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        if not Experiment.objects.filter(
            pk=run.experiment_id, lifecycle_stage=LifecycleStage.ACTIVE
        ).exists():
            raise InvalidParameter(
                f"Run {run.name or run.run_uuid} belongs to a deleted experiment; "
                "restore the experiment first."
            )
        refuse_restore_while_purging(run.experiment_id)
        run.lifecycle_stage = LifecycleStage.ACTIVE
        run.deleted_at = None
        run.save(update_fields=["lifecycle_stage", "deleted_at"])
        audit_record(actor=actor, action="restore", target=run)
    return run


CANCELLABLE = (RunStatus.RUNNING, RunStatus.SCHEDULED)


@transaction.atomic
@transaction.atomic
def run_cancel(*, run: Run, actor: AbstractBaseUser | None) -> Run:
    """Stop a run that has not ended: RUNNING or SCHEDULED become KILLED, ended now.

    Cancelling a killed run again changes nothing, so a retried request is harmless; a
    run that finished or failed keeps its outcome (INVALID_PARAMETER_VALUE). Whatever
    executes the run (a remote job) hears of it through the "run_cancel" hook."""
    if run.status == RunStatus.KILLED:
        return run
    if run.status not in CANCELLABLE:
        raise InvalidParameter(
            f"The run {run.run_uuid} has already ended with status {run.status}; "
            "only a running or scheduled run can be cancelled."
        )
    run.status = RunStatus.KILLED
    run.end_time = now_ms()
    run.save(update_fields=["status", "end_time"])
    audit_record(actor=actor, action="cancel", target=run)
    registry.call_hook("run_cancel", run=run, actor=actor)
    return run


# --- Set-based writes ------------------------------------------------------------------


def _values(rows: int, width: int) -> str:
    one = "(" + ", ".join(["%s"] * width) + ")"
    return ", ".join([one] * rows)


def _upsert_tags(run_pk: int, tags: list[tuple[str, str]]) -> None:
    if not tags:
        return
    args: list[Any] = []
    for key, value in tags:
        args += [run_pk, key, value]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TAG_TABLE} (run_id, key, value) VALUES {_values(len(tags), 3)} "
            "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            args,
        )


def _insert_params(run: Run, params: list[tuple[str, str]]) -> None:
    """Params are immutable: the same value again is a no-op, a different one is refused."""
    if not params:
        return
    args: list[Any] = []
    for key, value in params:
        args += [run.pk, key, value]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {PARAM_TABLE} (run_id, key, value) VALUES {_values(len(params), 3)} "
            "ON CONFLICT (run_id, key) DO NOTHING",
            args,
        )
        inserted = cursor.rowcount
        if inserted == len(params):
            return
        keys = [k for k, _ in params]
        cursor.execute(
            f"SELECT key, value FROM {PARAM_TABLE} WHERE run_id = %s AND key IN "
            f"({', '.join(['%s'] * len(keys))})",
            [run.pk, *keys],
        )
        existing = dict(cursor.fetchall())
    for key, value in params:
        if existing.get(key, value) != value:
            raise InvalidParameter(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{existing[key]}' for run ID='{run.run_uuid}'. "
                f"Attempted logging new value '{value}'."
            )


def _newest(points: list[MetricIn]) -> dict[str, MetricIn]:
    """The latest point per key, by (step, timestamp, value) as MLflow orders them."""
    best: dict[str, MetricIn] = {}
    for point in points:
        current = best.get(point.key)
        if current is None or (point.step, point.timestamp, point.value) > (
            current.step,
            current.timestamp,
            current.value,
        ):
            best[point.key] = point
    return best


def _series_upsert_sql(rows_sql: str) -> str:
    """Upsert one latest-metric row per key, moving it only forward by (step, timestamp,
    value), and return (id, key) for every key. Touching the row even when it does not
    move keeps RETURNING complete, which a concurrent first insert of a key would
    otherwise escape."""
    s = SERIES_TABLE
    newer = (
        "(excluded.step, excluded.timestamp, excluded.value) "
        f"> ({s}.step, {s}.timestamp, {s}.value)"
    )
    sets = ", ".join(
        f"{col} = CASE WHEN {newer} THEN excluded.{col} ELSE {s}.{col} END"
        for col in ("value", "timestamp", "step", "is_nan")
    )
    return (
        f"INSERT INTO {s} (run_id, key, value, timestamp, step, is_nan) {rows_sql} "
        f"ON CONFLICT (run_id, key) DO UPDATE SET {sets} RETURNING id, key"
    )


def _insert_metrics(run: Run, metrics: list[MetricIn]) -> None:
    """Upsert the latest-metric rows and insert the points.

    PostgreSQL: one statement (see _points_sql). SQLite: the upsert, then one prepared
    insert for all points."""
    if not metrics:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _points_sql("SELECT %s::bigint AS id"),
                [orjson.dumps([point_json(m) for m in metrics]).decode(), run.pk],
            )
        return
    newest = list(_newest(metrics).values())
    with connection.cursor() as cursor:
        args: list[Any] = []
        for m in newest:
            args += [run.pk, m.key, m.value, m.timestamp, m.step, m.is_nan]
        cursor.execute(_series_upsert_sql(f"VALUES {_values(len(newest), 6)}"), args)
        series = {key: pk for pk, key in cursor.fetchall()}
        cursor.executemany(
            f"INSERT OR IGNORE INTO {POINT_TABLE} (series_id, step, timestamp, value, is_nan) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(series[m.key], m.step, m.timestamp, m.value, m.is_nan) for m in metrics],
        )


# A cleaned metric point as _points_sql reads it: [key, value, timestamp, step], where
# value is a number or one of the words float8 reads ("NaN", "Infinity", "-Infinity":
# JSON has no such numbers). An array, not an object: PostgreSQL unpacks a thousand
# of them in half the time.
Point = list[Any]


def point_json(metric: MetricIn) -> Point:
    """A cleaned MetricIn in the shape _points_sql reads."""
    value: float | str = metric.value
    if metric.is_nan:
        value = "NaN"
    elif not -1.8e308 < value < 1.8e308:
        value = "Infinity" if value > 0 else "-Infinity"
    return [metric.key, value, metric.timestamp, metric.step]


def metric_in(point: Point) -> MetricIn:
    """A point back as a MetricIn, for run_log_batch."""
    key, value, timestamp, step = point
    value = float(value)
    is_nan = math.isnan(value)
    return MetricIn(key, 0.0 if is_nan else value, is_nan, timestamp, step)


def _points_sql(run_sql: str) -> str:
    """One statement that logs a batch of points (the JSON array, first parameter) to the
    run `run_sql` selects (no row: nothing is written): the latest-metric row of each
    key moves to its newest point (by step, timestamp, value; the first of equals), and
    the points are inserted, exact duplicates ignored. PostgreSQL unpacks the points in C
    (json_array_elements) and picks the newest point per key itself. NaN is stored as
    value 0 with is_nan set."""
    points = (
        "SELECT r.key, CASE WHEN r.value = 'NaN' THEN 0 ELSE r.value END AS value, "
        "r.value = 'NaN' AS is_nan, r.timestamp, r.step, r.n FROM ("
        "SELECT e->>0 AS key, (e->>1)::float8 AS value, (e->>2)::bigint AS timestamp, "
        "(e->>3)::bigint AS step, n FROM json_array_elements(%s::json) WITH ORDINALITY AS x(e, n)"
        ") AS r"
    )
    upsert = _series_upsert_sql(
        "SELECT DISTINCT ON (p.key) run.id, p.key, p.value, p.timestamp, p.step, p.is_nan "
        "FROM p, run ORDER BY p.key, p.step DESC, p.timestamp DESC, p.value DESC, p.n"
    )
    return (
        f"WITH p AS MATERIALIZED ({points}), run AS ({run_sql}), up AS ({upsert}) "
        f"INSERT INTO {POINT_TABLE} (series_id, step, timestamp, value, is_nan) "
        "SELECT up.id, p.step, p.timestamp, p.value, p.is_nan FROM p JOIN up ON up.key = p.key "
        "ON CONFLICT DO NOTHING"
    )


def run_log_points(*, workspace: Workspace, run_id: str, points: list[Point]) -> None:
    """Log-batch's hot path: metric points alone (no params, tags or logged-model links),
    already cleaned by the caller, to the workspace's run `run_id`. On PostgreSQL one
    statement finds the run, moves the latest-metric rows and inserts the points: one
    round trip, atomic by itself. A run that is missing or not active writes nothing and
    is then looked up for the refusal, in the same words as run_log_batch's."""
    if not points:
        return
    if connection.vendor != "postgresql" or "\x00" in run_id:
        run = run_get(workspace=workspace, run_id=run_id)
        run_log_batch(run=run, metrics=[metric_in(p) for p in points])
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _points_sql(
                "SELECT id FROM tracking_run "
                "WHERE workspace_id = %s AND run_uuid = %s AND lifecycle_stage = %s"
            ),
            [orjson.dumps(points).decode(), workspace.pk, run_id, LifecycleStage.ACTIVE],
        )
        if cursor.rowcount:
            return
    # Nothing inserted: no such active run, or every point was logged before.
    require_active(run_get(workspace=workspace, run_id=run_id))


def _record_model_metrics(run: Run, metrics: list[MetricIn]) -> None:
    linked = [m for m in metrics if m.model_id]
    if not linked:
        return
    logged_model_metrics_record(
        workspace=run.workspace,
        run=run,
        metrics=[
            {
                "key": m.key,
                "value": m.value,
                "is_nan": m.is_nan,
                "timestamp": m.timestamp,
                "step": m.step,
                "model_id": m.model_id,
                "dataset_name": m.dataset_name,
                "dataset_digest": m.dataset_digest,
            }
            for m in linked
        ],
    )


def run_log_batch(
    *,
    run: Run,
    metrics: list[MetricIn] = (),
    params: list[tuple[str, str]] = (),
    tags: list[tuple[str, str]] = (),
) -> None:
    """Log cleaned metrics, params and tags all-or-nothing. Retrying the same batch is a
    no-op: points are deduplicated, equal params are accepted, tags overwrite."""
    _validate_batch_log_limits(metrics, params, tags)
    require_active(run)
    metrics = list(metrics)
    if (
        not params
        and not tags
        and connection.vendor == "postgresql"
        and not any(m.model_id for m in metrics)
    ):
        _insert_metrics(run, metrics)  # a single statement is atomic by itself
        return
    with transaction.atomic():
        _insert_params(run, list(params))
        if tags:
            _upsert_tags(run.pk, list(tags))
            names = [v for k, v in tags if k == MLFLOW_RUN_NAME]
            if names:
                Run.objects.filter(pk=run.pk).update(name=names[-1][:250])
        _insert_metrics(run, metrics)
        _record_model_metrics(run, metrics)


def run_delete_tag(*, run: Run, key: str) -> None:
    require_active(run)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TAG_TABLE} WHERE run_id = %s AND key = %s", [run.pk, key])
        if cursor.rowcount == 0:
            raise NotFound(f"No tag with name: {key} in run with id {run.run_uuid}")
