"""Members: one page for the three scopes, and changing or removing a role assignment."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal import forms, selectors, services
from portal.errors import InvalidParameter, NotFound, PermissionDenied, StudioError
from portal.models import Membership, ResourceGroup, Role, Subscription, Workspace
from portal.views.common import (
    crumbs_for,
    form_error,
    resource_group_url,
    scope_for,
    subscription_url,
    workspace_url,
)


@login_required
def members(request: HttpRequest, **kwargs) -> HttpResponse:
    access = scope_for(request, **kwargs)
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
                form_error(form, exc)
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
