"""/api/v1 deletion jobs, and the JSON 404 for paths the API does not have."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import services
from portal.api.access import job_access
from portal.api.deletion import job_response
from portal.api.schema import error_responses
from portal.api.serializers import DeletionJobSerializer
from portal.errors import NotFound, PermissionDenied
from portal.models import DeletionJob


class JobView(APIView):
    @extend_schema(
        operation_id="jobs_get",
        summary="Get a deletion job (poll it)",
        description="A job starts `queued`, turns `running` (with `phase` and "
        "`progress_done` of `progress_total` telling how far it is), and ends `succeeded` "
        "or `failed` (`error` says why; a failed job can be retried). Poll every few "
        "seconds until `is_finished` is true. `page_url` is the same job for a browser.\n\n"
        "Visible to whoever asked for the deletion and to readers of the scope above what "
        "was deleted.",
        responses=DeletionJobSerializer,
        tags=["jobs"],
    )
    def get(self, request: Request, job_id: UUID) -> Response:
        access = job_access(request, job_id)
        return job_response(request, access.job)


class JobRetryView(APIView):
    @extend_schema(
        operation_id="jobs_retry",
        summary="Retry a failed deletion job",
        description="Queues a `failed` job again; it carries on where it stopped. Any "
        "other status is a 400. Allowed to whoever asked for the deletion and to "
        "contributors of the scope above.",
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
