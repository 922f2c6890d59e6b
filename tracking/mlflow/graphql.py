"""MLflow protocol: the GraphQL endpoint mlflow's web UI queries (`<tracking URI>/graphql`).

mlflow's own schema answers, with its own query-safety checks (depth, batching), so
the fields, their names and their types are exactly `mlflow server`'s. Only where its
resolvers would read mlflow's tracking store do we step in: a graphene middleware
answers each of those fields by calling this workspace's protocol handler for the same
request (`experiments/get`, `runs/search`, ...) as the caller, and hands the schema the
protobuf message that handler's JSON describes. So access, workspace scoping, errors
and Default-experiment ids are those of the REST routes, with nothing written twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from django.http import HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from mlflow.exceptions import MlflowException
from mlflow.protos import model_registry_pb2, service_pb2
from mlflow.utils.proto_json_utils import parse_dict

from portal.errors import InvalidParameter, StudioError
from tracking.mlflow.protocol import ROOT, Call, _resolve, route

log = logging.getLogger(__name__)

# The schema's fields that read the tracking store: (parent type, field) ->
# (request message, the protocol route answering it: method and path below the URI).
_FIELDS: dict[tuple[str, str], tuple[type[Message], str, str]] = {
    ("Query", "mlflowGetExperiment"): (
        service_pb2.GetExperiment,
        "GET",
        "api/2.0/mlflow/experiments/get",
    ),
    ("Query", "mlflowGetRun"): (service_pb2.GetRun, "GET", "api/2.0/mlflow/runs/get"),
    ("Query", "mlflowSearchRuns"): (service_pb2.SearchRuns, "POST", "api/2.0/mlflow/runs/search"),
    ("Query", "mlflowListArtifacts"): (
        service_pb2.ListArtifacts,
        "GET",
        "api/2.0/mlflow/artifacts/list",
    ),
    ("Query", "mlflowGetMetricHistoryBulkInterval"): (
        service_pb2.GetMetricHistoryBulkInterval,
        "GET",
        "api/2.0/mlflow/metrics/get-history-bulk-interval",
    ),
    ("Query", "mlflowSearchModelVersions"): (
        model_registry_pb2.SearchModelVersions,
        "GET",
        "api/2.0/mlflow/model-versions/search",
    ),
    # mlflow's schema offers these reads as mutations too (its UI posts them so).
    ("Mutation", "mlflowSearchDatasets"): (
        service_pb2.SearchDatasets,
        "POST",
        "ajax-api/2.0/mlflow/experiments/search-datasets",
    ),
}
_FIELDS[("Mutation", "mlflowSearchRuns")] = _FIELDS[("Query", "mlflowSearchRuns")]


def _answer(call: Call, message: Message, method: str, path: str) -> Message:
    """The protocol route's answer to `message`, asked as the caller, as the route's
    response message."""
    entry, args, _ = _resolve(method, path)
    if entry is None:  # every path above is registered
        raise InvalidParameter(f"No MLflow endpoint {method} /{path} on this server.")
    data = MessageToDict(message, preserving_proto_field_name=True)
    query = entry.raw or method == "GET"
    if query:  # query-string arguments are strings, as a GET sends them
        data = {k: [str(x) for x in v] if isinstance(v, list) else str(v) for k, v in data.items()}
    result = entry.handler(replace(call, data=data, args=args, query=query))
    if isinstance(result, HttpResponseBase):
        body = result.content if isinstance(result, HttpResponse) else b"{}"
        payload = orjson.loads(body or b"{}")
    else:
        payload = orjson.loads(orjson.dumps(result))
    response = message.Response()
    parse_dict(payload, response)
    return response


def _run_extension(call: Call, field_name: str, run: Any) -> Any:
    """A run's `experiment` and `modelVersions`, which mlflow's schema adds to a run."""
    if field_name == "experiment":
        request = service_pb2.GetExperiment(experiment_id=run.info.experiment_id)
        return _answer(call, request, "GET", "api/2.0/mlflow/experiments/get").experiment
    request = model_registry_pb2.SearchModelVersions(filter=f"run_id='{run.info.run_id}'")
    found = _answer(call, request, "GET", "api/2.0/mlflow/model-versions/search")
    return found.model_versions


class _WorkspaceResolver:
    """Graphene middleware: the store-reading fields, answered by this workspace."""

    def __init__(self, call: Call) -> None:
        self.call = call

    def resolve(self, next_: Callable, root: Any, info: Any, **kwargs: Any) -> Any:
        parent = info.parent_type.name
        if parent == "MlflowRunExtension" and info.field_name in ("experiment", "modelVersions"):
            return _run_extension(self.call, info.field_name, root)
        found = _FIELDS.get((parent, info.field_name))
        if found is None:
            return next_(root, info, **kwargs)
        message_type, method, path = found
        message = message_type()
        given = kwargs.get("input")
        parse_dict(vars(given) if given is not None else {}, message)
        return _answer(self.call, message, method, path)


def _graphql(call: Call) -> JsonResponse:
    from graphql import GraphQLError, parse
    from mlflow.server.graphql.graphql_no_batching import check_query_safety
    from mlflow.server.graphql.graphql_schema_extensions import schema

    query = call.data.get("query")
    if isinstance(query, list):
        query = query[0] if query else None
    if not isinstance(query, str) or not query:
        raise InvalidParameter("Missing value for required parameter 'query'.")
    variables = call.data.get("variables")
    if isinstance(variables, str):  # a GET sends them as JSON text
        try:
            variables = orjson.loads(variables)
        except orjson.JSONDecodeError:
            raise InvalidParameter("Invalid value for parameter 'variables'.") from None
    if variables is not None and not isinstance(variables, dict):
        raise InvalidParameter("Invalid value for parameter 'variables'.")
    operation = call.data.get("operationName")
    try:
        node = parse(query)
    except GraphQLError as exc:
        return JsonResponse({"data": None, "errors": [exc.message]})
    if unsafe := check_query_safety(node):
        result = unsafe
    else:
        result = schema.execute(
            query,
            variables=variables,
            operation_name=operation if isinstance(operation, str) else None,
            middleware=[_WorkspaceResolver(call)],
        )
    errors = [_error_message(error) for error in result.errors] if result.errors else None
    return JsonResponse({"data": result.data, "errors": errors})


def _error_message(error: Any) -> str:
    """A field's error as mlflow's endpoint words it: the exception's message alone."""
    original = getattr(error, "original_error", None)
    if isinstance(original, StudioError | MlflowException):
        return original.message
    if original is not None:  # a fault of ours: logged, and not described to the caller
        log.error("GraphQL field failed", exc_info=original)
        return "The server failed to resolve this field."
    return error.message


@route("POST", "graphql", prefixes=ROOT)
def graphql_post(call: Call) -> JsonResponse:
    return _graphql(call)


@route("GET", "graphql", prefixes=ROOT)
def graphql_get(call: Call) -> JsonResponse:
    return _graphql(call)
