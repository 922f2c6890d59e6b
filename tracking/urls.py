"""Tracking pages, mounted under a workspace's URL by portal.urls."""

from tracking.views import charts, compare, experiments, models, runs

urlpatterns = [
    *experiments.urlpatterns,
    *runs.urlpatterns,
    *compare.urlpatterns,
    *charts.urlpatterns,
    *models.urlpatterns,
]
