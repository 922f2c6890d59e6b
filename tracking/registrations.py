"""Everything the tracking app registers with portal (called from TrackingConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal import registry
from portal.models import Workspace
from tracking.selectors.tables import experiments_for_list
from tracking.services import experiments, purge_jobs

RECENT_EXPERIMENTS = 5


def recent_experiments_panel(request: HttpRequest, workspace: Workspace) -> dict[str, Any]:
    return {"recent_experiments": experiments_for_list(workspace=workspace)[:RECENT_EXPERIMENTS]}


def register() -> None:
    purge_jobs.register()
    # Every workspace has its Default experiment (MLflow's id 0) from the start.
    registry.register_hook("workspace_created", experiments.on_workspace_created)
    registry.register_workspace_panel(
        registry.Panel(
            name="recent-experiments",
            order=100,
            template="tracking/panels/recent_experiments.html",
            context=recent_experiments_panel,
        )
    )
