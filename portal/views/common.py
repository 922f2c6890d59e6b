"""What every tenancy page shares: the scope from the URL, its URLs and breadcrumbs, form errors."""

from __future__ import annotations

from django import forms as django_forms
from django.http import HttpRequest
from django.urls import reverse

from portal import selectors
from portal.errors import StudioError
from portal.models import ResourceGroup, Subscription, Workspace
from portal.selectors import Access


def form_error(form: django_forms.Form, exc: StudioError, field: str | None = None) -> None:
    form.add_error(field, exc.message)


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


def crumbs_for(obj: Subscription | ResourceGroup | Workspace) -> list[tuple[str, str]]:
    """Breadcrumbs from the subscription down to obj (inclusive)."""
    if isinstance(obj, Workspace):
        return [*crumbs_for(obj.resource_group), (obj.name, workspace_url(obj))]
    if isinstance(obj, ResourceGroup):
        return [*crumbs_for(obj.subscription), (obj.name, resource_group_url(obj))]
    return [(obj.name, subscription_url(obj))]


def scope_for(request: HttpRequest, min_role: str | None = None, **kwargs) -> Access:
    """The subscription, resource group or workspace that the URL names, checked."""
    if "workspace" in kwargs:
        return selectors.workspace_access(user=request.user, min_role=min_role, **kwargs)
    if "resource_group" in kwargs:
        return selectors.resource_group_access(user=request.user, min_role=min_role, **kwargs)
    return selectors.subscription_access(user=request.user, min_role=min_role, **kwargs)
