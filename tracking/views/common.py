"""What every tracking page shares: the workspace from the URL, URLs, breadcrumbs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from portal import selectors
from portal.models import Role, Workspace
from portal.selectors import Access
from portal.views.common import crumbs_for
from tracking.models import Experiment, Run

WS_KWARGS = ("subscription_id", "resource_group", "workspace")


def workspace_for(request: HttpRequest, kwargs: dict[str, Any], *, write: bool = False) -> Access:
    """The workspace named by the URL, checked: readers read, contributors write.

    Outsiders get 404, readers asking to write 403 (the portal's rules).
    """
    return selectors.workspace_access(
        user=request.user,
        min_role=Role.CONTRIBUTOR if write else Role.READER,
        **{key: kwargs[key] for key in WS_KWARGS},
    )


def ws_kwargs(ws: Workspace) -> dict[str, Any]:
    rg = ws.resource_group
    return {"subscription_id": rg.subscription_id, "resource_group": rg.name, "workspace": ws.name}


def ws_reverse(ws: Workspace, name: str, /, **extra: Any) -> str:
    """reverse() for a page under a workspace: `ws_reverse(ws, "run", run_id=...)`."""
    return reverse(name, kwargs={**ws_kwargs(ws), **extra})


def experiment_url(experiment: Experiment) -> str:
    return ws_reverse(experiment.workspace, "experiment", experiment_id=experiment.pk)


def run_url(run: Run) -> str:
    return ws_reverse(run.workspace, "run", run_id=run.run_uuid)


def tracking_crumbs(
    ws: Workspace, experiment: Experiment | None = None, run: Run | None = None
) -> list[tuple[str, str]]:
    """subscription › resource group › workspace › experiment › run."""
    crumbs = crumbs_for(ws)
    if experiment is not None:
        crumbs.append((experiment.name, experiment_url(experiment)))
    if run is not None:
        crumbs.append((run.name or run.run_uuid[:8], run_url(run)))
    return crumbs


def render_ws(
    request: HttpRequest,
    template: str,
    access: Access,
    *,
    nav: str,
    status: int = 200,
    **context: Any,
) -> HttpResponse:
    """Render a page inside the workspace frame (sidebar, breadcrumbs)."""
    context.setdefault("crumbs", crumbs_for(access.obj))
    return render(
        request,
        template,
        {"ws": access.obj, "access": access, "nav": nav, **context},
        status=status,
    )
