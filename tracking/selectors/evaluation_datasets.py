"""Reads of evaluation datasets: lookup by id, search, records a page at a time, and
their MLflow JSON (the `mlflow.datasets.Dataset` and `DatasetRecord` messages).

Search follows mlflow's SQL store (`search_datasets`): the filter is parsed by its
`SearchEvaluationDatasetsUtils` (attributes `name`, `created_time`, `last_update_time`,
`created_by`, `last_updated_by`; `tags.<key>`), order by `name`, `created_time` or
`last_update_time` (default `created_time DESC`), ties broken by dataset id, offset page
tokens. Records are read in (created_time, record id) order with mlflow's cursor token
(base64 of "<created_time>:<record id>")."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from mlflow.entities.dataset_record import DatasetRecord
from mlflow.entities.dataset_record_source import DatasetRecordSource
from mlflow.utils.search_utils import SearchEvaluationDatasetsUtils

from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from tracking.models import (
    EvaluationDataset,
    EvaluationDatasetExperiment,
    EvaluationDatasetRecord,
    EvaluationDatasetTag,
)
from tracking.selectors.core import experiment_pks as core_experiment_pks
from tracking.selectors.core import int_id
from tracking.selectors.search import (
    _as_invalid_parameter,
    _bounded_number,
    _Comparison,
    _max_results,
    _offset,
    _page,
    numeric_attribute_value,
)

RECORDS_PAGE_SIZE = 1000  # mlflow's LOAD_DATASET_RECORDS_MAX_RESULTS, its default page
_RECORDS_PAGE_CAP = 2**31  # no cap in mlflow; only keeps LIMIT a sane number


def evaluation_dataset_get(
    *,
    workspace: Workspace,
    dataset_id: str,
    for_update: bool = False,
    message: str = "",
) -> EvaluationDataset:
    """The workspace's dataset with this id, or RESOURCE_DOES_NOT_EXIST (with the
    message mlflow's call at hand gives)."""
    datasets = EvaluationDataset.objects.filter(workspace=workspace, dataset_id=dataset_id)
    if for_update:
        datasets = datasets.select_for_update()
    dataset = datasets.first() if "\x00" not in dataset_id else None
    if dataset is None:
        raise NotFound(message or f"Evaluation dataset with id '{dataset_id}' not found")
    return dataset


def evaluation_dataset_experiment_ids(*, workspace: Workspace, dataset_id: str) -> list[str]:
    """The ids of the experiments the dataset is linked to; none for a dataset that is
    not here (as mlflow answers)."""
    if "\x00" in dataset_id:
        return []
    links = EvaluationDatasetExperiment.objects.filter(
        dataset__workspace=workspace, dataset__dataset_id=dataset_id
    ).values_list("experiment_id", "experiment__is_default")
    return _mlflow_ids(links)


def _mlflow_ids(links: Iterable[tuple[int, bool]]) -> list[str]:
    """Linked experiments' ids as MLflow clients know them: the Default is "0"."""
    return [
        ("0" if default else str(pk))
        for pk, default in sorted(links, key=lambda x: (not x[1], x[0]))
    ]


def experiment_pks(*, workspace: Workspace, experiment_ids: list[Any]) -> list[int]:
    """Experiment ids as keys, to match links against; "0" is the workspace's Default
    experiment (looked up, not made: reads make nothing). Ids that can name no
    experiment are left out: they match nothing."""
    ids = core_experiment_pks(workspace=workspace, experiment_ids=experiment_ids)
    return [pk for pk in map(int_id, ids) if pk is not None]


# --- Search ------------------------------------------------------------------------------


def evaluation_dataset_search(
    *,
    workspace: Workspace,
    experiment_pks: list[int] | None = None,
    filter_string: str | None = None,
    max_results: int = 1000,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[EvaluationDataset], str | None]:
    """A page of the workspace's datasets, and the next page's token. `experiment_pks`
    (None: any) keeps those linked to one of them."""
    limit = _max_results(max_results, allow_none=False)
    offset = _offset(page_token)
    datasets = EvaluationDataset.objects.filter(workspace=workspace)
    if experiment_pks is not None:
        links = EvaluationDatasetExperiment.objects.filter(
            dataset=OuterRef("pk"), experiment_id__in=experiment_pks
        )
        datasets = datasets.filter(Exists(links))
    if filter_string:
        with _as_invalid_parameter():
            clauses = SearchEvaluationDatasetsUtils.parse_search_filter(filter_string)
        datasets = datasets.filter(*[_condition(clause) for clause in clauses])
    datasets = datasets.order_by(*_ordering(order_by)).prefetch_related("tags", "experiment_links")
    return _page(datasets, offset, limit)


def _condition(clause: dict[str, Any]) -> Q | Exists | _Comparison:
    """One parsed clause, validated as mlflow's `_get_search_datasets_filter_clauses`."""
    key_type, key = clause["type"], clause["key"]
    comparator = clause["comparator"].upper()
    value = clause["value"]
    if key_type == "attribute":
        if key in SearchEvaluationDatasetsUtils.NUMERIC_ATTRIBUTES:
            value = numeric_attribute_value(
                key,
                comparator,
                value,
                SearchEvaluationDatasetsUtils.VALID_NUMERIC_ATTRIBUTE_COMPARATORS,
            )
        elif comparator not in ("=", "!=", "LIKE", "ILIKE") and not (
            key == "name" and comparator == "IN"
        ):
            raise InvalidParameter(f"Invalid comparator for string attribute: {comparator}")
        return _Comparison(key, comparator, value)
    if key_type == "tag":
        if comparator not in SearchEvaluationDatasetsUtils.VALID_TAG_COMPARATORS:
            raise InvalidParameter(f"Invalid comparator for tag: {comparator}")
        tags = EvaluationDatasetTag.objects.filter(dataset=OuterRef("pk"), key=key)
        return Exists(tags.filter(_Comparison("value", comparator, value)))
    raise InvalidParameter(f"Invalid token type: {key_type}")


def _ordering(order_by: list[str] | None) -> list[Any]:
    ordering = []
    for clause in order_by or ["created_time DESC"]:
        with _as_invalid_parameter():
            key_type, key, ascending = (
                SearchEvaluationDatasetsUtils.parse_order_by_for_search_evaluation_datasets(clause)
            )
        if key_type != "attribute":
            raise InvalidParameter(f"Invalid order_by entity: {key_type}")
        ordering.append(F(key).asc() if ascending else F(key).desc())
    ordering.append(F("dataset_id").desc())
    return ordering


# --- Records -----------------------------------------------------------------------------


def _cursor(page_token: str) -> tuple[int, str] | int:
    """mlflow's record page token: base64 of "<created_time>:<record id>"; an offset in
    plain digits is read too, as mlflow falls back to one."""
    try:
        decoded = base64.b64decode(page_token.encode(), validate=True).decode()
        created, record_id = decoded.split(":", 1)
        return int(created), record_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    if page_token.isdigit():
        return int(page_token)
    raise InvalidParameter(f"Invalid page token: {page_token[:100]!r}")


def evaluation_dataset_records(
    *,
    workspace: Workspace,
    dataset_id: str,
    max_results: int | None = None,
    page_token: str | None = None,
) -> tuple[list[EvaluationDatasetRecord], str | None]:
    """A page of the dataset's records, and the token of the next page when more
    remain. `max_results` 0 or absent means mlflow's page of 1000."""
    dataset = evaluation_dataset_get(
        workspace=workspace, dataset_id=dataset_id, message=f"Dataset '{dataset_id}' not found."
    )
    if max_results is not None and max_results < 0:
        raise InvalidParameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        )
    limit = min(max_results or RECORDS_PAGE_SIZE, _RECORDS_PAGE_CAP)
    records: QuerySet[EvaluationDatasetRecord] = EvaluationDatasetRecord.objects.filter(
        dataset=dataset
    ).order_by("created_time", "record_id")
    offset = 0
    if page_token:
        cursor = _cursor(page_token)
        if isinstance(cursor, int):
            offset = cursor
        else:
            created, record_id = cursor
            records = records.filter(
                Q(created_time__gt=_bounded_number(created))
                | Q(created_time=_bounded_number(created), record_id__gt=record_id)
            )
    rows = list(records[offset : offset + limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    token = base64.b64encode(f"{last.created_time}:{last.record_id}".encode()).decode()
    return rows, token


# --- MLflow JSON -------------------------------------------------------------------------


def evaluation_dataset_json(dataset: EvaluationDataset) -> dict[str, Any]:
    """The `mlflow.datasets.Dataset` message, with the ids of its experiments. Tags are
    a JSON object in a string, as the message has them."""
    tags = {tag.key: tag.value for tag in dataset.tags.all()}
    data: dict[str, Any] = {
        "dataset_id": dataset.dataset_id,
        "name": dataset.name,
        "tags": json.dumps(tags),
        "digest": dataset.digest,
        "created_time": dataset.created_time,
        "last_update_time": dataset.last_update_time,
        "experiment_ids": _mlflow_ids(
            (link.experiment_id, link.experiment.is_default)
            for link in dataset.experiment_links.select_related("experiment")
        ),
    }
    for name in ("schema", "profile", "created_by", "last_updated_by"):
        if value := getattr(dataset, name):
            data[name] = value
    return data


def evaluation_datasets_json(datasets: Iterable[EvaluationDataset]) -> list[dict[str, Any]]:
    return [evaluation_dataset_json(dataset) for dataset in datasets]


def evaluation_dataset_records_json(
    dataset: str, records: Iterable[EvaluationDatasetRecord]
) -> list[dict[str, Any]]:
    """The records as mlflow's `DatasetRecord.to_dict()` writes them (what the client's
    `DatasetRecord.from_dict` reads)."""
    return [
        DatasetRecord(
            dataset_id=dataset,
            dataset_record_id=row.record_id,
            inputs=row.inputs,
            outputs=row.outputs,
            expectations=row.expectations,
            tags=row.tags,
            source=DatasetRecordSource.from_dict(row.source) if row.source else None,
            source_id=row.source_id or None,
            source_type=row.source_type or None,
            created_time=row.created_time,
            last_update_time=row.last_update_time,
            created_by=row.created_by or None,
            last_updated_by=row.last_updated_by or None,
        ).to_dict()
        for row in records
    ]
