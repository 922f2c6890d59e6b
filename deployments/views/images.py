"""Pages: the workspace's images (every version, newest first per name) and an image
version (state, build progress polled with htmx while it builds, build log, the build
context for download, the services that run it)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET

from deployments.models import Image, ImageBuildJob, WebService
from deployments.services import images as svc
from portal.models import Job, Workspace
from portal.views.common import crumbs_for
from tracking.artifacts import store_for
from tracking.artifacts.responses import file_response
from tracking.views.common import render_ws, workspace_for, ws_reverse

# The badge class of each state (studio.css's job colours).
STATE_BADGES = {
    Image.State.NOT_STARTED: "queued",
    Image.State.RUNNING: "running",
    Image.State.SUCCEEDED: "succeeded",
    Image.State.FAILED: "failed",
}
BUILDING = (Image.State.NOT_STARTED, Image.State.RUNNING)
LIST_LIMIT = 500


def image_url(ws: Workspace, image: Image) -> str:
    return ws_reverse(ws, "image", name=image.name, version=image.version)


def _crumbs(ws: Workspace, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [*crumbs_for(ws), ("Images", ws_reverse(ws, "images")), *more]


def _latest_jobs(images: list[Image]) -> dict[int, ImageBuildJob]:
    """Each image's newest build job, in one query."""
    latest: dict[int, ImageBuildJob] = {}
    building = [i.pk for i in images if i.state in BUILDING]
    for job in ImageBuildJob.objects.filter(image_id__in=building).order_by("created_at"):
        latest[job.image_id] = job
    return latest


def _build(image: Image, job: Job | None) -> dict[str, Any]:
    """State, badge and progress of an image's build, for the list and the status card."""
    building = image.state in BUILDING
    return {
        "badge": STATE_BADGES.get(image.state, "queued"),
        "building": building,
        "percent": job.percent if job is not None else 0,
        "phase": job.phase if job is not None and building else "",
        "job_status": job.status if job is not None else "",
    }


@login_required
@require_GET
def image_list(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    images = list(
        Image.objects.filter(workspace=ws)
        .select_related("created_by")
        .order_by("name", "-version")[:LIST_LIMIT]
    )
    jobs = _latest_jobs(images)
    rows = [{"image": i, "url": image_url(ws, i), **_build(i, jobs.get(i.pk))} for i in images]
    return render_ws(
        request,
        "deployments/images/list.html",
        access,
        nav="images",
        crumbs=_crumbs(ws),
        rows=rows,
        limit=LIST_LIMIT,
        models_url=ws_reverse(ws, "models"),
    )


def _image(access: Any, name: str, version: int) -> Image:
    return svc.image_get(workspace=access.obj, name=name, version=version)


def _status_context(ws: Workspace, image: Image) -> dict[str, Any]:
    return {
        "image": image,
        "build": _build(image, svc.image_build_job(image)),
        "status_url": ws_reverse(ws, "image-status", name=image.name, version=image.version),
        "context_url": ws_reverse(ws, "image-context", name=image.name, version=image.version)
        if image.context_uri
        else "",
    }


@login_required
@require_GET
def image_latest(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    image = svc.image_get(workspace=access.obj, name=name)
    return redirect(image_url(access.obj, image))


@login_required
@require_GET
def image_detail(request: HttpRequest, name: str, version: int, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    image = _image(access, name, version)
    url = image_url(ws, image)
    services = [
        {"service": s, "url": ws_reverse(ws, "service", name=s.name)}
        for s in WebService.objects.filter(image=image).order_by("name")
    ]
    versions = [
        {"version": v, "url": ws_reverse(ws, "image", name=image.name, version=v)}
        for v in Image.objects.filter(workspace=ws, name=image.name)
        .order_by("-version")
        .values_list("version", flat=True)[:50]
    ]
    return render_ws(
        request,
        "deployments/images/detail.html",
        access,
        nav="images",
        crumbs=_crumbs(ws, (image.id_label, url)),
        services=services,
        versions=versions,
        tag_rows=sorted(image.tags.items()),
        **_status_context(ws, image),
    )


@login_required
@require_GET
def image_status(request: HttpRequest, name: str, version: int, **kwargs: Any) -> HttpResponse:
    """The state card, which polls itself while the image builds (htmx)."""
    access = workspace_for(request, kwargs)
    image = _image(access, name, version)
    return render(request, "deployments/images/_status.html", _status_context(access.obj, image))


@login_required
@require_GET
def image_context(request: HttpRequest, name: str, version: int, **kwargs: Any) -> HttpResponse:
    """The build context zip (Dockerfile, model, requirements, scoring server)."""
    access = workspace_for(request, kwargs)
    image = _image(access, name, version)
    reader = store_for(access.obj).open(svc.context_path(image))
    response = file_response(
        reader, f"{image.name}-{image.version}-context.zip", content_type="application/zip"
    )
    return response


urlpatterns = [
    path("images/", image_list, name="images"),
    path("images/<str:name>/", image_latest, name="image-latest"),
    path("images/<str:name>/<int:version>/", image_detail, name="image"),
    path("images/<str:name>/<int:version>/status/", image_status, name="image-status"),
    path("images/<str:name>/<int:version>/context.zip", image_context, name="image-context"),
]
