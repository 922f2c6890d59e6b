"""Datasets logged as run inputs, summarised per experiment."""

from __future__ import annotations

from typing import Any

from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from portal.models import Workspace
from tracking.models import RunInput
from tracking.selectors.core import default_experiment_pks

MAX_DATASET_SUMMARIES = 1000  # mlflow's store answers at most this many


def dataset_summaries(*, workspace: Workspace, experiment_pks: list[int]) -> list[dict[str, Any]]:
    """Each distinct (experiment, dataset name, digest, context) the experiments' runs
    logged as inputs, as mlflow's `experiments/search-datasets` answers: the context is
    the input's `mlflow.data.context` tag, left out when it has none. Experiments of
    another workspace give nothing."""
    inputs = (
        RunInput.objects.filter(
            dataset__experiment__workspace=workspace, dataset__experiment_id__in=experiment_pks
        )
        .order_by("dataset__experiment_id", "dataset__name", "dataset__digest", "pk")
        .values_list("dataset__experiment_id", "dataset__name", "dataset__digest", "tags")
    )
    defaults = default_experiment_pks([workspace.pk])
    seen: set[tuple] = set()
    summaries = []
    for experiment_id, name, digest, tags in inputs.iterator(chunk_size=2000):
        context = next(
            (
                tag.get("value")
                for tag in tags or []
                if isinstance(tag, dict) and tag.get("key") == MLFLOW_DATASET_CONTEXT
            ),
            None,
        )
        found = (experiment_id, name, digest, context)
        if found in seen:
            continue
        seen.add(found)
        summary = {
            "experiment_id": "0" if experiment_id in defaults else str(experiment_id),
            "name": name,
            "digest": digest,
        }
        if context is not None:
            summary["context"] = context
        summaries.append(summary)
        if len(summaries) == MAX_DATASET_SUMMARIES:
            break
    return summaries
