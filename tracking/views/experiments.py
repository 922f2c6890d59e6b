"""Pages: the workspace's experiments and an experiment's runs table."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from tracking.views.common import render_ws, workspace_for


@login_required
def experiment_list(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    return render_ws(request, "tracking/experiments.html", access, nav="experiments")


@login_required
def experiment_detail(request: HttpRequest, experiment_id: int, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    return render_ws(request, "tracking/experiments.html", access, nav="experiments")


urlpatterns = [
    path("experiments/", experiment_list, name="experiments"),
    path("experiments/<int:experiment_id>/", experiment_detail, name="experiment"),
]
