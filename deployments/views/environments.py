"""Pages: the workspace's environments (each name's latest version, curated ones
included) and one version's spec."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from deployments.models import Environment, RemoteJob
from deployments.selectors import environment_list as environment_versions
from deployments.services.environments import curated_environments, environment_get
from portal.models import Workspace
from portal.views.common import crumbs_for
from tracking.views.common import render_ws, workspace_for, ws_reverse

RECENT_RUNS = 10


def environment_url(ws: Workspace, environment: Environment) -> str:
    return ws_reverse(ws, "environment-version", name=environment.name, version=environment.version)


def _crumbs(ws: Workspace, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [*crumbs_for(ws), ("Environments", ws_reverse(ws, "environments")), *more]


def _curated_rows(ws: Workspace) -> set[str]:
    """The curated names, their rows made (or moved to the server's mlflow) on first use."""
    names = set(curated_environments())
    for name in names:
        environment_get(workspace=ws, name=name)
    return names


@login_required
@require_GET
def environment_list(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    ws = access.obj
    curated = _curated_rows(ws)
    rows: dict[str, dict[str, Any]] = {}
    # Newest first within a name: a name's first row is its latest version.
    for environment in environment_versions(workspace=ws).defer("env_vars", "spec_hash"):
        row = rows.get(environment.name)
        if row is None:
            rows[environment.name] = {
                "latest": environment,
                "versions": 1,
                "curated": environment.name in curated,
                "url": environment_url(ws, environment),
            }
        else:
            row["versions"] += 1
    ordered = sorted(rows.values(), key=lambda r: (not r["curated"], r["latest"].name.lower()))
    return render_ws(
        request,
        "deployments/environments.html",
        access,
        nav="environments",
        crumbs=_crumbs(ws),
        rows=ordered,
    )


@login_required
@require_GET
def environment_detail(
    request: HttpRequest, name: str, version: int | None = None, **kwargs: Any
) -> HttpResponse:
    """A version's spec (the latest without one in the URL), its versions, its runs."""
    access = workspace_for(request, kwargs)
    ws = access.obj
    environment = environment_get(workspace=ws, name=name, version=version)
    versions = (
        Environment.objects.filter(workspace=ws, name=environment.name)
        .select_related("created_by")
        .order_by("-version")
    )
    jobs = list(
        RemoteJob.objects.filter(environment=environment)
        .select_related("run__experiment")
        .order_by("-created_at")[:RECENT_RUNS]
    )
    runs = []
    for job in jobs:
        job.run.workspace = ws
        runs.append({"job": job, "url": ws_reverse(ws, "run", run_id=job.run.run_uuid)})
    url = environment_url(ws, environment)
    return render_ws(
        request,
        "deployments/environment.html",
        access,
        nav="environments",
        crumbs=_crumbs(ws, (f"{environment.name}:{environment.version}", url)),
        environment=environment,
        curated=environment.name in curated_environments(),
        env_var_names=sorted(environment.env_vars),
        versions=[{"env": v, "url": environment_url(ws, v)} for v in versions],
        runs=runs,
    )


urlpatterns = [
    path("environments/", environment_list, name="environments"),
    path("environments/<str:name>/", environment_detail, name="environment"),
    path(
        "environments/<str:name>/<int:version>/",
        environment_detail,
        name="environment-version",
    ),
]
