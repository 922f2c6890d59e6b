"""The access rows of tracking's pages and of the MLflow protocol, run with every other
route's by tests/test_route_access.py (tests/access.py says how rows are read).

The protocol's rule: every route needs the reader role on the workspace, writes need
contributor; an outsider finds no workspace (404), a call without credentials is a 401.
Every write route is tried by the reader and the outsider with a call that the owner's
and the contributor's same call shows to be a real write; theirs must change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote, urlencode

from portal.tests.test_permissions import ws_kw
from tests.access import LOGIN, NOT_IMPLEMENTED, Expect, Row, Scene, by_role, protocol_key

# --- Pages ----------------------------------------------------------------------------------

SEES = by_role(200, 200, 200, 404, LOGIN)
CHANGES = by_role(302, 302, 403, 404, LOGIN)  # a form's answer is a redirect, done or not


def _experiment(s: Scene) -> dict:
    return {**ws_kw(s), "experiment_id": s.experiment.pk}


def _run(s: Scene) -> dict:
    return {**ws_kw(s), "run_id": s.run.run_uuid}


def _model(s: Scene) -> dict:
    return {**ws_kw(s), "name": s.model.name}


def _page(label: str, name: str, method: str, expect: Expect, kwargs=ws_kw, **extra) -> Row:
    return Row(label, name, method, expect, kwargs=kwargs, **extra)


PAGES: list[Row] = [
    _page("experiments", "experiments", "get", SEES),
    _page("experiment create", "experiment-create", "post", CHANGES, body={"name": "new"}),
    _page("experiment", "experiment", "get", SEES, _experiment),
    _page(
        "experiment rename",
        "experiment-action",
        "post",
        CHANGES,
        _experiment,
        body={"action": "rename", "name": "renamed"},
    ),
    _page(
        "experiment delete",
        "experiment-action",
        "post",
        CHANGES,
        _experiment,
        body={"action": "delete"},
    ),
    _page(
        "runs delete",
        "run-action",
        "post",
        CHANGES,
        body=lambda s: {"action": "delete", "run_ids": [s.run.run_uuid]},
    ),
    _page("run", "run", "get", SEES, _run),
    _page("run artifacts", "run-artifacts", "get", SEES, _run),
    _page(
        "run artifact preview",
        "run-artifact-preview",
        "get",
        SEES,
        _run,
        query="path=hello.txt",
        headers={"HX-Request": "true"},  # the pane htmx asks for; a visit is redirected
    ),
    _page("run artifact file", "run-artifact", "get", SEES, _run, query="path=hello.txt"),
    _page(
        "compare",
        "compare",
        "get",
        SEES,
        query=lambda s: f"runs={s.run.run_uuid},{s.deleted_run.run_uuid}",
    ),
    _page(
        "metric chart data",
        "chart-metric",
        "get",
        SEES,
        query=lambda s: f"key=loss&runs={s.run.run_uuid}",
    ),
    _page("models", "models", "get", SEES),
    _page("model", "model", "get", SEES, _model),
    _page(
        "model alias set",
        "model-alias",
        "post",
        CHANGES,
        _model,
        body={"alias": "staging", "version": "1"},
    ),
    _page("model tag set", "model-tag", "post", CHANGES, _model, body={"key": "k", "value": "w"}),
    _page("model delete", "model-delete", "post", CHANGES, _model),
    _page(
        "model version delete",
        "model-version-delete",
        "post",
        CHANGES,
        lambda s: {**_model(s), "version": 1},
    ),
]


# --- The MLflow protocol -----------------------------------------------------------------

READS = by_role(200, 200, 200, 404, 401)
WRITES = by_role(200, 200, 403, 404, 401)
# Direct-to-storage transfers are refused to those allowed; the rest are refused first.
NOT_OFFERED_READ = by_role(NOT_IMPLEMENTED, NOT_IMPLEMENTED, NOT_IMPLEMENTED, 404, 401)
NOT_OFFERED_WRITE = by_role(NOT_IMPLEMENTED, NOT_IMPLEMENTED, 403, 404, 401)

Args = dict | Callable[[Scene], dict] | bytes | None


def _artifact(name: str) -> Callable[[Scene], str]:
    return lambda s: f"{s.run_artifacts}/{name}"


# What fills the path parameters of dynamic routes.
FILL: dict[str, Callable[[Scene], str]] = {
    "model_id": lambda s: s.logged_model.model_id,
    "dataset_id": lambda s: s.evaluation_dataset.dataset_id,
    "tag_key": lambda s: "k",
    "artifact_path": _artifact("hello.txt"),
}


def _route(method: str, pattern: str):
    import tracking.mlflow.urls  # noqa: F401  (importing it registers every route)
    from tracking.mlflow.protocol import routes

    found = [r for r in routes() if (r.method, r.pattern) == (method, pattern)]
    assert len(found) == 1, f"no protocol route {method} {pattern}"
    return found[0]


def _graphql_run(s: Scene) -> str:
    return (
        f'{{ mlflowGetRun(input: {{runId: "{s.run.run_uuid}"}}) {{ run {{ info {{ runId }} }} }} }}'
    )


def _call(
    method: str,
    pattern: str,
    args: Args = None,
    expect: Expect | None = None,
    *,
    label: str = "",
    writes: bool | None = None,
    upload: bytes | None = None,
    **fill: Callable[[Scene], str],
) -> list[Row]:
    """A protocol route called with `args`, once under each prefix it is served under
    (api/ and ajax-api/ take the same rows): the query string of a GET and of the raw
    (artifact) routes, the JSON body otherwise; a raw route's body is `upload` (or
    `args`, when they are bytes); `fill` overrides FILL. Write routes (the method is
    not GET and `expect` is WRITES) must change something where allowed.
    """
    expect = expect or (READS if method == "GET" else WRITES)
    fill = {**FILL, **fill}
    route = _route(method, pattern)

    def url(path: str) -> Callable[[Scene], str]:
        def at(s: Scene) -> str:
            filled = path
            for name, value in fill.items():
                filled = filled.replace(f"<path:{name}>", value(s))
                filled = filled.replace(f"<{name}>", quote(value(s)))
            return f"{s.tracking_path}/{filled}"

        return at

    in_query = method == "GET" or route.raw
    values = (lambda s: args(s)) if callable(args) else (lambda s: args)

    def query(s: Scene) -> str:
        given = values(s)
        return urlencode(given, doseq=True) if in_query and isinstance(given, dict) else ""

    def body(s: Scene):
        given = values(s)
        if upload is not None:
            return upload
        return given if isinstance(given, bytes) or not in_query else None

    return [
        Row(
            f"{label} ({path})" if label else f"mlflow {method} {path}",
            protocol_key(method, path),
            method.lower(),
            expect,
            kind="api",
            url=url(path),
            query=query,
            body=body,
            writes=(expect is WRITES) if writes is None else writes,
        )
        for path in route.paths
    ]


def _exp(s: Scene, **more) -> dict:
    return {"experiment_id": str(s.experiment.pk), **more}


def _run_args(s: Scene, **more) -> dict:
    return {"run_id": s.run.run_uuid, **more}


def _model_args(s: Scene, **more) -> dict:
    return {"name": s.model.name, **more}


def _version(s: Scene, **more) -> dict:
    return {"name": s.model.name, "version": "1", **more}


A = "2.0/mlflow"
D = "3.0/mlflow/datasets"
ARTIFACTS = "2.0/mlflow-artifacts"
TS = 1_700_000_000_000

_CALLS: list[list[Row]] = [
    # The server's version, at the URI's root
    _call("GET", "version"),
    # Experiments
    _call("POST", f"{A}/experiments/create", {"name": "new-exp"}),
    _call("GET", f"{A}/experiments/get", _exp),
    _call("GET", f"{A}/experiments/get-by-name", {"experiment_name": "access-exp"}),
    _call("GET", f"{A}/experiments/search", {"max_results": 10}),
    _call("POST", f"{A}/experiments/search", {"max_results": 10}, READS),
    _call("POST", f"{A}/experiments/update", lambda s: _exp(s, new_name="renamed")),
    _call("POST", f"{A}/experiments/delete", _exp),
    _call(
        "POST",
        f"{A}/experiments/restore",
        lambda s: {"experiment_id": str(s.deleted_experiment.pk)},
    ),
    _call("POST", f"{A}/experiments/set-experiment-tag", lambda s: _exp(s, key="k2", value="v")),
    _call("POST", f"{A}/experiments/delete-experiment-tag", lambda s: _exp(s, key="team")),
    # Runs
    _call("POST", f"{A}/runs/create", lambda s: _exp(s, run_name="new-run", start_time=TS)),
    _call("GET", f"{A}/runs/get", _run_args),
    _call("POST", f"{A}/runs/update", lambda s: _run_args(s, status="FINISHED", end_time=TS)),
    _call("POST", f"{A}/runs/delete", _run_args),
    _call("POST", f"{A}/runs/restore", lambda s: {"run_id": s.deleted_run.run_uuid}),
    _call("POST", f"{A}/runs/log-parameter", lambda s: _run_args(s, key="batch", value="32")),
    _call("POST", f"{A}/runs/set-tag", lambda s: _run_args(s, key="stage", value="dev")),
    _call("POST", f"{A}/runs/delete-tag", lambda s: _run_args(s, key="team")),
    _call(
        "POST",
        f"{A}/runs/log-metric",
        lambda s: _run_args(s, key="acc", value=0.5, timestamp=TS, step=0),
    ),
    _call(
        "POST",
        f"{A}/runs/log-batch",
        lambda s: _run_args(
            s,
            metrics=[{"key": "acc", "value": 0.5, "timestamp": TS, "step": 1}],
            params=[{"key": "epochs", "value": "3"}],
            tags=[{"key": "stage", "value": "dev"}],
        ),
    ),
    _call(
        "POST",
        f"{A}/runs/log-inputs",
        lambda s: _run_args(
            s,
            datasets=[
                {
                    "dataset": {
                        "name": "train",
                        "digest": "abc123",
                        "source_type": "local",
                        "source": '{"uri": "train.csv"}',
                    }
                }
            ],
        ),
    ),
    _call("POST", f"{A}/runs/search", lambda s: {"experiment_ids": [str(s.experiment.pk)]}, READS),
    _call(  # ajax-api/ only
        "POST",
        f"{A}/experiments/search-datasets",
        lambda s: {"experiment_ids": [str(s.experiment.pk), "0"]},
        READS,
    ),
    _call(
        "POST",
        f"{A}/runs/outputs",
        lambda s: _run_args(s, models=[{"model_id": s.logged_model.model_id, "step": 0}]),
    ),
    _call(
        "POST",
        f"{A}/runs/log-model",
        lambda s: _run_args(
            s,
            model_json=json.dumps(
                {
                    "artifact_path": "model",
                    "flavors": {},
                    "run_id": s.run.run_uuid,
                    "utc_time_created": "2026-01-01 00:00:00.000000",
                }
            ),
        ),
    ),
    # Metrics
    _call("GET", f"{A}/metrics/get-history", lambda s: _run_args(s, metric_key="loss")),
    _call(
        "GET",
        f"{A}/metrics/get-history-bulk-interval",
        lambda s: {"run_ids": [s.run.run_uuid], "metric_key": "loss"},
    ),
    _call(  # ajax-api/ only
        "GET",
        f"{A}/metrics/get-history-bulk",
        lambda s: {"run_id": [s.run.run_uuid], "metric_key": "loss"},
    ),
    # Registered models
    _call("POST", f"{A}/registered-models/create", {"name": "new-model"}),
    _call("GET", f"{A}/registered-models/get", _model_args),
    _call("POST", f"{A}/registered-models/rename", lambda s: _model_args(s, new_name="renamed")),
    _call(
        "PATCH", f"{A}/registered-models/update", lambda s: _model_args(s, description="changed")
    ),
    _call("DELETE", f"{A}/registered-models/delete", _model_args),
    _call("GET", f"{A}/registered-models/search", {"max_results": 10}),
    _call("GET", f"{A}/registered-models/get-latest-versions", _model_args),
    _call("POST", f"{A}/registered-models/get-latest-versions", _model_args, READS),
    _call("POST", f"{A}/registered-models/set-tag", lambda s: _model_args(s, key="k2", value="v")),
    _call("DELETE", f"{A}/registered-models/delete-tag", lambda s: _model_args(s, key="k")),
    _call("POST", f"{A}/registered-models/alias", lambda s: _version(s, alias="staging")),
    _call("DELETE", f"{A}/registered-models/alias", lambda s: _model_args(s, alias="champion")),
    _call("GET", f"{A}/registered-models/alias", lambda s: _model_args(s, alias="champion")),
    # Model versions
    _call(
        "POST",
        f"{A}/model-versions/create",
        lambda s: _model_args(s, source=f"runs:/{s.run.run_uuid}/model", run_id=s.run.run_uuid),
    ),
    _call("GET", f"{A}/model-versions/get", _version),
    _call("PATCH", f"{A}/model-versions/update", lambda s: _version(s, description="changed")),
    _call("POST", f"{A}/model-versions/transition-stage", lambda s: _version(s, stage="Staging")),
    _call("DELETE", f"{A}/model-versions/delete", _version),
    _call("GET", f"{A}/model-versions/search", {"max_results": 10}),
    _call("GET", f"{A}/model-versions/get-download-uri", _version),
    _call("POST", f"{A}/model-versions/set-tag", lambda s: _version(s, key="k2", value="v")),
    _call("DELETE", f"{A}/model-versions/delete-tag", lambda s: _version(s, key="k")),
    # Logged models (MLflow 3)
    _call("POST", f"{A}/logged-models", lambda s: _exp(s, name="new-logged-model")),
    _call("GET", f"{A}/logged-models/<model_id>"),
    _call("PATCH", f"{A}/logged-models/<model_id>", {"status": "LOGGED_MODEL_READY"}),
    _call("DELETE", f"{A}/logged-models/<model_id>"),
    _call(
        "POST",
        f"{A}/logged-models/<model_id>/params",
        {"params": [{"key": "depth", "value": "4"}]},
    ),
    _call("PATCH", f"{A}/logged-models/<model_id>/tags", {"tags": [{"key": "k2", "value": "v"}]}),
    _call("DELETE", f"{A}/logged-models/<model_id>/tags/<path:tag_key>"),
    _call(
        "POST",
        f"{A}/logged-models/search",
        lambda s: {"experiment_ids": [str(s.experiment.pk)]},
        READS,
    ),
    _call("GET", f"{A}/logged-models/<model_id>/artifacts/directories"),
    _call(
        "GET",
        f"{A}/logged-models/<model_id>/artifacts/files",
        {"artifact_file_path": "MLmodel"},
    ),
    # Evaluation datasets (MLflow 3, GenAI)
    _call("POST", f"{D}/create", {"name": "new-dataset", "tags": '{"k": "v"}'}),
    _call("GET", f"{D}/<dataset_id>"),
    _call("DELETE", f"{D}/<dataset_id>"),
    _call("POST", f"{D}/search", {"max_results": 10}, READS),
    _call("GET", f"{D}/search", {"filter_string": "name LIKE 'access%'"}),
    _call("PATCH", f"{D}/<dataset_id>/tags", {"tags": '{"k2": "v"}'}),
    _call("DELETE", f"{D}/<dataset_id>/tags/<path:tag_key>"),
    _call("POST", f"{D}/<dataset_id>/records", {"records": '[{"inputs": {"q": "b"}}]'}),
    _call("GET", f"{D}/<dataset_id>/records", {"max_results": 10}),
    _call(
        "DELETE",
        f"{D}/<dataset_id>/records",
        lambda s: {"dataset_record_ids": [r.record_id for r in s.evaluation_dataset.records.all()]},
    ),
    _call("GET", f"{D}/<dataset_id>/experiment-ids"),
    _call(
        "POST",
        f"{D}/<dataset_id>/add-experiments",
        lambda s: {"experiment_ids": [str(s.deleted_experiment.pk)]},
    ),
    _call(
        "POST",
        f"{D}/<dataset_id>/remove-experiments",
        lambda s: {"experiment_ids": [str(s.experiment.pk)]},
    ),
    # Artifacts: the proxied store, and the direct transfers that are not offered
    _call(
        "PUT",
        f"{ARTIFACTS}/artifacts/<path:artifact_path>",
        b"uploaded",
        artifact_path=_artifact("uploaded.txt"),
    ),
    _call("GET", f"{ARTIFACTS}/artifacts/<path:artifact_path>"),
    _call("GET", f"{ARTIFACTS}/artifacts", lambda s: {"path": s.run_artifacts}),
    _call("DELETE", f"{ARTIFACTS}/artifacts/<path:artifact_path>"),
    _call("GET", f"{A}/artifacts/list", _run_args),
    # The legacy run-artifact endpoints: get-artifact at the URI's root, upload-artifact
    # under ajax-api/ only.
    _call("GET", "get-artifact", lambda s: {"run_uuid": s.run.run_uuid, "path": "hello.txt"}),
    # GraphQL (mlflow's UI): reads, whether posted or asked with GET.
    _call("POST", "graphql", lambda s: {"query": _graphql_run(s)}, READS),
    _call("GET", "graphql", lambda s: {"query": _graphql_run(s)}),
    _call(
        "POST",
        f"{A}/upload-artifact",
        lambda s: {"run_uuid": s.run.run_uuid, "path": "ui/uploaded.txt"},
        upload=b"uploaded",
    ),
    *(
        _call("POST", f"{ARTIFACTS}/mpu/{step}/<path:artifact_path>", None, NOT_OFFERED_WRITE)
        for step in ("create", "complete", "abort")
    ),
    _call("GET", f"{ARTIFACTS}/presigned/<path:artifact_path>", None, NOT_OFFERED_READ),
    _call("POST", f"{A}/artifacts/presigned-upload-url", None, NOT_OFFERED_WRITE),
    _call("POST", f"{A}/artifacts/presigned-download-url", None, NOT_OFFERED_READ),
]

MLFLOW: list[Row] = [row for rows in _CALLS for row in rows]
