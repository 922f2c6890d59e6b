"""/api/v1 experiments: list, create, get, rename, soft delete, restore, purge."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.deletion import job_response
from portal.api.pagination import CURSOR_PARAM, PAGE_SIZE_PARAM, CursorPagination, page_size
from portal.api.serializers import DeletionJobSerializer
from portal.errors import InvalidParameter
from portal.models import Workspace
from tracking.api.common import (
    VIEW_PARAM,
    errors,
    experiment_for,
    mlflow_errors,
    query_text,
    query_view,
    workspace_for,
)
from tracking.api.serializers import (
    ExperimentCreateSerializer,
    ExperimentPageSerializer,
    ExperimentSerializer,
    ExperimentUpdateSerializer,
)
from tracking.models import Experiment
from tracking.selectors.search import view_stages
from tracking.services import experiments as svc
from tracking.services import purge_jobs


def experiments_data(experiments: list[Experiment]) -> list[dict[str, Any]]:
    """Experiments as the API shows them; their tags are expected prefetched."""
    return [
        {
            "experiment_id": str(e.pk),
            "name": e.name,
            "artifact_location": e.artifact_location,
            "lifecycle_stage": e.lifecycle_stage,
            "creation_time": e.creation_time,
            "last_update_time": e.last_update_time,
            "tags": {tag.key: tag.value for tag in e.tags.all()},
        }
        for e in experiments
    ]


def experiment_data(experiment: Experiment) -> dict[str, Any]:
    return experiments_data([experiment])[0]


# ?order_by= → the paginator's ordering; each ends with the primary key, so pages are
# stable however many experiments share a name prefix or a time.
EXPERIMENT_ORDERS = {
    "-created": ("-id",),
    "created": ("id",),
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "-last_update": ("-last_update_time", "-id"),
    "last_update": ("last_update_time", "id"),
}
ORDER_PARAM = OpenApiParameter(
    "order_by",
    str,
    enum=list(EXPERIMENT_ORDERS),
    default="-created",
    description="Sort by creation (`-created`, newest first: the default), `name` or "
    "last update (`last_update`); a leading `-` reverses.",
)


def _ordering(request: Request) -> tuple[str, ...]:
    order = request.query_params.get("order_by", "-created")
    if order not in EXPERIMENT_ORDERS:
        raise InvalidParameter(f"order_by: must be one of {', '.join(EXPERIMENT_ORDERS)}.")
    return EXPERIMENT_ORDERS[order]


def _filtered(request: Request, workspace: Workspace) -> QuerySet[Experiment]:
    experiments = Experiment.objects.filter(
        workspace=workspace, lifecycle_stage__in=view_stages(query_view(request))
    )
    name = query_text(request, "name")
    if name:
        experiments = experiments.filter(name=name)
    search = query_text(request, "search")
    if search:
        experiments = experiments.filter(name__icontains=search)
    return experiments.prefetch_related("tags")


class ExperimentListView(APIView):
    @extend_schema(
        operation_id="experiments_list",
        tags=["experiments"],
        summary="List experiments",
        description="The workspace's experiments, newest first unless `order_by` says "
        "otherwise, paged (follow `next`). Narrow them by exact `name`, by a `search` in "
        "the name, and by lifecycle stage with `view`.",
        parameters=[
            OpenApiParameter(
                "name",
                str,
                description="Only the experiment with exactly this name. Example: "
                "`fraud-detection`.",
            ),
            OpenApiParameter(
                "search",
                str,
                description="Only experiments whose name contains this text, in any case. "
                "Example: `fraud` finds `fraud-detection` and `Fraud v2`.",
            ),
            VIEW_PARAM,
            ORDER_PARAM,
            PAGE_SIZE_PARAM,
            CURSOR_PARAM,
        ],
        responses={200: ExperimentPageSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        page_size(request)  # a bad size is a 400 here, as in every hand-paged list
        experiments = _filtered(request, workspace)
        paginator = CursorPagination()
        paginator.ordering = _ordering(request)
        page = paginator.paginate_queryset(experiments, request, view=self)
        return paginator.get_paginated_response(experiments_data(page))

    @extend_schema(
        operation_id="experiments_create",
        tags=["experiments"],
        summary="Create an experiment",
        description="Needs the contributor role. Names follow MLflow's rules and are "
        "unique in the workspace, deleted experiments included (400 "
        "`RESOURCE_ALREADY_EXISTS`). Its artifacts go under `artifact_location`.",
        request=ExperimentCreateSerializer,
        responses={201: ExperimentSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        body = ExperimentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        tags = body.validated_data.get("tags") or {}
        if any("\x00" in key for key in tags):
            raise InvalidParameter("tags: NUL characters are not allowed in keys.")
        with mlflow_errors():
            experiment = svc.experiment_create(
                workspace=workspace,
                name=body.validated_data["name"],
                tags=list(tags.items()),
                actor=request.user,
            )
        return Response(experiment_data(experiment), status=201)


class ExperimentDetailView(APIView):
    @extend_schema(
        operation_id="experiments_get",
        tags=["experiments"],
        summary="Get an experiment",
        description="Active or soft-deleted (see `lifecycle_stage`).",
        responses={200: ExperimentSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, experiment_id: str, **kwargs: Any) -> Response:
        return Response(experiment_data(experiment_for(request, kwargs, experiment_id)))

    @extend_schema(
        operation_id="experiments_rename",
        tags=["experiments"],
        summary="Rename an experiment",
        description="Needs the contributor role; only an active experiment can be renamed "
        "(400 for a deleted one). A body without `name` changes nothing.",
        request=ExperimentUpdateSerializer,
        responses={200: ExperimentSerializer, **errors(400, 401, 403, 404)},
    )
    def patch(self, request: Request, experiment_id: str, **kwargs: Any) -> Response:
        experiment = experiment_for(request, kwargs, experiment_id, write=True)
        body = ExperimentUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        old, new = experiment.name, body.validated_data.get("name", experiment.name)
        if new != old:
            with mlflow_errors():
                svc.experiment_rename(experiment=experiment, new_name=new, actor=request.user)
        return Response(experiment_data(experiment))

    @extend_schema(
        operation_id="experiments_delete",
        tags=["experiments"],
        summary="Delete an experiment (soft, restorable)",
        description="A soft delete: the experiment and its active runs move to "
        "`lifecycle_stage: deleted`, are hidden from default lists (see `view`) and can "
        "be restored. Nothing is removed; to remove it for good, **purge** it afterwards. "
        "Deleting a deleted experiment changes nothing and answers the same. Answers the "
        "experiment (200), not 204.",
        responses={
            200: OpenApiResponse(ExperimentSerializer, "The experiment, now deleted."),
            **errors(401, 403, 404),
        },
    )
    def delete(self, request: Request, experiment_id: str, **kwargs: Any) -> Response:
        experiment = experiment_for(request, kwargs, experiment_id, write=True)
        svc.experiment_delete(experiment=experiment, actor=request.user)
        return Response(experiment_data(experiment))


class ExperimentRestoreView(APIView):
    @extend_schema(
        operation_id="experiments_restore",
        tags=["experiments"],
        summary="Restore a deleted experiment",
        description="Brings back the experiment and the runs deleted with it (runs deleted "
        "before it stay deleted). Restoring an active experiment changes nothing. Once a "
        "purge has started it can no longer be restored (400).",
        request=None,
        responses={200: ExperimentSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, experiment_id: str, **kwargs: Any) -> Response:
        experiment = experiment_for(request, kwargs, experiment_id, write=True)
        svc.experiment_restore(experiment=experiment, actor=request.user)
        return Response(experiment_data(experiment))


class ExperimentPurgeView(APIView):
    @extend_schema(
        operation_id="experiments_purge",
        tags=["experiments"],
        summary="Purge a deleted experiment (background job)",
        description="Removes a soft-deleted experiment for good, with its runs, metric "
        "history and artifacts. It must be deleted first (400 otherwise). Answers **202** "
        "with a deletion job: poll its `url` (`GET /api/v1/jobs/{job_id}`) until "
        "`is_finished`. Asking again while the purge runs returns the same job.",
        request=None,
        responses={
            202: OpenApiResponse(DeletionJobSerializer, description="The purge job."),
            **errors(400, 401, 403, 404),
        },
    )
    def post(self, request: Request, experiment_id: str, **kwargs: Any) -> Response:
        experiment = experiment_for(request, kwargs, experiment_id, write=True)
        job = purge_jobs.experiment_purge_request(actor=request.user, experiment=experiment)
        return job_response(request, job, status=202)
