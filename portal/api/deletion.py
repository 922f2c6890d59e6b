"""A deletion as /api/v1 answers it: 202 with the deletion job to poll, and the job."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from portal import services
from portal.api.serializers import DeletionJobSerializer
from portal.models import DeletionJob


def job_response(request: Request, job: DeletionJob, *, status: int = 200) -> Response:
    """A deletion job as the API shows it (its `url` absolute, for polling)."""
    return Response(DeletionJobSerializer(job, context={"request": request}).data, status=status)


def deletion_requested(
    request: Request, target: Any, *, confirm_name: str | None = None
) -> Response:
    """Ask for `target` (a workspace or a resource group) to be deleted for good in the
    background: 202 with the job to poll."""
    job = services.deletion_job_request(
        actor=request.user, target=target, confirm_name=confirm_name
    )
    return job_response(request, job, status=202)
