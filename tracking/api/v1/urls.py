"""Routes below a workspace in /api/v1 (included by portal.api.urls)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
