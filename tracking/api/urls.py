"""Routes below a workspace in /api/v1 (included by portal.api.urls).

Ids are taken as text: an id that is not one of this workspace's (or not an id at all)
is a 404 in the API's error shape rather than Django's page."""

from django.urls import path

from tracking.api import artifacts, experiments, metrics, runs

RUN = "runs/<str:run_id>"
EXPERIMENT = "experiments/<str:experiment_id>"

urlpatterns = [
    path("experiments", experiments.ExperimentListView.as_view(), name="api-experiments"),
    path(EXPERIMENT, experiments.ExperimentDetailView.as_view(), name="api-experiment"),
    path(
        f"{EXPERIMENT}/restore",
        experiments.ExperimentRestoreView.as_view(),
        name="api-experiment-restore",
    ),
    path(
        f"{EXPERIMENT}/purge",
        experiments.ExperimentPurgeView.as_view(),
        name="api-experiment-purge",
    ),
    path("runs", runs.RunListView.as_view(), name="api-runs"),
    path(RUN, runs.RunDetailView.as_view(), name="api-run"),
    path(f"{RUN}/restore", runs.RunRestoreView.as_view(), name="api-run-restore"),
    path(f"{RUN}/purge", runs.RunPurgeView.as_view(), name="api-run-purge"),
    path(f"{RUN}/cancel", runs.RunCancelView.as_view(), name="api-run-cancel"),
    path(f"{RUN}/metrics", metrics.LatestMetricsView.as_view(), name="api-run-metrics"),
    path(
        f"{RUN}/metrics/history",
        metrics.MetricHistoryView.as_view(),
        name="api-run-metric-history",
    ),
    path(
        f"{RUN}/metrics/sampled",
        metrics.SampledHistoryView.as_view(),
        name="api-run-metric-sampled",
    ),
    path(f"{RUN}/artifacts", artifacts.ArtifactListView.as_view(), name="api-run-artifacts"),
    path(
        f"{RUN}/artifacts/download",
        artifacts.ArtifactDownloadView.as_view(),
        name="api-run-artifact-download",
    ),
]
