"""What the deployments app's pages register with portal (called from DeploymentsConfig.ready):
the run page's Job tab and the workspace page's recent remote runs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from deployments.models import RemoteJob
from deployments.views import jobs
from portal import registry
from portal.models import Workspace
from tracking.views.common import ws_reverse

RECENT_REMOTE_RUNS = 5


def recent_remote_runs_panel(request: HttpRequest, workspace: Workspace) -> dict[str, Any] | None:
    """The newest remote runs; no card for a workspace that never submitted one."""
    recent = list(
        RemoteJob.objects.filter(workspace=workspace)
        .select_related("run")
        .order_by("-created_at")[:RECENT_REMOTE_RUNS]
    )
    if not recent:
        return None
    rows = [
        {"job": job, "url": ws_reverse(workspace, "run", run_id=job.run.run_uuid) + "?tab=job"}
        for job in recent
    ]
    return {"recent_remote_runs": rows, "compute_url": ws_reverse(workspace, "compute")}


def register() -> None:
    registry.register_run_tab(
        registry.RunTab(
            slug=jobs.TAB,
            label="Job",
            order=100,
            template="deployments/job/tab.html",
            context=jobs.job_tab_context,
            shown=jobs.job_tab_shown,
        )
    )
    registry.register_workspace_panel(
        registry.Panel(
            name="recent-remote-runs",
            order=110,
            template="deployments/panels/recent_remote_runs.html",
            context=recent_remote_runs_panel,
        )
    )
