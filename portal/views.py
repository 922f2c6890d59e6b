"""Pages of the tenancy app: dashboard, the workspace tree, members, tokens."""

from __future__ import annotations

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal import forms, registry, selectors, services
from portal.errors import InvalidParameter, NotFound, PermissionDenied, StudioError
from portal.models import Membership, ResourceGroup, Role, Subscription, Workspace
from portal.selectors import Access


def _fail(form: django_forms.Form, exc: StudioError, field: str | None = None) -> None:
    form.add_error(field, exc.message)


# --- URL helpers -----------------------------------------------------------------


def subscription_url(sub: Subscription, view: str = "subscription") -> str:
    return reverse(view, kwargs={"subscription_id": sub.id})


def resource_group_url(rg: ResourceGroup, view: str = "resource-group") -> str:
    return reverse(view, kwargs={"subscription_id": rg.subscription_id, "resource_group": rg.name})


def workspace_url(ws: Workspace, view: str = "workspace") -> str:
    rg = ws.resource_group
    return reverse(
        view,
        kwargs={
            "subscription_id": rg.subscription_id,
            "resource_group": rg.name,
            "workspace": ws.name,
        },
    )


def _resolve(request: HttpRequest, min_role: str | None = None, **kwargs) -> Access:
    """The subscription, resource group or workspace that the URL names, checked."""
    if "workspace" in kwargs:
        return selectors.workspace_access(user=request.user, min_role=min_role, **kwargs)
    if "resource_group" in kwargs:
        return selectors.resource_group_access(user=request.user, min_role=min_role, **kwargs)
    return selectors.subscription_access(user=request.user, min_role=min_role, **kwargs)


# --- Dashboard ---------------------------------------------------------------------


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    tree = selectors.tenancy_tree(request.user)
    return render(
        request,
        "portal/dashboard.html",
        {
            "tree": tree,
            "workspace_count": sum(sub.workspace_count for sub in tree),
            "resource_group_count": sum(len(sub.resource_groups) for sub in tree),
            "can_create_subscription": selectors.can_create_subscription(request.user),
        },
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
            _fail(form, exc, "name")
        else:
            messages.success(request, f"Subscription “{sub.name}” created.")
            return redirect(subscription_url(sub))
    return render(
        request, "portal/form.html", {"form": form, "title": "New subscription", "crumbs": []}
    )


@login_required
def subscription_detail(request: HttpRequest, subscription_id) -> HttpResponse:
    access = _resolve(request, subscription_id=subscription_id)
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
    access = _resolve(request, Role.CONTRIBUTOR, subscription_id=subscription_id)
    sub = access.obj
    form = forms.SubscriptionForm(
        request.POST or None, initial={"name": sub.name, "description": sub.description}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.subscription_update(actor=request.user, subscription=sub, **form.cleaned_data)
        except StudioError as exc:
            _fail(form, exc, "name")
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
    access = _resolve(request, Role.CONTRIBUTOR, subscription_id=subscription_id)
    sub = access.obj
    form = forms.ResourceGroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rg = services.resource_group_create(
                actor=request.user, subscription=sub, **form.cleaned_data
            )
        except StudioError as exc:
            _fail(form, exc, "name")
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
    access = _resolve(request, subscription_id=subscription_id, resource_group=resource_group)
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
    access = _resolve(
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
    access = _resolve(
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
            _fail(form, exc, "name")
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
    access = _resolve(
        request, subscription_id=subscription_id, resource_group=resource_group, workspace=workspace
    )
    return _render_workspace(request, access)


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
            "panels": workspace_panels(request, ws),
        },
    )


@login_required
def workspace_config(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str
) -> HttpResponse:
    """The config.json that the SDK's Workspace.from_config() reads (as the reference
    portal's "Download config.json"): where the workspace is, never a credential."""
    access = _resolve(
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
    access = _resolve(
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
    access = _resolve(
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
    access = _resolve(
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


# --- Deletion ------------------------------------------------------------------------------


@login_required
def resource_group_delete(
    request: HttpRequest, subscription_id, resource_group: str
) -> HttpResponse:
    access = _resolve(
        request, Role.CONTRIBUTOR, subscription_id=subscription_id, resource_group=resource_group
    )
    return _delete_confirm(request, access.obj, "resource group", crumbs_for(access.obj))


@login_required
def workspace_delete(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str
) -> HttpResponse:
    access = _resolve(
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
            _fail(form, exc, "confirm_name")
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


def workspace_panels(request: HttpRequest, ws: Workspace) -> list[dict]:
    """The cards other apps registered for the workspace page, with their context."""
    panels = []
    for panel in registry.workspace_panels():
        context = panel.context(request, ws)
        if context is not None:
            panels.append({"template": panel.template, "context": context})
    return panels


def _job_context(request: HttpRequest, job_id) -> dict:
    access = selectors.deletion_job_access(user=request.user, job_id=job_id)
    parent = access.parent if access.role is not None else None
    back = None
    kind = registry.job_kind(access.job.kind)
    if parent is not None and kind.back_link is not None:
        back = kind.back_link(access.job, parent)
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


# --- Members (one view for the three scopes) ----------------------------------------------


@login_required
def members(request: HttpRequest, **kwargs) -> HttpResponse:
    access = _resolve(request, **kwargs)
    scope = access.obj
    if not access.can_read:
        raise PermissionDenied("Members are listed to those with a role here.")
    form = forms.MemberForm(request.POST or None)
    if request.method == "POST":
        if not access.can_manage:
            raise PermissionDenied("Only owners manage access.")
        if form.is_valid():
            try:
                services.membership_grant(
                    actor=request.user,
                    scope=scope,
                    user=form.cleaned_data["username"],
                    role=form.cleaned_data["role"],
                )
            except StudioError as exc:
                _fail(form, exc)
            else:
                messages.success(
                    request, f"{form.cleaned_data['username']} is now {form.cleaned_data['role']}."
                )
                return redirect(request.path)
    context = {
        "scope": scope,
        "access": access,
        "form": form,
        "memberships": selectors.memberships_for_scope(scope),
        "roles": Role.choices,
        "crumbs": crumbs_for(scope),
        "nav": "members",
    }
    if isinstance(scope, Workspace):
        context["ws"] = scope
    return render(request, "portal/members.html", context)


@login_required
@require_POST
def membership_change(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related(
            "user",
            "subscription",
            "resource_group__subscription",
            "workspace__resource_group__subscription",
        ),
        pk=membership_id,
    )
    scope = membership.scope
    access = selectors.Access(scope, selectors.role_for(request.user, scope))
    if access.role is None:
        raise NotFound("Membership not found")
    if not access.can_manage:
        raise PermissionDenied("Only owners manage access.")
    back = _members_url(scope)
    try:
        if request.POST.get("action") == "remove":
            services.membership_revoke(actor=request.user, membership=membership)
            messages.success(request, f"Removed {membership.user}.")
        else:
            form = forms.RoleChangeForm(request.POST)
            if not form.is_valid():
                raise InvalidParameter("Choose a role.")
            services.membership_grant(
                actor=request.user,
                scope=scope,
                user=membership.user,
                role=form.cleaned_data["role"],
            )
            messages.success(request, f"{membership.user} is now {form.cleaned_data['role']}.")
    except InvalidParameter as exc:
        messages.error(request, exc.message)
    return redirect(back)


def _members_url(scope: Subscription | ResourceGroup | Workspace) -> str:
    if isinstance(scope, Workspace):
        return workspace_url(scope, "workspace-members")
    if isinstance(scope, ResourceGroup):
        return resource_group_url(scope, "resource-group-members")
    return subscription_url(scope, "subscription-members")


def crumbs_for(obj: Subscription | ResourceGroup | Workspace) -> list[tuple[str, str]]:
    """Breadcrumbs from the subscription down to obj (inclusive)."""
    if isinstance(obj, Workspace):
        return [*crumbs_for(obj.resource_group), (obj.name, workspace_url(obj))]
    if isinstance(obj, ResourceGroup):
        return [*crumbs_for(obj.subscription), (obj.name, resource_group_url(obj))]
    return [(obj.name, subscription_url(obj))]


# --- Tokens -------------------------------------------------------------------------------


@login_required
@never_cache
def tokens(request: HttpRequest) -> HttpResponse:
    workspaces = list(selectors.visible_workspaces(request.user))
    form = forms.TokenForm(request.POST or None, workspaces=workspaces)
    new_token = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_token = services.token_create(user=request.user, **form.cleaned_data)
        except StudioError as exc:
            _fail(form, exc)
        else:
            form = forms.TokenForm(workspaces=workspaces)
    return render(
        request,
        "portal/tokens.html",
        {"form": form, "tokens": selectors.tokens_for_user(request.user), "new_token": new_token},
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id) -> HttpResponse:
    token = get_object_or_404(selectors.tokens_for_user(request.user), pk=token_id)
    services.token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("tokens")


# --- Health ---------------------------------------------------------------------------------


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and compose."""
    try:
        connection.ensure_connection()
    except Exception:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


# The API prefixes: scripts and the mlflow client there read error bodies as JSON.
_API_PREFIXES = ("/api/", "/mlflow/")


def server_error(request: HttpRequest) -> HttpResponse:
    """A crash nobody handled (logged with its traceback by Django): JSON in MLflow's error
    shape on the APIs, the studio's page elsewhere; never the trace itself."""
    if request.path.startswith(_API_PREFIXES):
        return JsonResponse(
            {"error_code": "INTERNAL_ERROR", "message": "Internal server error."}, status=500
        )
    # Django's own view renders 500.html without the request's context, which may be what
    # failed (the database, the session).
    return defaults.server_error(request)
