"""MLflow search semantics for runs and experiments (tracking.selectors.search)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.errors import InvalidParameter
from tracking.models import (
    Dataset,
    Experiment,
    ExperimentTag,
    LatestMetric,
    Param,
    Run,
    RunInput,
    RunTag,
)
from tracking.selectors.search import search_experiments, search_runs

NAN = float("nan")
CONTEXT = "mlflow.data.context"


# ---------------------------------------------------------------------------
# Builders: plain bulk_create, as the search reads rows, not services
# ---------------------------------------------------------------------------


def make_experiment(workspace, name, *, created=0, updated=None, deleted=False, tags=None):
    experiment = Experiment.objects.create(
        workspace=workspace,
        name=name,
        artifact_location=f"file:///artifacts/{name}",
        lifecycle_stage="deleted" if deleted else "active",
        creation_time=created,
        last_update_time=created if updated is None else updated,
    )
    ExperimentTag.objects.bulk_create(
        ExperimentTag(experiment=experiment, key=k, value=v) for k, v in (tags or {}).items()
    )
    return experiment


@dataclass
class RunSpec:
    name: str
    uuid: int  # the run_uuid as a number, so tie-breaks are predictable
    start: int | None = None
    end: int | None = None
    status: str = "FINISHED"
    user: str = ""
    deleted: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # (dataset name, digest, input tags as stored)
    inputs: list[tuple[str, str, object]] = field(default_factory=list)


def make_runs(experiment, specs: list[RunSpec]) -> dict[str, Run]:
    runs = Run.objects.bulk_create(
        Run(
            run_uuid=f"{spec.uuid:032x}",
            workspace_id=experiment.workspace_id,
            experiment=experiment,
            name=spec.name,
            user_id=spec.user,
            status=spec.status,
            start_time=spec.start,
            end_time=spec.end,
            lifecycle_stage="deleted" if spec.deleted else "active",
            artifact_uri=f"file:///artifacts/e{experiment.pk}/{spec.name}",
        )
        for spec in specs
    )
    metrics, params, tags, inputs = [], [], [], []
    for run, spec in zip(runs, specs, strict=True):
        for key, value in spec.metrics.items():
            is_nan = value != value
            metrics.append(
                LatestMetric(
                    run=run,
                    key=key,
                    value=0.0 if is_nan else value,
                    is_nan=is_nan,
                    timestamp=1,
                    step=0,
                )
            )
        params += [Param(run=run, key=k, value=v) for k, v in spec.params.items()]
        tags += [RunTag(run=run, key=k, value=v) for k, v in spec.tags.items()]
        for name, digest, input_tags in spec.inputs:
            dataset, _ = Dataset.objects.get_or_create(
                experiment=experiment,
                name=name,
                digest=digest,
                defaults={
                    "dataset_uuid": f"{name}-{digest}-{experiment.pk}",
                    "source_type": "local",
                    "source": "{}",
                },
            )
            inputs.append(RunInput(run=run, dataset=dataset, tags=input_tags))
    LatestMetric.objects.bulk_create(metrics)
    Param.objects.bulk_create(params)
    RunTag.objects.bulk_create(tags)
    RunInput.objects.bulk_create(inputs)
    return {run.name: run for run in runs}


def context(value: str) -> list[dict[str, str]]:
    return [{"key": CONTEXT, "value": value}]


# ---------------------------------------------------------------------------
# The runs every table below searches
# ---------------------------------------------------------------------------


@dataclass
class World:
    workspace: object
    other_workspace: object
    e1: Experiment
    e2: Experiment
    e_other: Experiment
    runs: dict[str, Run]

    def search(self, **kwargs) -> list[str]:
        """Names of the matching runs, in order, over e1 and e2."""
        kwargs.setdefault("experiment_ids", [str(self.e1.pk), str(self.e2.pk)])
        pks, _ = search_runs(workspace=self.workspace, **kwargs)
        names = dict(Run.objects.filter(pk__in=pks).values_list("pk", "name"))
        return [names[pk] for pk in pks]


@pytest.fixture
def world(cast) -> World:
    e1 = make_experiment(cast.workspace, "e1", created=1)
    e2 = make_experiment(cast.workspace, "e2", created=2)
    e_other = make_experiment(cast.other_workspace, "e-other", created=3)
    runs = make_runs(
        e1,
        [
            RunSpec(
                "alpha",
                1,
                start=1000,
                end=2000,
                user="ann",
                metrics={"acc": 0.9, "loss": 0.1},
                params={"lr": "0.01", "model": "cnn"},
                tags={"team": "vision", "priority": "2", "mlflow.runName": "alpha"},
                inputs=[("train-set", "d1", context("training"))],
            ),
            RunSpec(
                "beta",
                2,
                start=3000,
                status="RUNNING",
                user="bob",
                metrics={"acc": 0.5, "loss": NAN},
                params={"lr": "0.1", "model": "CNN-large"},
                tags={"team": "nlp", "priority": "1"},
                inputs=[("eval_set", "d2", context("eval"))],
            ),
            RunSpec(
                "gamma",
                3,
                start=2000,
                end=2500,
                status="FAILED",
                user="ann",
                metrics={"acc": 0.7},
                params={"lr": "0.001"},
                tags={"priority": "3"},
                # Input tags that are not a list must not break a context search.
                inputs=[("weird", "d9", {CONTEXT: "training"})],
            ),
            RunSpec(
                "delta",
                4,
                status="SCHEDULED",
                params={"model": "rf"},
                tags={"team": "vision"},
                # A list element that is not an object is skipped, not an error.
                inputs=[("weird", "d9", ["junk", 7, {"key": CONTEXT, "value": "odd"}])],
            ),
            RunSpec("epsilon", 5, start=4000, deleted=True, user="ann", metrics={"acc": 1.0}),
            RunSpec(
                "zeta",
                6,
                start=3000,
                end=3500,
                user="zed",
                metrics={"acc": 0.5},
                params={"lr": "0.1"},
                tags={"team": "Vision"},
                inputs=[("evalXset", "d3", context("eval"))],
            ),
        ],
    )
    runs |= make_runs(
        e2,
        [
            RunSpec(
                "eta",
                7,
                start=500,
                end=600,
                metrics={"acc": 0.95},
                params={"lr": "0.01"},
            )
        ],
    )
    make_runs(
        e_other,
        [RunSpec("intruder", 8, start=9999, metrics={"acc": 0.99}, params={"lr": "0.01"})],
    )
    return World(cast.workspace, cast.other_workspace, e1, e2, e_other, runs)


ACTIVE = {"alpha", "beta", "gamma", "delta", "zeta", "eta"}


# ---------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------

FILTERS = [
    ("", ACTIVE),
    # metrics, compared on the latest value; NaN fails all but !=
    ("metrics.acc > 0.6", {"alpha", "gamma", "eta"}),
    ("metrics.acc >= 0.5", {"alpha", "beta", "gamma", "zeta", "eta"}),
    ("metrics.acc = 0.5", {"beta", "zeta"}),
    ("metrics.acc != 0.5", {"alpha", "gamma", "eta"}),
    ("metrics.acc <= 0.7", {"beta", "gamma", "zeta"}),
    ("metric.acc < 5e-1", set()),
    ("metrics.acc > -1", {"alpha", "beta", "gamma", "zeta", "eta"}),
    ("metrics.loss < 1", {"alpha"}),
    ("metrics.loss >= 0", {"alpha"}),
    ("metrics.loss = 0", set()),
    ("metrics.loss != 0.1", {"beta"}),
    ("metrics.`acc` > 0.92", {"eta"}),
    ("metrics.missing > 0", set()),
    # params and tags
    ("params.lr = '0.1'", {"beta", "zeta"}),
    ('param.lr = "0.01"', {"alpha", "eta"}),
    ("params.lr != '0.1'", {"alpha", "gamma", "eta"}),
    ("params.model LIKE 'cnn%'", {"alpha"}),
    ("params.model LIKE 'CNN%'", {"beta"}),
    ("params.model ILIKE 'cnn%'", {"alpha", "beta"}),
    ("params.model LIKE '_NN-%'", {"beta"}),
    ("params.model LIKE 'c_n'", {"alpha"}),
    ("params.model IS NULL", {"gamma", "zeta", "eta"}),
    ("params.model IS NOT NULL", {"alpha", "beta", "delta"}),
    ("tags.team = 'vision'", {"alpha", "delta"}),
    ("tags.team ILIKE 'VISION'", {"alpha", "delta", "zeta"}),
    ("tags.team LIKE 'V%'", {"zeta"}),
    ("tags.team != 'vision'", {"beta", "zeta"}),
    ("tags.team IS NULL", {"gamma", "eta"}),
    ("tags.team IS NOT NULL", {"alpha", "beta", "delta", "zeta"}),
    ("tags.`mlflow.runName` = 'alpha'", {"alpha"}),
    ("tags.mlflow.runName = 'alpha'", {"alpha"}),
    # attributes
    ("attributes.status = 'FINISHED'", {"alpha", "zeta", "eta"}),
    ("attributes.status != 'FINISHED'", {"beta", "gamma", "delta"}),
    ("status = 'finished'", set()),
    ("attributes.status ILIKE 'fin%'", {"alpha", "zeta", "eta"}),
    ("attributes.run_name = 'beta'", {"beta"}),
    ("run_name LIKE '%eta'", {"beta", "zeta", "eta"}),
    ("attributes.`Run name` ILIKE 'ALPHA'", {"alpha"}),
    ("attributes.user_id = 'ann'", {"alpha", "gamma"}),
    ("attributes.start_time > 1500", {"beta", "gamma", "zeta"}),
    ("attributes.created >= 3000", {"beta", "zeta"}),
    ("attributes.start_time > 99999999999999999999999", set()),
    ("attributes.end_time < 3000", {"alpha", "gamma", "eta"}),
    ("attributes.end_time != 2000", {"gamma", "zeta", "eta"}),
    (f"attributes.run_id = '{1:032x}'", {"alpha"}),
    (f"attributes.run_id IN ('{1:032x}', '{3:032x}', '{8:032x}')", {"alpha", "gamma"}),
    (f"run_id NOT IN ('{1:032x}')", ACTIVE - {"alpha"}),
    ("attributes.artifact_uri LIKE '%/eta'", {"eta"}),
    # datasets: name, digest and the mlflow.data.context input tag
    ("datasets.name = 'train-set'", {"alpha"}),
    ("dataset.name IN ('train-set', 'eval_set')", {"alpha", "beta"}),
    ("datasets.name NOT IN ('train-set')", {"beta", "gamma", "delta", "zeta"}),
    ("datasets.name != 'train-set'", {"beta", "gamma", "delta", "zeta"}),
    ("datasets.name LIKE 'eval_set'", {"beta", "zeta"}),
    (r"datasets.name LIKE 'eval\_set'", {"beta"}),
    ("datasets.name ILIKE 'EVAL%'", {"beta", "zeta"}),
    ("datasets.digest = 'd2'", {"beta"}),
    ("datasets.context = 'training'", {"alpha"}),
    ("datasets.context IN ('eval', 'odd')", {"beta", "delta", "zeta"}),
    ("datasets.context NOT IN ('eval')", {"alpha", "delta"}),
    ("datasets.context != 'training'", {"beta", "delta", "zeta"}),
    ("datasets.context LIKE 'tr%'", {"alpha"}),
    ("datasets.context ILIKE 'EV%'", {"beta", "zeta"}),
    # conjunctions
    ("metrics.acc > 0.6 and params.lr = '0.01'", {"alpha", "eta"}),
    (
        "metrics.acc >= 0.5 AND tags.team ILIKE 'vision' AND attributes.status = 'FINISHED'",
        {"alpha", "zeta"},
    ),
    ("datasets.context = 'eval' and datasets.name = 'evalXset'", {"zeta"}),
    ("params.lr = '0.1' and params.lr = '0.01'", set()),
]


@pytest.mark.parametrize(("filter_string", "expected"), FILTERS)
def test_filter(world, filter_string, expected):
    assert set(world.search(filter_string=filter_string)) == expected


def test_like_wildcards_in_values_are_literal_when_escaped(world):
    make_runs(world.e1, [RunSpec("pct", 20, params={"p": "100%"}), RunSpec("x", 21)])
    Param.objects.create(run=Run.objects.get(name="x"), key="p", value="1000")
    assert world.search(filter_string=r"params.p LIKE '100\%'") == ["pct"]
    assert set(world.search(filter_string="params.p LIKE '100%'")) == {"pct", "x"}
    # A trailing backslash is a literal, not a database error.
    assert world.search(filter_string="params.p LIKE '100\\'") == []


def test_glob_characters_are_literal_in_like(world):
    make_runs(world.e1, [RunSpec("star", 30, params={"g": "a*[b]?"}), RunSpec("plain", 31)])
    Param.objects.create(run=Run.objects.get(name="plain"), key="g", value="axxbx")
    assert world.search(filter_string="params.g LIKE 'a*[b]?'") == ["star"]
    assert world.search(filter_string="params.g LIKE 'a*[b]_'") == ["star"]
    assert world.search(filter_string="params.g ILIKE 'A*[B]%'") == ["star"]


# ---------------------------------------------------------------------------
# Ordering
# ---------------------------------------------------------------------------

ORDERS = [
    # default: start_time DESC (missing last), then run id
    (None, ["beta", "zeta", "gamma", "alpha", "eta", "delta"]),
    ([], ["beta", "zeta", "gamma", "alpha", "eta", "delta"]),
    (["metrics.acc DESC"], ["eta", "alpha", "gamma", "beta", "zeta", "delta"]),
    (["metrics.acc ASC"], ["beta", "zeta", "gamma", "alpha", "eta", "delta"]),
    (["metrics.acc"], ["beta", "zeta", "gamma", "alpha", "eta", "delta"]),
    # NaN after real values, before missing ones, in both directions
    (["metrics.loss ASC"], ["alpha", "beta", "zeta", "gamma", "eta", "delta"]),
    (["metrics.loss DESC"], ["alpha", "beta", "zeta", "gamma", "eta", "delta"]),
    (["params.lr ASC"], ["gamma", "alpha", "eta", "beta", "zeta", "delta"]),
    (
        ["params.lr DESC", "attributes.start_time ASC"],
        ["beta", "zeta", "eta", "alpha", "gamma", "delta"],
    ),
    (["tags.priority DESC"], ["gamma", "alpha", "beta", "zeta", "eta", "delta"]),
    (["tags.`priority` ASC"], ["beta", "alpha", "gamma", "zeta", "eta", "delta"]),
    (["attributes.end_time ASC"], ["eta", "alpha", "gamma", "zeta", "beta", "delta"]),
    (["attributes.end_time DESC"], ["zeta", "gamma", "alpha", "eta", "beta", "delta"]),
    (["start_time ASC"], ["eta", "alpha", "gamma", "beta", "zeta", "delta"]),
    (["created DESC"], ["beta", "zeta", "gamma", "alpha", "eta", "delta"]),
    (["attributes.run_name ASC"], ["alpha", "beta", "delta", "eta", "gamma", "zeta"]),
    (["attributes.run_name DESC"], ["zeta", "gamma", "eta", "delta", "beta", "alpha"]),
    (["attributes.run_id DESC"], ["eta", "zeta", "delta", "gamma", "beta", "alpha"]),
    (["attributes.user_id ASC"], ["eta", "delta", "gamma", "alpha", "beta", "zeta"]),
    (
        ["attributes.status ASC", "metrics.acc DESC"],
        ["gamma", "eta", "alpha", "zeta", "beta", "delta"],
    ),
    (
        ["metrics.acc DESC", "tags.priority ASC"],
        ["eta", "alpha", "gamma", "beta", "zeta", "delta"],
    ),
    (["tags.missing DESC"], ["beta", "zeta", "gamma", "alpha", "eta", "delta"]),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDERS)
def test_order(world, order_by, expected):
    assert world.search(order_by=order_by) == expected


def test_filter_and_order_together(world):
    assert world.search(
        filter_string="metrics.acc >= 0.5 and params.lr != '0.001'",
        order_by=["params.lr ASC", "metrics.acc ASC"],
    ) == ["alpha", "eta", "beta", "zeta"]


def test_deleted_runs_sort_with_the_rest(world):
    assert world.search(run_view_type="ALL", order_by=["metrics.acc DESC"])[:3] == [
        "epsilon",
        "eta",
        "alpha",
    ]


# ---------------------------------------------------------------------------
# View types, experiments, workspaces
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view_type", "expected"),
    [
        ("ACTIVE_ONLY", ACTIVE),
        ("DELETED_ONLY", {"epsilon"}),
        ("ALL", ACTIVE | {"epsilon"}),
        ("all", ACTIVE | {"epsilon"}),
        (1, ACTIVE),
        (2, {"epsilon"}),
        ("3", ACTIVE | {"epsilon"}),
    ],
)
def test_run_view_type(world, view_type, expected):
    assert set(world.search(run_view_type=view_type)) == expected


def test_only_the_named_experiments_are_searched(world):
    assert set(world.search(experiment_ids=[str(world.e2.pk)])) == {"eta"}
    assert set(world.search(experiment_ids=[world.e1.pk])) == ACTIVE - {"eta"}
    assert world.search(experiment_ids=[]) == []
    # An id that cannot exist is no experiment here, not an error.
    assert world.search(experiment_ids=[str(2**70), "-4", "0"]) == []


def test_other_workspaces_runs_are_never_returned(world):
    ids = [str(world.e_other.pk), str(world.e1.pk)]
    names = world.search(
        experiment_ids=ids, filter_string="metrics.acc > 0.98", run_view_type="ALL"
    )
    assert names == ["epsilon"]
    assert "intruder" not in world.search(experiment_ids=ids, order_by=["metrics.acc DESC"])
    assert world.search(experiment_ids=[str(world.e_other.pk)]) == []
    # And from the other side: our experiment id finds nothing in their workspace.
    pks, token = search_runs(workspace=world.other_workspace, experiment_ids=[str(world.e1.pk)])
    assert (pks, token) == ([], None)
    pks, _ = search_runs(workspace=world.other_workspace, experiment_ids=[str(world.e_other.pk)])
    assert pks == [Run.objects.get(name="intruder").pk]


def test_returns_primary_keys(world):
    pks, token = search_runs(
        workspace=world.workspace,
        experiment_ids=[str(world.e1.pk)],
        filter_string="attributes.run_name = 'alpha'",
    )
    assert pks == [world.runs["alpha"].pk]
    assert token is None


# ---------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------


def collect_pages(search, max_results: int) -> tuple[list, int]:
    items, token, pages = [], None, 0
    while True:
        page, token = search(max_results=max_results, page_token=token)
        pages += 1
        assert len(page) <= max_results
        items += page
        if token is None:
            return items, pages
        assert isinstance(token, str)
        assert pages < 100


@pytest.mark.parametrize(("count", "max_results", "pages"), [(25, 7, 4), (21, 7, 3), (3, 5, 1)])
def test_runs_paging(cast, count, max_results, pages):
    experiment = make_experiment(cast.workspace, "paged")
    # Repeated start times and metric values: only the run id breaks the ties.
    make_runs(
        experiment,
        [
            RunSpec(f"r{i:02d}", 1000 + i, start=i // 4, metrics={"m": float(i % 3)})
            for i in range(count)
        ],
    )
    for order_by in (None, ["metrics.m DESC"], ["attributes.start_time ASC"]):

        def search(order_by=order_by, **kwargs):
            return search_runs(
                workspace=cast.workspace,
                experiment_ids=[str(experiment.pk)],
                order_by=order_by,
                **kwargs,
            )

        everything, _ = search(max_results=1000)
        assert len(everything) == count
        paged, page_count = collect_pages(search, max_results)
        assert paged == everything
        assert len(set(paged)) == count
        assert page_count == pages


def test_page_token_is_mlflows(world):
    first, token = search_runs(
        workspace=world.workspace, experiment_ids=[str(world.e1.pk)], max_results=2
    )
    assert json.loads(base64.b64decode(token)) == {"offset": 2}
    second, _ = search_runs(
        workspace=world.workspace,
        experiment_ids=[str(world.e1.pk)],
        max_results=2,
        page_token=base64.b64encode(b'{"offset": 2}').decode(),
    )
    assert len(second) == 2
    assert not set(first) & set(second)
    # Beyond the end: an empty last page.
    beyond = base64.b64encode(b'{"offset": 500}').decode()
    assert search_runs(
        workspace=world.workspace, experiment_ids=[str(world.e1.pk)], page_token=beyond
    ) == ([], None)


def test_max_results_bounds(world):
    ids = [str(world.e1.pk)]
    assert len(search_runs(workspace=world.workspace, experiment_ids=ids, max_results=1)[0]) == 1
    pks, token = search_runs(workspace=world.workspace, experiment_ids=ids, max_results=50000)
    assert len(pks) == 5
    assert token is None
    assert len(search_runs(workspace=world.workspace, experiment_ids=ids, max_results=None)[0]) == 5
    assert len(search_runs(workspace=world.workspace, experiment_ids=ids, max_results="3")[0]) == 3


# ---------------------------------------------------------------------------
# Invalid input
# ---------------------------------------------------------------------------


def b64(value: object) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filter_string": "metrics.acc > 'x'"},
        {"filter_string": "metrics.acc LIKE '1'"},
        {"filter_string": "metrics.acc IS NULL"},
        {"filter_string": "foo.bar = 1"},
        {"filter_string": "params.lr > '1'"},
        {"filter_string": "params.lr = 1"},
        {"filter_string": "tags.t IN ('a')"},
        {"filter_string": "attributes.status IN ('FINISHED')"},
        {"filter_string": "attributes.status > 'A'"},
        {"filter_string": "attributes.start_time = 'yesterday'"},
        {"filter_string": "attributes.start_time LIKE '1%'"},
        {"filter_string": "attributes.lifecycle_stage = 'active'"},
        {"filter_string": "attributes.nope = 'x'"},
        {"filter_string": "datasets.source = 'x'"},
        {"filter_string": "datasets.name > 'x'"},
        {"filter_string": "params.a = 'x' or params.b = 'y'"},
        {"filter_string": "params.a = 'x'; params.b = 'y'"},
        {"filter_string": "run_id IN ()"},
        {"filter_string": "metrics.acc >"},
        {"order_by": ["metrics.acc UP"]},
        {"order_by": ["metrics.acc", "metrics.acc DESC"]},
        {"order_by": ["start_time", "created DESC"]},
        {"order_by": ["datasets.name"]},
        {"order_by": ["attributes.nope"]},
        {"order_by": ["foo.bar"]},
        {"order_by": ["metrics.a b c"]},
        {"page_token": "not base64!"},
        {"page_token": base64.b64encode(b"not json").decode()},
        {"page_token": b64([1, 2])},
        {"page_token": b64({"offset": -1})},
        {"page_token": b64({"offset": "x"})},
        {"page_token": b64({"start": 3})},
        {"max_results": 0},
        {"max_results": -5},
        {"max_results": 50001},
        {"max_results": "many"},
        {"max_results": 1.5},
        {"run_view_type": "SOMETIMES"},
        {"run_view_type": 7},
        {"run_view_type": None},
        {"experiment_ids": ["abc"]},
    ],
)
def test_invalid_run_search(world, kwargs):
    kwargs.setdefault("experiment_ids", [str(world.e1.pk)])
    with pytest.raises(InvalidParameter) as excinfo:
        search_runs(workspace=world.workspace, **kwargs)
    assert excinfo.value.code == "INVALID_PARAMETER_VALUE"
    assert excinfo.value.message


# ---------------------------------------------------------------------------
# Speed: one statement whatever the filter, and fast on 10,000 runs
# ---------------------------------------------------------------------------


def test_one_query_for_any_search(world):
    with CaptureQueriesContext(connection) as queries:
        search_runs(
            workspace=world.workspace,
            experiment_ids=[str(world.e1.pk), str(world.e2.pk)],
            filter_string=(
                "metrics.acc > 0 and params.lr != 'x' and tags.team IS NOT NULL "
                "and datasets.context != 'x' and attributes.status = 'FINISHED'"
            ),
            order_by=["metrics.acc DESC", "params.lr", "tags.team DESC", "attributes.end_time"],
            max_results=2,
        )
    assert len(queries) == 1


def test_ten_thousand_runs(cast):
    experiment = make_experiment(cast.workspace, "big")
    count = 10_000
    runs = Run.objects.bulk_create(
        Run(
            run_uuid=f"{i:032x}",
            workspace=cast.workspace,
            experiment=experiment,
            name=f"run-{i}",
            status="FINISHED" if i % 5 else "FAILED",
            start_time=i,
        )
        for i in range(count)
    )
    LatestMetric.objects.bulk_create(
        LatestMetric(run=run, key="acc", value=(i * 7919 % count) / count, timestamp=1, step=0)
        for i, run in enumerate(runs)
    )
    Param.objects.bulk_create(
        Param(run=run, key="lr", value=str(i % 10)) for i, run in enumerate(runs)
    )
    RunTag.objects.bulk_create(
        RunTag(run=run, key="team", value="a" if i % 2 else "b") for i, run in enumerate(runs)
    )
    kwargs = {
        "workspace": cast.workspace,
        "experiment_ids": [str(experiment.pk)],
        "filter_string": "metrics.acc > 0.5 and params.lr = '3' and attributes.status = 'FINISHED'",
        "order_by": ["metrics.acc DESC"],
        "max_results": 50,
    }
    search_runs(**kwargs)  # warm the cache
    with CaptureQueriesContext(connection) as queries:
        pks, token = search_runs(**kwargs)
    assert len(queries) == 1  # set-based: no query per run (speed is make bench's job)
    expected = sorted(
        (
            (i * 7919 % count) / count,
            i,
        )
        for i in range(count)
        if (i * 7919 % count) / count > 0.5 and i % 10 == 3 and i % 5
    )
    expected.reverse()
    assert pks == [runs[i].pk for _, i in expected[:50]]
    assert token is not None


# ---------------------------------------------------------------------------
# Experiments
# ---------------------------------------------------------------------------


@dataclass
class Experiments:
    workspace: object
    by_name: dict[str, Experiment]

    def search(self, **kwargs) -> list[str]:
        experiments, _ = search_experiments(workspace=self.workspace, **kwargs)
        return [experiment.name for experiment in experiments]


@pytest.fixture
def experiments(cast) -> Experiments:
    # The searches below read only the experiments made here; the Default every workspace
    # has (MLflow's id 0) is searched in test_experiments.py.
    Experiment.objects.filter(is_default=True).delete()
    made = [
        make_experiment(
            cast.workspace,
            "exp-one",
            created=100,
            updated=500,
            tags={"stage": "prod", "owner": "ann"},
        ),
        make_experiment(cast.workspace, "exp-two", created=200, updated=300, tags={"stage": "dev"}),
        make_experiment(cast.workspace, "Exp-Three", created=300, updated=300, deleted=True),
        make_experiment(cast.workspace, "other", created=150, tags={"stage": "Prod"}),
        make_experiment(cast.other_workspace, "exp-one", created=999, tags={"stage": "prod"}),
    ]
    return Experiments(cast.workspace, {e.name: e for e in made[:4]})


EXPERIMENT_FILTERS = [
    ("", "ACTIVE_ONLY", ["exp-two", "other", "exp-one"]),
    ("", "ALL", ["Exp-Three", "exp-two", "other", "exp-one"]),
    ("", "DELETED_ONLY", ["Exp-Three"]),
    ("", 3, ["Exp-Three", "exp-two", "other", "exp-one"]),
    ("name = 'exp-one'", "ALL", ["exp-one"]),
    ("attribute.name = 'exp-two'", "ALL", ["exp-two"]),
    ("name != 'other'", "ACTIVE_ONLY", ["exp-two", "exp-one"]),
    ("name LIKE 'exp-%'", "ALL", ["exp-two", "exp-one"]),
    ("name ILIKE 'exp-%'", "ALL", ["Exp-Three", "exp-two", "exp-one"]),
    ("name ILIKE '%THREE'", "ACTIVE_ONLY", []),
    ("tags.stage = 'prod'", "ALL", ["exp-one"]),
    ("tags.stage ILIKE 'prod'", "ALL", ["other", "exp-one"]),
    ("tags.stage LIKE 'd%'", "ALL", ["exp-two"]),
    ("tags.stage != 'prod'", "ALL", ["exp-two", "other"]),
    ("tags.owner IS NULL", "ALL", ["Exp-Three", "exp-two", "other"]),
    ("tags.owner IS NOT NULL", "ALL", ["exp-one"]),
    ("tags.`stage` = 'prod' and tags.owner = 'ann'", "ALL", ["exp-one"]),
    ("creation_time > 120", "ACTIVE_ONLY", ["exp-two", "other"]),
    ("creation_time <= 150", "ACTIVE_ONLY", ["other", "exp-one"]),
    ("last_update_time = 300", "ALL", ["Exp-Three", "exp-two"]),
    ("last_update_time != 300", "ALL", ["other", "exp-one"]),
    ("creation_time > 100 and name LIKE '%o'", "ALL", ["exp-two"]),
]


@pytest.mark.parametrize(("filter_string", "view_type", "expected"), EXPERIMENT_FILTERS)
def test_experiment_filter(experiments, filter_string, view_type, expected):
    assert experiments.search(filter_string=filter_string, view_type=view_type) == expected


def test_experiment_id_filter(experiments):
    one, two = experiments.by_name["exp-one"].pk, experiments.by_name["exp-two"].pk
    assert experiments.search(filter_string=f"experiment_id = '{one}'") == ["exp-one"]
    assert experiments.search(filter_string=f"experiment_id IN ('{one}', '{two}')") == [
        "exp-two",
        "exp-one",
    ]
    assert experiments.search(filter_string=f"experiment_id NOT IN ('{one}')") == [
        "exp-two",
        "other",
    ]
    assert experiments.search(filter_string=f"experiment_id != '{two}'") == ["other", "exp-one"]
    other_ws_id = Experiment.objects.get(workspace__name="ws-other").pk
    assert experiments.search(filter_string=f"experiment_id = '{other_ws_id}'") == []


@pytest.mark.parametrize(
    ("order_by", "view_type", "expected"),
    [
        (["name ASC"], "ACTIVE_ONLY", ["exp-one", "exp-two", "other"]),
        (["name DESC"], "ACTIVE_ONLY", ["other", "exp-two", "exp-one"]),
        (["attribute.name"], "ACTIVE_ONLY", ["exp-one", "exp-two", "other"]),
        (["last_update_time DESC"], "ACTIVE_ONLY", ["exp-one", "exp-two", "other"]),
        # Tied update times: the later experiment first (experiment_id DESC tie-break).
        (["last_update_time ASC"], "ALL", ["other", "Exp-Three", "exp-two", "exp-one"]),
        (["creation_time ASC"], "ALL", ["exp-one", "other", "exp-two", "Exp-Three"]),
        (["experiment_id ASC"], "ALL", ["exp-one", "exp-two", "Exp-Three", "other"]),
        (["experiment_id DESC"], "ALL", ["other", "Exp-Three", "exp-two", "exp-one"]),
        (
            ["last_update_time DESC", "experiment_id ASC"],
            "ALL",
            ["exp-one", "exp-two", "Exp-Three", "other"],
        ),
    ],
)
def test_experiment_order(experiments, order_by, view_type, expected):
    assert experiments.search(order_by=order_by, view_type=view_type) == expected


def test_experiment_tags_come_prefetched(experiments):
    with CaptureQueriesContext(connection) as queries:
        found, _ = search_experiments(
            workspace=experiments.workspace, filter_string="tags.stage IS NOT NULL"
        )
        tags = {e.name: {t.key: t.value for t in e.tags.all()} for e in found}
    assert len(queries) == 2
    assert tags == {
        "exp-two": {"stage": "dev"},
        "other": {"stage": "Prod"},
        "exp-one": {"stage": "prod", "owner": "ann"},
    }


def test_experiment_paging(cast):
    Experiment.objects.filter(is_default=True).delete()  # only the twelve made here
    for i in range(12):
        make_experiment(cast.workspace, f"e{i:02d}", created=i // 3)

    def search(**kwargs):
        return search_experiments(workspace=cast.workspace, **kwargs)

    everything, _ = search(max_results=1000)
    assert len(everything) == 12
    paged, pages = collect_pages(search, 5)
    assert [e.pk for e in paged] == [e.pk for e in everything]
    assert pages == 3


def test_experiments_of_other_workspaces_are_never_returned(experiments, cast):
    names, _ = search_experiments(workspace=cast.other_workspace, view_type="ALL")
    assert [e.name for e in names] == ["exp-one"]
    assert names[0].workspace_id == cast.other_workspace.pk


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filter_string": "name > 'a'"},
        {"filter_string": "name IN ('a')"},
        {"filter_string": "creation_time = 1.5"},
        {"filter_string": "creation_time LIKE '1%'"},
        {"filter_string": "creation_time = 'soon'"},
        {"filter_string": "experiment_id = 'abc'"},
        {"filter_string": "experiment_id > '1'"},
        {"filter_string": "tags.stage > 'a'"},
        {"filter_string": "tags.stage IN ('a')"},
        {"filter_string": "params.lr = 'a'"},
        {"filter_string": "lifecycle_stage = 'active'"},
        {"filter_string": "name IS NULL"},
        {"order_by": ["tags.stage"]},
        {"order_by": ["nope"]},
        {"order_by": ["name sideways"]},
        {"page_token": "???"},
        {"max_results": 0},
        {"max_results": 50001},
        {"max_results": None},
        {"view_type": "NONE"},
    ],
)
def test_invalid_experiment_search(experiments, kwargs):
    with pytest.raises(InvalidParameter):
        search_experiments(workspace=experiments.workspace, **kwargs)
