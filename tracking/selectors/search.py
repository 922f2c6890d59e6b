"""MLflow search over runs and experiments, each page in one SQL statement.

The filter and order-by strings are parsed by mlflow's own `SearchUtils`, so the
grammar and its error messages are exactly the client's. What the parsed clauses
mean follows mlflow's `SqlAlchemyStore` (`_search_runs`, `_search_experiments`):

- a clause on a metric, param, tag or dataset holds when the run has a matching
  row; they become correlated EXISTS, so no join multiplies runs and no DISTINCT
  is needed;
- NaN metrics (stored with `is_nan` set) fail every comparison except `!=`;
- ordering puts missing values last in both directions, NaN metrics after real
  values and before missing ones; every order ends with a unique tie-break, so
  offset paging never repeats or skips a row.

Deliberate differences from `mlflow server`, chosen so both our databases agree:
`LIKE` is case-sensitive on SQLite too (mlflow's SQLite store is not), and in
LIKE/ILIKE patterns a backslash escapes the next character on both (PostgreSQL's
default); `attributes.run_name` reads `Run.name`, which our services keep equal to
the `mlflow.runName` tag.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Exists,
    Expression,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from mlflow.exceptions import MlflowException
from mlflow.store.tracking import SEARCH_MAX_RESULTS_THRESHOLD
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from mlflow.utils.search_utils import SearchExperimentsUtils, SearchUtils

from portal.errors import InvalidParameter
from portal.models import Workspace
from tracking.models import (
    Experiment,
    ExperimentTag,
    LatestMetric,
    LifecycleStage,
    Param,
    Run,
    RunInput,
    RunTag,
)

_VIEW_TYPE_STAGES = {
    "ACTIVE_ONLY": (LifecycleStage.ACTIVE,),
    "DELETED_ONLY": (LifecycleStage.DELETED,),
    "ALL": (LifecycleStage.ACTIVE, LifecycleStage.DELETED),
}
# mlflow.entities.ViewType numbers, as the protobuf enum sends them.
_VIEW_TYPE_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}

# Searchable run attributes (after SearchUtils.translate_key_alias) → Run fields.
_RUN_ATTRIBUTE_FIELDS = {
    "run_id": "run_uuid",
    "run_name": "name",
    "status": "status",
    "user_id": "user_id",
    "artifact_uri": "artifact_uri",
    "start_time": "start_time",
    "end_time": "end_time",
}
_EXPERIMENT_ATTRIBUTE_FIELDS = {
    "experiment_id": "mlflow_id",  # aliased in search_experiments: the Default's is 0
    "name": "name",
    "creation_time": "creation_time",
    "last_update_time": "last_update_time",
}

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_PLAIN_OPERATORS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


# ---------------------------------------------------------------------------
# Public selectors
# ---------------------------------------------------------------------------


def search_runs(
    *,
    workspace: Workspace,
    experiment_ids: list[str],
    filter_string: str = "",
    run_view_type: str = "ACTIVE_ONLY",
    max_results: int = 1000,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[int], str | None]:
    """Run primary keys (Run.pk) of the page, in order, and the next page token (None at the end).

    Experiment ids of other workspaces (or none at all) match nothing rather than
    erroring, so a search never reveals that an id exists elsewhere.
    """
    # Validate everything before touching the database, in mlflow's order.
    limit = _max_results(max_results, allow_none=True)
    runs = run_search_queryset(
        workspace=workspace,
        experiment_ids=experiment_ids,
        filter_string=filter_string,
        run_view_type=run_view_type,
        order_by=order_by,
    )
    offset = _offset(page_token)
    if runs is None:
        return [], None
    return _page(runs, offset, limit)


def run_search_queryset(
    *,
    workspace: Workspace,
    experiment_ids: list[str],
    filter_string: str = "",
    run_view_type: str = "ACTIVE_ONLY",
    order_by: list[str] | None = None,
) -> QuerySet | None:
    """The ordered queryset of matching Run pks (None when no experiment can match).

    Pages slice it and count it; the filter and order are validated here, with
    mlflow's messages, before any query runs.
    """
    stages = view_stages(run_view_type)
    with _as_invalid_parameter():
        parsed_filters = _parsed_run_filter(filter_string)
    conditions = [_run_condition(clause) for clause in parsed_filters]
    relations, ordering, joined = _run_ordering(order_by, _metrics_required(parsed_filters))
    ids = _experiment_pks(experiment_ids)
    if not ids:
        return None
    return (
        Run.objects.filter(
            workspace_id=workspace.pk, experiment_id__in=ids, lifecycle_stage__in=stages
        )
        .filter(*conditions)
        .alias(**relations)
        .filter(*joined)
        .order_by(*ordering)
        .values_list("pk", flat=True)
    )


def search_experiments(
    *,
    workspace: Workspace,
    view_type: str = "ACTIVE_ONLY",
    max_results: int = 1000,
    filter_string: str = "",
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[Experiment], str | None]:
    """Experiment objects of the page, in order, and the next page token.

    Their tags are prefetched (one more query), as every caller renders them.
    """
    limit = _max_results(max_results, allow_none=False)
    stages = view_stages(view_type)
    with _as_invalid_parameter():
        parsed_filters = SearchExperimentsUtils.parse_search_filter(filter_string)
    conditions = [_experiment_condition(clause) for clause in parsed_filters]
    ordering = _experiment_ordering(order_by)
    offset = _offset(page_token)

    experiments = (
        Experiment.objects.filter(workspace_id=workspace.pk, lifecycle_stage__in=stages)
        .alias(
            mlflow_id=Case(
                When(is_default=True, then=Value(0)),
                default=F("id"),
                output_field=BigIntegerField(),
            )
        )
        .filter(*conditions)
        .order_by(*ordering)
        .prefetch_related("tags")
    )
    return _page(experiments, offset, limit)


# ---------------------------------------------------------------------------
# Arguments: view type, max_results, page token, experiment ids
# ---------------------------------------------------------------------------


@contextmanager
def _as_invalid_parameter() -> Iterator[None]:
    """mlflow's parsers raise MlflowException (and, on odd input, plain Python errors);
    every one of them is the caller's bad input, so it becomes our domain error."""
    try:
        yield
    except MlflowException as exc:
        raise InvalidParameter(exc.message) from exc
    except (ValueError, TypeError, SyntaxError, AttributeError, IndexError, KeyError) as exc:
        raise InvalidParameter(f"Invalid search expression: {exc}") from exc


def view_stages(view_type: str | int) -> tuple[str, ...]:
    name = view_type
    if isinstance(view_type, int) and not isinstance(view_type, bool):
        name = _VIEW_TYPE_NUMBERS.get(view_type, "")
    elif isinstance(view_type, str):
        name = view_type.strip().upper()
        if name.isdigit():
            name = _VIEW_TYPE_NUMBERS.get(int(name), "")
    stages = _VIEW_TYPE_STAGES.get(name) if isinstance(name, str) else None
    if stages is None:
        raise InvalidParameter(
            f"Invalid view type {view_type!r}. Valid values are "
            f"{sorted(_VIEW_TYPE_STAGES)} (or 1, 2, 3)."
        )
    return stages


def _max_results(max_results: Any, *, allow_none: bool) -> int | None:
    """mlflow's `_validate_max_results_param`: a positive integer up to the threshold;
    runs also accept None, meaning no limit. Query-string values arrive as text."""
    if max_results is None and allow_none:
        return None
    number: int | None = None
    if isinstance(max_results, int) and not isinstance(max_results, bool):
        number = max_results
    elif isinstance(max_results, str) and max_results.strip().lstrip("-").isdigit():
        number = int(max_results)
    if number is None or number < 1:
        raise InvalidParameter(
            f"Invalid value {max_results!r} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        )
    if number > SEARCH_MAX_RESULTS_THRESHOLD:
        raise InvalidParameter(
            f"Invalid value {max_results!r} for parameter 'max_results' supplied. "
            f"It must be at most {SEARCH_MAX_RESULTS_THRESHOLD}"
        )
    return number


def _offset(page_token: str | bytes | None) -> int:
    with _as_invalid_parameter():
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
    # mlflow accepts any integer; a negative OFFSET is a database error, not a page.
    if not 0 <= offset <= _INT64_MAX:
        raise InvalidParameter(f"Invalid page token, offset {offset} is out of range")
    return offset


def _page(queryset: QuerySet, offset: int, limit: int | None) -> tuple[list, str | None]:
    """One query: fetch one row beyond the page to learn whether another page exists."""
    if limit is None:
        return list(queryset[offset:]), None
    rows = list(queryset[offset : offset + limit + 1])
    if len(rows) <= limit:
        return rows, None
    token = SearchUtils.create_page_token(offset + limit)
    return rows[:limit], token.decode() if isinstance(token, bytes) else token


def _experiment_pks(experiment_ids: list[str] | None) -> list[int]:
    """mlflow refuses ids that are not integers; ids that cannot exist (out of the
    BIGINT range) are dropped like any other id of no experiment here."""
    pks = []
    for experiment_id in experiment_ids or []:
        try:
            pk = int(experiment_id)
        except (TypeError, ValueError):
            raise InvalidParameter(
                f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer."
            ) from None
        if 0 < pk <= _INT64_MAX:
            pks.append(pk)
    return pks


def numeric_attribute_value(
    key: str, comparator: str, value: Any, comparators: Iterable[str]
) -> int:
    """A numeric attribute's filter value (a time), checked as mlflow's search filters
    check it: one of `comparators`, an integer, within the database's range."""
    if comparator not in comparators:
        raise InvalidParameter(f"Invalid comparator for numeric attribute: {comparator}")
    if isinstance(value, float):
        raise InvalidParameter(f"Invalid value for numeric attribute '{key}': {value!r}")
    try:
        return _bounded_number(int(value))
    except (TypeError, ValueError):
        raise InvalidParameter(f"Invalid value for numeric attribute '{key}': {value!r}") from None


def _bounded_number(value: int | float) -> int | float:
    # SQLite cannot bind integers beyond 64 bits; as a float they still compare right.
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        return float(value)
    return value


# ---------------------------------------------------------------------------
# SQL comparisons with mlflow's operators
# ---------------------------------------------------------------------------


def _close_escape(pattern: str) -> str:
    """A pattern ending in a lone backslash is an error on PostgreSQL; read it as a literal."""
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return pattern + "\\" if trailing % 2 else pattern


def _like_to_glob(pattern: str) -> str:
    """SQLite's LIKE ignores ASCII case; GLOB does not, so a case-sensitive LIKE is
    the same pattern in GLOB syntax, with GLOB's own wildcards made literal."""
    out = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            literal = next(chars, "\\")
        elif char == "%":
            out.append("*")
            continue
        elif char == "_":
            out.append("?")
            continue
        else:
            literal = char
        out.append(f"[{literal}]" if literal in "*?[" else literal)
    return "".join(out)


def _comparison_sql(lhs: str, comparator: str, value: Any, vendor: str) -> tuple[str, list]:
    """SQL for `lhs <comparator> value`, with NULL failing every comparison as in SQL."""
    if comparator in _PLAIN_OPERATORS:
        return f"{lhs} {_PLAIN_OPERATORS[comparator]} %s", [value]
    if comparator in ("IN", "NOT IN"):
        values = list(value)
        placeholders = ", ".join(["%s"] * len(values))
        return f"{lhs} {comparator} ({placeholders})", values
    if comparator in ("LIKE", "ILIKE"):
        pattern = _close_escape(str(value))
        if vendor == "sqlite":
            if comparator == "LIKE":
                return f"{lhs} GLOB %s", [_like_to_glob(pattern)]
            return f"{lhs} LIKE %s ESCAPE '\\'", [pattern]
        # PostgreSQL: the backslash is LIKE's default escape character.
        return f"{lhs} {comparator} %s", [pattern]
    raise InvalidParameter(f"Invalid comparator '{comparator}'")


class _Comparison(Expression):
    """A boolean `expression <comparator> value`, usable in filter() and Q().

    Written as one expression rather than Django lookups because mlflow's `!=` and
    `NOT IN` must keep SQL's NULL semantics (Django's exclude() would let NULLs
    through) and its LIKE has no Django equivalent."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, lhs: str | Expression, comparator: str, value: Any) -> None:
        super().__init__()
        self.lhs = F(lhs) if isinstance(lhs, str) else lhs
        self.comparator = comparator
        self.value = value

    def get_source_expressions(self) -> list:
        return [self.lhs]

    def set_source_expressions(self, exprs: list) -> None:
        (self.lhs,) = exprs

    def as_sql(self, compiler, connection) -> tuple[str, list]:  # type: ignore[override]
        lhs_sql, lhs_params = compiler.compile(self.lhs)
        sql, params = _comparison_sql(lhs_sql, self.comparator, self.value, connection.vendor)
        return sql, [*lhs_params, *params]


class _InputTagComparison(_Comparison):
    """Whether a RunInput's tags (a JSON list of {"key", "value"} objects, as the
    protocol sends them) hold `key` with a value passing the comparison."""

    def __init__(self, tags: str, key: str, comparator: str, value: Any) -> None:
        super().__init__(tags, comparator, value)
        self.key = key

    def as_sql(self, compiler, connection) -> tuple[str, list]:  # type: ignore[override]
        tags, tags_params = compiler.compile(self.lhs)
        if connection.vendor == "sqlite":
            # Reading through the element's path in the whole document yields NULL
            # for elements that are not objects, where json_extract(value) would fail.
            source = f"json_each({tags}) AS input_tag"
            key_sql = f"json_extract({tags}, input_tag.fullkey || '.key')"
            value_sql = f"json_extract({tags}, input_tag.fullkey || '.value')"
            source_params, key_params, value_params = tags_params, tags_params, tags_params
        else:
            # jsonb_array_elements() raises on anything but an array.
            source = (
                f"jsonb_array_elements(CASE WHEN jsonb_typeof({tags}) = 'array' "
                f"THEN {tags} ELSE '[]'::jsonb END) AS input_tag(element)"
            )
            key_sql = "input_tag.element ->> 'key'"
            value_sql = "input_tag.element ->> 'value'"
            source_params, key_params, value_params = [*tags_params, *tags_params], [], []
        match_sql, match_params = _comparison_sql(
            value_sql, self.comparator, self.value, connection.vendor
        )
        # Only compiled column references are interpolated; every value is a parameter.
        sql = f"EXISTS (SELECT 1 FROM {source} WHERE {key_sql} = %s AND {match_sql})"  # noqa: S608
        params = [*source_params, *key_params, self.key, *value_params, *match_params]
        return sql, params


# ---------------------------------------------------------------------------
# Runs: filters and ordering
# ---------------------------------------------------------------------------


# mlflow's parser goes through sqlparse, which costs more than the search's SQL; a
# client repeats the same few filter strings, so parsed forms are kept (read-only).
@functools.lru_cache(maxsize=512)
def _run_filter_cached(filter_string: str) -> tuple[dict[str, Any], ...]:
    return tuple(SearchUtils.parse_search_filter(filter_string))


def _parsed_run_filter(filter_string: str) -> list[dict[str, Any]]:
    return [dict(clause) for clause in _run_filter_cached(filter_string or "")]


@functools.lru_cache(maxsize=512)
def _parsed_run_order(clause: str) -> tuple[str, str, bool]:
    return SearchUtils.parse_order_by_for_search_runs(clause)


def _run_condition(clause: dict[str, Any]) -> Q | Expression:
    """One parsed filter clause as a condition on Run."""
    key_type = clause["type"]
    key = SearchUtils.translate_key_alias(clause["key"])
    comparator = clause["comparator"].upper()
    value = clause["value"]

    with _as_invalid_parameter():
        # These raise mlflow's message for a comparator the entity does not allow.
        is_attribute = SearchUtils.is_string_attribute(
            key_type, key, comparator
        ) or SearchUtils.is_numeric_attribute(key_type, key, comparator)
        is_metric = SearchUtils.is_metric(key_type, comparator)
        is_param = SearchUtils.is_param(key_type, comparator)
        is_tag = SearchUtils.is_tag(key_type, comparator)
        is_dataset = SearchUtils.is_dataset(key_type, comparator)

    if is_attribute:
        field = _RUN_ATTRIBUTE_FIELDS.get(key)
        if field is None:
            raise InvalidParameter(f"Searching on attribute '{key}' is not supported")
        if key in ("start_time", "end_time"):
            value = _bounded_number(value)
        return _Comparison(field, comparator, value)

    if is_dataset:
        return _dataset_condition(key, comparator, value)

    model: type[LatestMetric | Param | RunTag] | None = None
    if is_metric:
        model = LatestMetric
    elif is_param:
        model = Param
    elif is_tag:
        model = RunTag
    if model is None:
        raise InvalidParameter(f"Invalid search expression type '{key_type}'")

    rows = model.objects.filter(run_id=OuterRef("pk"), key=key)
    if comparator in ("IS NULL", "IS NOT NULL"):
        return Exists(rows) if comparator == "IS NOT NULL" else ~Exists(rows)
    if is_metric:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidParameter(f"Expected numeric value for metric, got {value!r}") from None
        matches = _Comparison("value", comparator, number)
        # NaN compares false with everything but "!=", whatever its stored placeholder.
        if comparator == "!=":
            rows = rows.filter(Q(matches) | Q(is_nan=True))
        else:
            rows = rows.filter(matches, is_nan=False)
    else:
        rows = rows.filter(_Comparison("value", comparator, value))
    return Exists(rows)


def _dataset_condition(key: str, comparator: str, value: Any) -> Exists:
    """mlflow: the run has an input whose dataset (or its context input tag) matches."""
    inputs = RunInput.objects.filter(run_id=OuterRef("pk"))
    if key == "context":
        match = _InputTagComparison("tags", MLFLOW_DATASET_CONTEXT, comparator, value)
    elif key in ("name", "digest"):
        match = _Comparison(f"dataset__{key}", comparator, value)
    else:
        raise InvalidParameter(f"Invalid dataset key '{key}'")
    return Exists(inputs.filter(match))


def _metrics_required(parsed_filters: list[dict[str, Any]]) -> set[str]:
    """Metric keys the filter already requires to exist with a real (non-NaN) value: a
    comparison other than != fails for NaN and for a missing metric."""
    return {
        SearchUtils.translate_key_alias(clause["key"])
        for clause in parsed_filters
        if clause["type"] == SearchUtils._METRIC_IDENTIFIER
        and clause["comparator"] in ("=", "<", "<=", ">", ">=")
    }


def _run_ordering(
    order_by: list[str] | None, metrics_required: set[str] = frozenset()
) -> tuple[dict[str, FilteredRelation], list, list[Q]]:
    """JOINs (one per metric/param/tag key sorted on), the ORDER BY terms, and the
    conditions that make a join inner.

    A join on the unique (run, key) row keeps one row per run and lets the database
    sort the whole set at once, where a correlated subquery would run per row. When
    the filter already demands a real value of the metric sorted on (the common
    "metrics.acc > x ORDER BY metrics.acc"), the join is inner and the order is the
    bare value, so the (key, value) index can feed the rows already sorted."""
    relations: dict[str, FilteredRelation] = {}
    ordering: list = []
    joined: list[Q] = []
    seen: set[tuple[str, str]] = set()
    for position, clause in enumerate(order_by or []):
        with _as_invalid_parameter():
            key_type, key, ascending = _parsed_run_order(clause)
        key = SearchUtils.translate_key_alias(key)
        if (key_type, key) in seen:
            raise InvalidParameter(f"`order_by` contains duplicate fields: {order_by}")
        seen.add((key_type, key))

        if key_type == SearchUtils._ATTRIBUTE_IDENTIFIER:
            field = _RUN_ATTRIBUTE_FIELDS.get(key)
            if field is None:
                raise InvalidParameter(f"Ordering by attribute '{key}' is not supported")
            ordering.append(_directed(F(field), ascending))
            continue

        relation = {
            SearchUtils._METRIC_IDENTIFIER: "latest_metrics",
            SearchUtils._PARAM_IDENTIFIER: "params",
            SearchUtils._TAG_IDENTIFIER: "tags",
        }.get(key_type)
        if relation is None:
            raise InvalidParameter(f"Invalid identifier type '{key_type}' in order_by")
        alias = f"sort_{position}"
        relations[alias] = FilteredRelation(relation, condition=Q(**{f"{relation}__key": key}))
        if relation == "latest_metrics" and key in metrics_required:
            joined.append(Q(**{f"{alias}__is_nan": False}))
            value = F(f"{alias}__value")
            ordering.append(value.asc() if ascending else value.desc())
            continue
        if relation == "latest_metrics":
            # Real values first, then NaN, then runs without the metric.
            rank = Case(
                When(**{f"{alias}__is_nan": True}, then=Value(1)),
                When(**{f"{alias}__id__isnull": True}, then=Value(2)),
                default=Value(0),
            )
            ordering.append(rank.asc())
        ordering.append(_directed(F(f"{alias}__value"), ascending))

    if (SearchUtils._ATTRIBUTE_IDENTIFIER, "start_time") not in seen:
        ordering.append(F("start_time").desc(nulls_last=True))
    ordering.append(F("run_uuid").asc())
    return relations, ordering, joined


def _directed(expression: F, ascending: bool) -> Any:
    # Missing values last either way, as mlflow's CASE columns place them.
    if ascending:
        return expression.asc(nulls_last=True)
    return expression.desc(nulls_last=True)


# ---------------------------------------------------------------------------
# Experiments: filters and ordering
# ---------------------------------------------------------------------------


def _experiment_condition(clause: dict[str, Any]) -> Q | Expression:
    """One parsed filter clause as a condition on Experiment, as mlflow's
    `_get_search_experiments_filter_clauses` validates and applies it."""
    key_type, key = clause["type"], clause["key"]
    comparator = clause["comparator"].upper()
    value = clause["value"]

    if key_type == SearchExperimentsUtils._ATTRIBUTE_IDENTIFIER:
        field = _EXPERIMENT_ATTRIBUTE_FIELDS.get(key)
        if field is None:
            raise InvalidParameter(f"Invalid attribute key '{key}' specified")
        if key == "experiment_id":
            if comparator not in ("=", "!=", "IN", "NOT IN"):
                raise InvalidParameter(f"Invalid comparator for experiment_id: {comparator}")
            values = value if isinstance(value, tuple) else (value,)
            numbers = tuple(_experiment_id_value(v) for v in values)
            value = numbers if isinstance(value, tuple) else numbers[0]
        elif key in SearchExperimentsUtils.NUMERIC_ATTRIBUTES:
            value = numeric_attribute_value(key, comparator, value, _PLAIN_OPERATORS)
        elif comparator not in ("=", "!=", "LIKE", "ILIKE"):
            raise InvalidParameter(f"Invalid comparator for string attribute: {comparator}")
        return _Comparison(field, comparator, value)

    if key_type == SearchExperimentsUtils._TAG_IDENTIFIER:
        tags = ExperimentTag.objects.filter(experiment_id=OuterRef("pk"), key=key)
        if comparator == "IS NULL":
            return ~Exists(tags)
        if comparator == "IS NOT NULL":
            return Exists(tags)
        if comparator not in ("=", "!=", "LIKE", "ILIKE"):
            raise InvalidParameter(f"Invalid comparator for tag: {comparator}")
        return Exists(tags.filter(_Comparison("value", comparator, value)))

    raise InvalidParameter(f"Invalid token type: {key_type}")


def _experiment_id_value(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"Invalid experiment ID '{value}'. Experiment ID must be a valid integer."
        ) from None
    return _bounded_number(number)  # type: ignore[return-value]


def _experiment_ordering(order_by: list[str] | None) -> list:
    """mlflow's default is creation_time DESC, experiment_id ASC; any other order
    gets experiment_id DESC as its tie-break unless it names experiment_id."""
    ordering = []
    names_id = False
    for clause in order_by or ["creation_time DESC", "experiment_id ASC"]:
        with _as_invalid_parameter():
            key_type, key, ascending = SearchExperimentsUtils.parse_order_by_for_search_experiments(
                clause
            )
        field = _EXPERIMENT_ATTRIBUTE_FIELDS.get(key)
        if key_type != SearchExperimentsUtils._ATTRIBUTE_IDENTIFIER or field is None:
            raise InvalidParameter(f"Invalid order_by entity: {key_type}")
        names_id = names_id or field == "mlflow_id"
        ordering.append(F(field).asc() if ascending else F(field).desc())
    if not names_id:
        ordering.append(F("mlflow_id").desc())
    return ordering
