"""Deployments pages, mounted under a workspace's URL by portal.urls."""

from deployments.views import compute, drift, environments, images, jobs, services

urlpatterns = [
    *jobs.urlpatterns,
    *compute.urlpatterns,
    *environments.urlpatterns,
    *images.urlpatterns,
    *services.urlpatterns,
    *drift.urlpatterns,
]
