"""Reads of web services shared by pages and APIs."""

from __future__ import annotations

from django.db.models import QuerySet

from deployments.models import DeploymentJob, WebService
from portal.errors import NotFound
from portal.models import Workspace


def webservice_list(workspace: Workspace) -> QuerySet[WebService]:
    """The workspace's web services by name, with their image, target and creator."""
    return (
        WebService.objects.filter(workspace=workspace)
        .select_related("image", "compute_target", "created_by")
        .order_by("name")
    )


def webservice_get(workspace: Workspace, name: str) -> WebService:
    """The workspace's service of that name (RESOURCE_DOES_NOT_EXIST otherwise)."""
    service = (
        webservice_list(workspace).filter(name=name).first() if isinstance(name, str) else None
    )
    if service is None:
        shown = name[:40] if isinstance(name, str) else name
        raise NotFound(f"No web service named {shown!r} in this workspace.")
    return service


def webservice_latest_jobs(services: list[WebService]) -> dict[int, DeploymentJob]:
    """Each service's newest deployment job (create, update or delete), by service id."""
    latest: dict[int, DeploymentJob] = {}
    jobs = DeploymentJob.objects.filter(service__in=services).select_related("image")
    for job in jobs.order_by("created_at"):
        latest[job.service_id] = job
    return latest
