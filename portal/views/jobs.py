"""Deletion job pages: progress (polled by htmx), and retry of a failed job."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal import registry, selectors, services
from portal.errors import InvalidParameter, PermissionDenied
from portal.models import ResourceGroup
from portal.views.common import crumbs_for, resource_group_url, subscription_url


def _job_context(request: HttpRequest, job_id) -> dict:
    access = selectors.deletion_job_access(user=request.user, job_id=job_id)
    parent = access.parent if access.role is not None else None
    back = None
    kind = registry.job_kind(access.job.kind)
    if parent is not None and kind.back_link is not None:
        back = kind.back_link(access.job, parent)  # another app's kind says where
    elif parent is not None:
        if isinstance(parent, ResourceGroup):
            back = (resource_group_url(parent), f"Back to resource group {parent.name}")
        else:
            back = (subscription_url(parent), f"Back to subscription {parent.name}")
    return {"job": access.job, "access": access, "back": back, "parent": parent}


@login_required
@require_GET
def deletion_job(request: HttpRequest, job_id) -> HttpResponse:
    context = _job_context(request, job_id)
    parent = context["parent"]
    context["crumbs"] = crumbs_for(parent) if parent is not None else []
    return render(request, "portal/deletion_job.html", context)


@login_required
@require_GET
@never_cache
def deletion_job_status(request: HttpRequest, job_id) -> HttpResponse:
    """The live part of the job page, polled by htmx every second until the job ends."""
    return render(request, "portal/_deletion_job_status.html", _job_context(request, job_id))


@login_required
@require_POST
def deletion_job_retry(request: HttpRequest, job_id) -> HttpResponse:
    access = selectors.deletion_job_access(user=request.user, job_id=job_id)
    if not access.can_retry:
        raise PermissionDenied(
            "Only who asked for this deletion, or a contributor, can retry a failed job."
        )
    try:
        services.deletion_job_retry(actor=request.user, job=access.job)
    except InvalidParameter as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The deletion job was queued again.")
    return redirect("deletion-job", job_id=access.job.id)
