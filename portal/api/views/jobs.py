"""/api/v1 deletion jobs, and the JSON 404 for paths the API does not have."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import services
from portal.api.common import job_access, job_response
from portal.api.schema import error_responses
from portal.api.serializers import DeletionJobSerializer
from portal.errors import NotFound, PermissionDenied
from portal.models import DeletionJob


class JobView(APIView):
    @extend_schema(operation_id="jobs_get", responses=DeletionJobSerializer, tags=["jobs"])
    def get(self, request: Request, job_id: UUID) -> Response:
        access = job_access(request, job_id)
        return job_response(request, access.job)


class JobRetryView(APIView):
    @extend_schema(
        operation_id="jobs_retry",
        request=None,
        responses={202: DeletionJobSerializer, **error_responses(400, 403)},
        tags=["jobs"],
    )
    def post(self, request: Request, job_id: UUID) -> Response:
        access = job_access(request, job_id)
        if access.job.status == DeletionJob.Status.FAILED and not access.can_retry:
            raise PermissionDenied(
                "Only who asked for this deletion, or a contributor, can retry a failed job."
            )
        # A job that has not failed is refused by the service (400).
        job = services.deletion_job_retry(actor=request.user, job=access.job)
        return job_response(request, job, status=202)


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """Every /api/v1 path no view matches (a name with characters names cannot have, an id
    that is not a UUID): the JSON 404 of the API rather than Django's HTML page."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def http_method_not_allowed(self, request: Request, *args, **kwargs) -> Response:
        raise NotFound("No such API endpoint.")

    def options(self, request: Request, *args, **kwargs) -> Response:
        raise NotFound("No such API endpoint.")
