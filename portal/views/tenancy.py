"""Pages of the tenancy tree: subscriptions, resource groups and workspaces."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal import forms, registry, selectors, services
from portal.errors import PermissionDenied, StudioError
from portal.models import Role, Workspace
from portal.selectors import Access
from portal.views.common import (
    crumbs_for,
    form_error,
    resource_group_url,
    scope_for,
    subscription_url,
    workspace_url,
)

# --- Subscriptions -----------------------------------------------------------------


@login_required
def subscription_create(request: HttpRequest) -> HttpResponse:
    if not selectors.can_create_subscription(request.user):
        raise PermissionDenied("Only administrators create subscriptions.")
    form = forms.SubscriptionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sub = services.subscription_create(actor=request.user, **form.cleaned_data)
        except StudioError as exc:
            form_error(form, exc, "name")
        else:
            messages.success(request, f"Subscription “{sub.name}” created.")
            return redirect(subscription_url(sub))
    return render(
        request, "portal/form.html", {"form": form, "title": "New subscription", "crumbs": []}
    )


@login_required
def subscription_detail(request: HttpRequest, subscription_id) -> HttpResponse:
    access = scope_for(request, subscription_id=subscription_id)
    sub = access.obj
    tree = selectors.tenancy_tree(request.user, subscription_id=sub.id)
    return render(
        request,
        "portal/subscription.html",
        {
            "sub": sub,
            "access": access,
            "node": tree[0] if tree else None,
            "activity": selectors.audit_entries_for(sub, 20) if access.can_read else [],
            "deletions": selectors.deletion_jobs_for(sub) if access.can_read else [],
        },
    )


@login_required
def subscription_edit(request: HttpRequest, subscription_id) -> HttpResponse:
    access = scope_for(request, Role.CONTRIBUTOR, subscription_id=subscription_id)
    sub = access.obj
    form = forms.SubscriptionForm(
        request.POST or None, initial={"name": sub.name, "description": sub.description}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.subscription_update(actor=request.user, subscription=sub, **form.cleaned_data)
        except StudioError as exc:
            form_error(form, exc, "name")
        else:
            messages.success(request, "Subscription saved.")
            return redirect(subscription_url(sub))
    return render(
        request,
        "portal/form.html",
        {"form": form, "title": f"Edit subscription {sub.name}", "crumbs": crumbs_for(sub)},
    )


# --- Resource groups -----------------------------------------------------------------


@login_required
def resource_group_create(request: HttpRequest, subscription_id) -> HttpResponse:
    access = scope_for(request, Role.CONTRIBUTOR, subscription_id=subscription_id)
    sub = access.obj
    form = forms.ResourceGroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rg = services.resource_group_create(
                actor=request.user, subscription=sub, **form.cleaned_data
            )
        except StudioError as exc:
            form_error(form, exc, "name")
        else:
            messages.success(request, f"Resource group “{rg.name}” created.")
            return redirect(resource_group_url(rg))
    return render(
        request,
        "portal/form.html",
        {"form": form, "title": "New resource group", "crumbs": crumbs_for(sub)},
    )


@login_required
def resource_group_detail(
    request: HttpRequest, subscription_id, resource_group: str
) -> HttpResponse:
    access = scope_for(request, subscription_id=subscription_id, resource_group=resource_group)
    rg = access.obj
    workspaces = [
        node
        for sub in selectors.tenancy_tree(request.user, subscription_id=rg.subscription_id)
        for group in sub.resource_groups
        if group.resource_group.id == rg.id
        for node in group.workspaces
    ]
    return render(
        request,
        "portal/resource_group.html",
        {
            "rg": rg,
            "access": access,
            "workspaces": workspaces,
            "crumbs": crumbs_for(rg.subscription),
            "activity": selectors.audit_entries_for(rg, 20) if access.can_read else [],
            "deletions": selectors.deletion_jobs_for(rg) if access.can_read else [],
        },
    )


@login_required
def resource_group_edit(request: HttpRequest, subscription_id, resource_group: str) -> HttpResponse:
    access = scope_for(
        request, Role.CONTRIBUTOR, subscription_id=subscription_id, resource_group=resource_group
    )
    rg = access.obj
    form = forms.ResourceGroupEditForm(request.POST or None, initial={"tags": rg.tags})
    if request.method == "POST" and form.is_valid():
        services.resource_group_update(actor=request.user, resource_group=rg, **form.cleaned_data)
        messages.success(request, "Resource group saved.")
        return redirect(resource_group_url(rg))
    return render(
        request,
        "portal/form.html",
        {"form": form, "title": f"Edit resource group {rg.name}", "crumbs": crumbs_for(rg)},
    )


# --- Workspaces -------------------------------------------------------------------------


@login_required
def workspace_create(request: HttpRequest, subscription_id, resource_group: str) -> HttpResponse:
    access = scope_for(
        request, Role.CONTRIBUTOR, subscription_id=subscription_id, resource_group=resource_group
    )
    rg = access.obj
    form = forms.WorkspaceForm(request.POST or None, initial={"location": rg.location})
    if request.method == "POST" and form.is_valid():
        try:
            ws = services.workspace_create(
                actor=request.user, resource_group=rg, **form.cleaned_data
            )
        except StudioError as exc:
            form_error(form, exc, "name")
        else:
            messages.success(request, f"Workspace “{ws.name}” created.")
            return redirect(workspace_url(ws))
    return render(
        request,
        "portal/form.html",
        {"form": form, "title": "New workspace", "crumbs": crumbs_for(rg)},
    )


@login_required
def workspace_detail(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str
) -> HttpResponse:
    access = scope_for(
        request, subscription_id=subscription_id, resource_group=resource_group, workspace=workspace
    )
    return _render_workspace(request, access)


def _workspace_panels(request: HttpRequest, ws: Workspace) -> list[dict]:
    """The cards other apps registered for the workspace page, with their context."""
    panels = []
    for panel in registry.workspace_panels():
        context = panel.context(request, ws)
        if context is not None:
            panels.append({"template": panel.template, "context": context})
    return panels


def _render_workspace(
    request: HttpRequest, access: Access, new_token: str | None = None
) -> HttpResponse:
    ws = access.obj
    details = selectors.workspace_details(ws, selectors.base_url(request))
    return render(
        request,
        "portal/workspace.html",
        {
            "ws": ws,
            "access": access,
            "details": details,
            "new_token": new_token,
            "crumbs": crumbs_for(ws.resource_group),
            "nav": "overview",
            "members": selectors.memberships_for_scope(ws),
            "activity": selectors.audit_entries_for(ws, 10),
            "panels": _workspace_panels(request, ws),
        },
    )


@login_required
def workspace_config(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str
) -> HttpResponse:
    """The config.json that the SDK's Workspace.from_config() reads (as the reference
    portal's "Download config.json"): where the workspace is, never a credential."""
    access = scope_for(
        request, subscription_id=subscription_id, resource_group=resource_group, workspace=workspace
    )
    ws = access.obj
    config = {
        "subscription_id": str(ws.resource_group.subscription_id),
        "resource_group": ws.resource_group.name,
        "workspace_name": ws.name,
        "server_url": selectors.base_url(request),
    }
    response = JsonResponse(config, json_dumps_params={"indent": 4})
    response["Content-Disposition"] = 'attachment; filename="config.json"'
    return response


@login_required
@require_POST
def workspace_tracking_token(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str
) -> HttpResponse:
    """Mint a short-lived tracking token and show it once on the workspace page."""
    access = scope_for(
        request, subscription_id=subscription_id, resource_group=resource_group, workspace=workspace
    )
    _, raw = services.tracking_token_mint(user=request.user, workspace=access.obj)
    response = _render_workspace(request, access, new_token=raw)
    response["Cache-Control"] = "no-store"
    return response


@login_required
def workspace_edit(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str
) -> HttpResponse:
    access = scope_for(
        request,
        Role.CONTRIBUTOR,
        subscription_id=subscription_id,
        resource_group=resource_group,
        workspace=workspace,
    )
    ws = access.obj
    form = forms.WorkspaceEditForm(
        request.POST or None,
        initial={"friendly_name": ws.friendly_name, "description": ws.description, "tags": ws.tags},
    )
    if request.method == "POST" and form.is_valid():
        services.workspace_update(actor=request.user, workspace=ws, **form.cleaned_data)
        messages.success(request, "Workspace saved.")
        return redirect(workspace_url(ws))
    return render(
        request,
        "portal/form.html",
        {
            "form": form,
            "title": f"Edit workspace {ws.name}",
            "crumbs": crumbs_for(ws),
            "ws": ws,
            "nav": "overview",
        },
    )


@login_required
def workspace_activity(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str
) -> HttpResponse:
    access = scope_for(
        request, subscription_id=subscription_id, resource_group=resource_group, workspace=workspace
    )
    ws = access.obj
    return render(
        request,
        "portal/activity.html",
        {
            "ws": ws,
            "access": access,
            "entries": selectors.audit_entries_for(ws, 200),
            "crumbs": crumbs_for(ws),
            "nav": "activity",
        },
    )
