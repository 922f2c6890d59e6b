"""/api/v1 remote runs (jobs): submit, list, get, cancel, read the log.

A job is named by its MLflow run's id: the SDK's `Run` is the same object either way."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import selectors
from deployments.api.common import workspace_for
from deployments.api.environments import environment_register
from deployments.api.serializers import (
    JobLogSerializer,
    JobSubmitSerializer,
    RemoteJobPageSerializer,
    RemoteJobSerializer,
)
from deployments.models import RemoteJob, Stage
from deployments.services import jobs as svc
from portal.api.pagination import CURSOR_PARAM, PAGE_SIZE_PARAM, NewestFirst, page_size
from portal.errors import InvalidParameter
from portal.models import Workspace
from portal.selectors import base_url
from tracking.api.common import errors, mlflow_errors, query_int, query_text

TAGS = ["remote runs"]


def jobs_data(request: Request, workspace: Workspace, jobs: Iterable[RemoteJob]) -> list[dict]:
    """Jobs as the API shows them, each with its run page's absolute URL."""
    base = base_url(request)
    rg = workspace.resource_group
    scope = {
        "subscription_id": rg.subscription_id,
        "resource_group": rg.name,
        "workspace": workspace.name,
    }
    out = []
    for job in jobs:
        data = selectors.remote_job_data(job)
        data["url"] = base + reverse("run", kwargs={**scope, "run_id": data["run_id"]})
        out.append(RemoteJobSerializer(data).data)
    return out


def _job(request: Request, workspace: Workspace, run_id: str, status: int = 200) -> Response:
    job = selectors.remote_job_get(workspace=workspace, run_id=run_id)
    return Response(jobs_data(request, workspace, [job])[0], status=status)


def _stage(request: Request) -> str:
    stage = query_text(request, "stage")
    if stage and stage not in Stage.values:
        raise InvalidParameter(f"stage: must be one of {', '.join(Stage.values)}.")
    return stage


class JobListView(APIView):
    @extend_schema(
        operation_id="remote_runs_list",
        tags=TAGS,
        summary="List remote runs",
        description="The workspace's remote runs, newest first, paged (follow `next`).",
        parameters=[
            OpenApiParameter(
                "compute",
                str,
                description="Only the runs of this compute target (by name, in any case; "
                "ended runs of a deleted target too).",
            ),
            OpenApiParameter(
                "stage",
                str,
                enum=list(Stage.values),
                description="Only the runs at this stage.",
            ),
            PAGE_SIZE_PARAM,
            CURSOR_PARAM,
        ],
        responses={200: RemoteJobPageSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        page_size(request)  # a bad size is a 400 here, as in every list
        jobs = selectors.remote_job_list(
            workspace=workspace, compute=query_text(request, "compute"), stage=_stage(request)
        )
        paginator = NewestFirst()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response(jobs_data(request, workspace, page))

    @extend_schema(
        operation_id="remote_runs_submit",
        tags=TAGS,
        summary="Submit a remote run",
        description="Runs `script` of an uploaded snapshot with `arguments` on a compute "
        "target, in an environment, as a new MLflow run of `experiment_name` (made if "
        "new). Needs the contributor role; a tracking token cannot submit (403). The run "
        "starts SCHEDULED and the job `queued`; follow it with `GET jobs/{run_id}` and "
        "its `logs`. An inline environment spec is registered first, as `POST "
        "environments` would (a new version only when the spec changed).",
        request=JobSubmitSerializer,
        responses={201: RemoteJobSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        body = JobSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with transaction.atomic(), mlflow_errors():
            environment = data["environment"]
            if isinstance(environment, dict):
                environment, _ = environment_register(request, workspace, environment)
            job = svc.remote_job_submit(
                actor=request.user,
                workspace=workspace,
                experiment_name=data["experiment_name"],
                script=data["script"],
                arguments=data["arguments"],
                compute_name=data["compute"],
                environment=environment,
                snapshot_hash=data["snapshot_hash"],
                max_run_duration_seconds=data["max_run_duration_seconds"],
                run_name=data.get("run_name") or None,
                tags=data.get("tags"),
            )
        return _job(request, workspace, job.run.run_uuid, status=201)


class JobDetailView(APIView):
    @extend_schema(
        operation_id="remote_runs_get",
        tags=TAGS,
        summary="Get a remote run",
        description="By its MLflow run's id.",
        responses={200: RemoteJobSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        return _job(request, workspace_for(request, kwargs), run_id)


class JobCancelView(APIView):
    @extend_schema(
        operation_id="remote_runs_cancel",
        tags=TAGS,
        summary="Cancel a remote run",
        description="Needs the contributor role. A queued run ends `canceled` at once; a "
        "started one gets `cancel_requested`, and its worker stops the script within a "
        "few seconds. The MLflow run becomes KILLED. Cancelling a canceled run answers it "
        "unchanged; one that completed or failed is a 400.",
        request=None,
        responses={200: RemoteJobSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        job = selectors.remote_job_get(workspace=workspace, run_id=run_id)
        svc.remote_job_cancel(actor=request.user, job=job)
        return _job(request, workspace, run_id)


class JobLogView(APIView):
    @extend_schema(
        operation_id="remote_runs_logs",
        tags=TAGS,
        summary="Read a remote run's log",
        description="Up to `limit` bytes of the script's output from byte `offset` (never "
        "splitting a character). To follow it, pass `next_offset` back as `offset` until "
        "`ended` is true and `next_offset` equals `log_bytes`.",
        parameters=[
            OpenApiParameter("offset", int, description="Bytes to skip; default 0."),
            OpenApiParameter(
                "limit",
                int,
                description=f"Bytes at most, 1–{svc.LOG_READ_MAX}; default 65536.",
            ),
        ],
        responses={200: JobLogSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, run_id: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        job = selectors.remote_job_get(workspace=workspace, run_id=run_id)
        offset = query_int(request, "offset", default=0, minimum=0)
        limit = query_int(request, "limit", default=65536, minimum=1, maximum=svc.LOG_READ_MAX)
        page = svc.remote_job_log_read(job_id=job.pk, offset=offset, limit=limit)
        return Response(
            JobLogSerializer(
                {
                    "text": page["text"],
                    "offset": page["offset"],
                    "next_offset": page["next_offset"],
                    "log_bytes": page["size"],
                    "ended": page["ended"],
                }
            ).data
        )
