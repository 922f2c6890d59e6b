"""Deleting a resource group or workspace: the page that confirms it and starts the job."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from portal import forms, selectors, services
from portal.errors import InvalidParameter
from portal.models import ResourceGroup, Role, Workspace
from portal.views.common import crumbs_for, form_error, resource_group_url, scope_for, workspace_url


@login_required
def resource_group_delete(
    request: HttpRequest, subscription_id, resource_group: str
) -> HttpResponse:
    access = scope_for(
        request, Role.CONTRIBUTOR, subscription_id=subscription_id, resource_group=resource_group
    )
    return _delete_confirm(request, access.obj, "resource group", crumbs_for(access.obj))


@login_required
def workspace_delete(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str
) -> HttpResponse:
    access = scope_for(
        request,
        Role.CONTRIBUTOR,
        subscription_id=subscription_id,
        resource_group=resource_group,
        workspace=workspace,
    )
    return _delete_confirm(request, access.obj, "workspace", crumbs_for(access.obj))


def _delete_confirm(
    request: HttpRequest, target: Workspace | ResourceGroup, what: str, crumbs: list
) -> HttpResponse:
    """The page that lists what will go and asks for the name; POST starts the job."""
    # Not `request.POST or None`: an empty POST must show "type the name", not a blank form.
    form = forms.DeleteConfirmForm(request.POST if request.method == "POST" else None, what=what)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.deletion_job_request(
                actor=request.user, target=target, confirm_name=form.cleaned_data["confirm_name"]
            )
        except InvalidParameter as exc:
            form_error(form, exc, "confirm_name")
        else:
            return redirect("deletion-job", job_id=job.id)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "portal/delete_confirm.html",
        {
            "target": target,
            "what": what,
            "form": form,
            "summary": selectors.deletion_summary(target),
            "cancel_url": workspace_url(target)
            if isinstance(target, Workspace)
            else resource_group_url(target),
            "crumbs": crumbs,
        },
        status=status,
    )
