"""The home dashboard: every subscription, resource group and workspace the user sees."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal import selectors


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
