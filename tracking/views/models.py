"""Pages: registered models, their versions, aliases and tags."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from tracking.views.common import render_ws, workspace_for


@login_required
def model_list(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    return render_ws(request, "tracking/models.html", access, nav="models")


@login_required
def model_detail(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    access = workspace_for(request, kwargs)
    return render_ws(request, "tracking/models.html", access, nav="models")


urlpatterns = [
    path("models/", model_list, name="models"),
    path("models/<str:name>/", model_detail, name="model"),
]
