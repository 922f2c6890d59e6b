"""Deployments pages, mounted under a workspace's URL by portal.urls."""

from deployments.views import compute, environments, jobs

urlpatterns = [
    *jobs.urlpatterns,
    *compute.urlpatterns,
    *environments.urlpatterns,
]
