"""MLflow protocol: experiments."""

from __future__ import annotations

from mlflow.utils.validation import _parse_experiment_id

from portal.errors import InvalidParameter
from tracking.mlflow.protocol import AJAX_ONLY, Call, page, route
from tracking.models import Experiment
from tracking.selectors import experiment_get, experiment_get_by_name
from tracking.selectors.core import experiment_pks, is_default_id
from tracking.selectors.datasets import dataset_summaries
from tracking.selectors.runs import experiments_json
from tracking.services import experiments as svc


def resolve_experiment(call: Call, experiment_id: str) -> Experiment:
    """MLflow clients call the default experiment "0"; here it is the workspace's "Default"
    (its row id names it too, as the studio's pages and /api/v1 know it)."""
    if is_default_id(experiment_id):
        return svc.default_experiment(workspace=call.workspace)
    _parse_experiment_id(experiment_id)  # not a number: mlflow server's words (400)
    return experiment_get(workspace=call.workspace, experiment_id=experiment_id)


def _tags(call: Call) -> list[tuple[str, str]]:
    return [(t.get("key"), t.get("value")) for t in call.dicts("tags")]


@route("POST", "2.0/mlflow/experiments/create", write=True)
def create(call: Call) -> dict:
    experiment = svc.experiment_create(
        workspace=call.workspace,
        name=call.str("name", required=True),
        artifact_location=call.str("artifact_location"),
        tags=_tags(call),
        actor=call.user,
    )
    return {"experiment_id": str(experiment.pk)}


@route("GET", "2.0/mlflow/experiments/get")
def get(call: Call) -> dict:
    experiment = resolve_experiment(call, call.str("experiment_id", required=True))
    return {"experiment": experiments_json([experiment])[0]}


@route("GET", "2.0/mlflow/experiments/get-by-name")
def get_by_name(call: Call) -> dict:
    name = call.str("experiment_name", required=True)
    experiment = experiment_get_by_name(workspace=call.workspace, name=name)
    return {"experiment": experiments_json([experiment])[0]}


def _search(call: Call) -> dict:
    from tracking.selectors.search import search_experiments

    experiments, token = search_experiments(
        workspace=call.workspace,
        view_type=call.str("view_type", default="ACTIVE_ONLY"),
        max_results=call.int("max_results", default=1000),
        filter_string=call.str("filter"),
        order_by=call.str_list("order_by"),
        page_token=call.str("page_token") or None,
    )
    return page("experiments", experiments_json(list(experiments)), token)


route("POST", "2.0/mlflow/experiments/search")(_search)
route("GET", "2.0/mlflow/experiments/search")(_search)


@route("POST", "2.0/mlflow/experiments/update", write=True)
def update(call: Call) -> dict:
    experiment_id = call.str("experiment_id", required=True)
    new_name = call.str("new_name", required=True)
    experiment = resolve_experiment(call, experiment_id)
    svc.experiment_rename(experiment=experiment, new_name=new_name, actor=call.user)
    return {}


@route("POST", "2.0/mlflow/experiments/delete", write=True)
def delete(call: Call) -> dict:
    svc.experiment_delete(
        experiment=resolve_experiment(call, call.str("experiment_id", required=True)),
        actor=call.user,
    )
    return {}


@route("POST", "2.0/mlflow/experiments/restore", write=True)
def restore(call: Call) -> dict:
    svc.experiment_restore(
        experiment=resolve_experiment(call, call.str("experiment_id", required=True)),
        actor=call.user,
    )
    return {}


@route("POST", "2.0/mlflow/experiments/set-experiment-tag", write=True)
def set_tag(call: Call) -> dict:
    experiment_id = call.str("experiment_id", required=True)
    key = call.str("key", required=True)
    value = call.str("value")
    experiment = resolve_experiment(call, experiment_id)
    svc.experiment_set_tag(experiment=experiment, key=key, value=value)
    return {}


@route("POST", "2.0/mlflow/experiments/delete-experiment-tag", write=True)
def delete_tag(call: Call) -> dict:
    experiment_id = call.str("experiment_id", required=True)
    key = call.str("key", required=True)
    experiment = resolve_experiment(call, experiment_id)
    svc.experiment_delete_tag(experiment=experiment, key=key)
    return {}


MAX_EXPERIMENT_IDS_SEARCH_DATASETS = 20  # mlflow server's limit


@route("POST", "2.0/mlflow/experiments/search-datasets", prefixes=AJAX_ONLY)
def search_datasets(call: Call) -> dict:
    """The datasets the experiments' runs logged, one summary per (experiment, name,
    digest, context): mlflow's UI calls it, only under /ajax-api/ (mlflow server's
    endpoint path lacks its leading slash, so it has no /api/ route)."""
    experiment_ids = [str(e) for e in call.list("experiment_ids")]
    if not experiment_ids:
        raise InvalidParameter("SearchDatasets request must specify at least one experiment_id.")
    if len(experiment_ids) > MAX_EXPERIMENT_IDS_SEARCH_DATASETS:
        raise InvalidParameter(
            "SearchDatasets request cannot specify more than "
            f"{MAX_EXPERIMENT_IDS_SEARCH_DATASETS} experiment_ids. "
            f"Received {len(experiment_ids)} experiment_ids."
        )
    # Ids beyond the int64 range name no experiment (and no database can bind them).
    for experiment_id in experiment_ids:
        _parse_experiment_id(experiment_id)  # mlflow's check and message
    ids = experiment_pks(workspace=call.workspace, experiment_ids=experiment_ids)
    pks = [pk for pk in map(_parse_experiment_id, ids) if 0 < pk < 2**63]
    summaries = dataset_summaries(workspace=call.workspace, experiment_pks=pks)
    return {"dataset_summaries": summaries} if summaries else {}
