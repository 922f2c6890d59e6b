"""/api/v1 runs: search across experiments, get, update, soft delete, restore, purge, cancel.

A page of runs costs two queries whatever its size: the search (one SQL with MLflow's
filter and order), and the runs' rows with their metrics, params and tags (run_rows,
shared with the MLflow protocol's JSON)."""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.pagination import (
    CURSOR_PARAM,
    PAGE_SIZE_PARAM,
    decode_cursor,
    page_size,
    paged_response,
)
from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from tracking.api.common import (
    VIEW_PARAM,
    errors,
    query_list,
    query_text,
    query_view,
    run_for,
    workspace_for,
)
from tracking.api.serializers import RunPageSerializer, RunSerializer, RunUpdateSerializer
from tracking.models import Experiment, Run, RunStatus
from tracking.selectors.core import int_id
from tracking.selectors.runs import run_rows
from tracking.selectors.search import search_runs
from tracking.services import purge
from tracking.services import runs as svc
from tracking.services.experiments import now_ms

ENDED = (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)
MAX_EXPERIMENT_IDS = 100


def runs_data(runs: list[Run]) -> list[dict[str, Any]]:
    """Runs as the API shows them, in the given order."""
    return runs_data_by_pks([run.pk for run in runs])


def runs_data_by_pks(pks: list[int]) -> list[dict[str, Any]]:
    """The runs of these primary keys as the API shows them, in this order: one SQL
    statement (run_rows, shared with the MLflow protocol's JSON) for the runs with their
    metrics, params and tags, each keyed by name in name order."""
    return [
        {
            "run_id": row.run_uuid,
            "run_name": row.name,
            "experiment_id": str(row.experiment_id),
            "status": row.status,
            "start_time": row.start_time,
            "end_time": row.end_time,
            "lifecycle_stage": row.lifecycle_stage,
            "user_id": row.user_id,
            "artifact_uri": row.artifact_uri,
            "params": _by_key(row.params, itemgetter("value")),
            "tags": _by_key(row.tags, itemgetter("value")),
            "metrics": _by_key(row.metrics, _latest),
        }
        for row in run_rows(pks)
    ]


def _by_key(items: list[dict[str, Any]], value: Callable[[dict[str, Any]], Any]) -> dict:
    return {item["key"]: value(item) for item in sorted(items, key=itemgetter("key"))}


def _latest(metric: dict[str, Any]) -> dict[str, Any]:
    return {"value": metric["value"], "step": metric["step"], "timestamp": metric["timestamp"]}


def run_data(run: Run) -> dict[str, Any]:
    return runs_data([run])[0]


def _experiment_ids(request: Request, workspace: Workspace) -> list[str]:
    """The asked experiments, each of which must be this workspace's (404 otherwise);
    without any, every experiment of the workspace."""
    experiments = Experiment.objects.filter(workspace=workspace)
    asked = query_list(request, "experiment_id", limit=MAX_EXPERIMENT_IDS)
    if not asked:
        return [str(pk) for pk in experiments.values_list("pk", flat=True)]
    wanted = {raw: int_id(raw) for raw in asked}
    found = set(
        experiments.filter(pk__in=[pk for pk in wanted.values() if pk]).values_list("pk", flat=True)
    )
    for raw, pk in wanted.items():
        if pk not in found:
            raise NotFound(f"No Experiment with id={raw} exists")
    return [str(pk) for pk in dict.fromkeys(wanted.values())]


class RunListView(APIView):
    @extend_schema(
        operation_id="runs_list",
        tags=["runs"],
        summary="Search runs",
        description="MLflow's run search over some or all experiments of the workspace, "
        "paged (follow `next`). `filter` and `order_by` take the syntax of "
        "`mlflow.search_runs()`, for example\n\n"
        "`?filter=metrics.rmse < 0.5 and params.model = 'rf'&order_by=metrics.rmse ASC`"
        "\n\n(URL-encoded when sent). A bad expression is a 400 with MLflow's message. "
        "Without `order_by`, newest first.",
        parameters=[
            OpenApiParameter(
                "experiment_id",
                str,
                many=True,
                explode=True,
                description="Search only these experiments (repeat the parameter, at most "
                "100). Left out: every experiment of the workspace. An id that is not the "
                "workspace's is a 404. Example: `experiment_id=1&experiment_id=4`.",
            ),
            OpenApiParameter(
                "filter",
                str,
                description="An MLflow filter: conditions on `metrics.<key>`, `params.<key>`, "
                "`tags.<key>` and `attributes.<name>` (`status`, `run_name`, `start_time`, …), "
                "joined with `and`; text values in single quotes. Examples:\n\n"
                "- `metrics.rmse < 0.5 and params.model = 'rf'`\n"
                "- `attributes.status = 'FINISHED'`\n"
                "- `tags.team LIKE 'vision%'`",
            ),
            OpenApiParameter(
                "order_by",
                str,
                many=True,
                explode=True,
                description="An MLflow order-by clause: `metrics.<key>`, `params.<key>`, "
                "`tags.<key>` or `attributes.<name>`, then `ASC` or `DESC`. Repeat it for "
                "ties. Examples: `metrics.rmse ASC` (best first), `attributes.start_time "
                "DESC`.",
            ),
            VIEW_PARAM,
            PAGE_SIZE_PARAM,
            CURSOR_PARAM,
        ],
        responses={200: RunPageSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        experiment_ids = _experiment_ids(request, workspace)
        size = page_size(request)
        token = decode_cursor(request.query_params.get("cursor")).get("token")
        if token is not None and not isinstance(token, str):
            raise InvalidParameter("cursor: not a cursor this API returned.")
        pks, next_token = search_runs(
            workspace=workspace,
            experiment_ids=experiment_ids,
            filter_string=query_text(request, "filter"),
            run_view_type=query_view(request),
            max_results=size,
            order_by=query_list(request, "order_by") or None,
            page_token=token,
        )
        return paged_response(
            runs_data_by_pks(list(pks)),
            request,
            {"token": next_token} if next_token else None,
        )


class RunDetailView(APIView):
    @extend_schema(
        operation_id="runs_get",
        tags=["runs"],
        summary="Get a run",
        description="Active or soft-deleted (see `lifecycle_stage`), with its params, tags "
        "and the latest value of each metric.",
        responses={200: RunSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        return Response(run_data(run_for(request, kwargs, run_id)))

    @extend_schema(
        operation_id="runs_update",
        tags=["runs"],
        summary="Rename a run or set its status",
        description="Needs the contributor role; only an active run. Fields left out keep "
        "their value. Setting an ended status (FINISHED, FAILED, KILLED) also sets "
        "`end_time` to now when the run has none.",
        request=RunUpdateSerializer,
        responses={200: RunSerializer, **errors(400, 401, 403, 404)},
    )
    def patch(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        with transaction.atomic():
            run = run_for(request, kwargs, run_id, write=True, for_update=True)
            body = RunUpdateSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            status = body.validated_data.get("status")
            ends = status in ENDED and run.end_time is None
            svc.run_update(
                run=run,
                status=status,
                end_time=now_ms() if ends else None,
                run_name=body.validated_data.get("run_name", ""),
            )
        return Response(run_data(run))

    @extend_schema(
        operation_id="runs_delete",
        tags=["runs"],
        summary="Delete a run (soft, restorable)",
        description="A soft delete: the run moves to `lifecycle_stage: deleted`, is hidden "
        "from default searches (see `view`) and can be restored. Nothing is removed; "
        "**purge** it afterwards to remove it for good. Deleting a deleted run changes "
        "nothing and answers the same. Answers the run (200), not 204.",
        responses={
            200: OpenApiResponse(RunSerializer, "The run, now deleted."),
            **errors(401, 403, 404),
        },
    )
    def delete(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        run = run_for(request, kwargs, run_id, write=True)
        svc.run_delete(run=run, actor=request.user)
        return Response(run_data(run))


class RunRestoreView(APIView):
    @extend_schema(
        operation_id="runs_restore",
        tags=["runs"],
        summary="Restore a deleted run",
        description="Restoring an active run changes nothing. A run of a deleted experiment "
        "cannot be restored on its own (400): restore the experiment, which brings back "
        "the runs deleted with it.",
        request=None,
        responses={200: RunSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        run = run_for(request, kwargs, run_id, write=True)
        svc.run_restore(run=run, actor=request.user)
        return Response(run_data(run))


class RunPurgeView(APIView):
    @extend_schema(
        operation_id="runs_purge",
        tags=["runs"],
        summary="Purge a deleted run",
        description="Removes a soft-deleted run for good, with its artifacts and metric "
        "history, before answering (204; no job). An active run is a 400: delete it "
        "first. Purging cannot be undone.",
        request=None,
        responses={
            204: OpenApiResponse(description="Purged."),
            **errors(400, 401, 403, 404),
        },
    )
    def post(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        run = run_for(request, kwargs, run_id, write=True)
        purge.run_purge(actor=request.user, workspace=run.workspace, runs=[run])
        return Response(status=204)


class RunCancelView(APIView):
    @extend_schema(
        operation_id="runs_cancel",
        tags=["runs"],
        summary="Cancel a run",
        description="RUNNING or SCHEDULED become KILLED with `end_time` now; a KILLED run "
        "is returned unchanged; a FINISHED or FAILED run is a 400.",
        request=None,
        responses={200: RunSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        with transaction.atomic():
            run = run_for(request, kwargs, run_id, write=True, for_update=True)
            svc.run_cancel(run=run, actor=request.user)
        return Response(run_data(run))
