"""Routes of remote runs below a workspace in /api/v1 (included by portal.api.urls):
compute targets, environments, snapshots, jobs. docs/remote-runs.md has the contract.

Names are taken as text: one that names nothing here is a 404 in the API's error shape
rather than Django's page."""

from django.urls import path

from deployments.api import computes, environments, jobs, snapshots, worker_tokens

COMPUTE = "computes/<str:compute>"
ENVIRONMENT = "environments/<str:environment>"
JOB = "jobs/<str:run_id>"

urlpatterns = [
    path("computes", computes.ComputeListView.as_view(), name="api-computes"),
    path(COMPUTE, computes.ComputeDetailView.as_view(), name="api-compute"),
    path(
        f"{COMPUTE}/worker-tokens",
        worker_tokens.WorkerTokenListView.as_view(),
        name="api-worker-tokens",
    ),
    path(
        f"{COMPUTE}/worker-tokens/<uuid:worker_token_id>",
        worker_tokens.WorkerTokenDetailView.as_view(),
        name="api-worker-token",
    ),
    path("environments", environments.EnvironmentListView.as_view(), name="api-environments"),
    path(ENVIRONMENT, environments.EnvironmentDetailView.as_view(), name="api-environment"),
    path(
        f"{ENVIRONMENT}/versions",
        environments.EnvironmentVersionListView.as_view(),
        name="api-environment-versions",
    ),
    path(
        f"{ENVIRONMENT}/versions/<str:version>",
        environments.EnvironmentVersionView.as_view(),
        name="api-environment-version",
    ),
    path("snapshots/<str:sha256>", snapshots.SnapshotView.as_view(), name="api-snapshot"),
    path("jobs", jobs.JobListView.as_view(), name="api-remote-jobs"),
    path(JOB, jobs.JobDetailView.as_view(), name="api-remote-job"),
    path(f"{JOB}/cancel", jobs.JobCancelView.as_view(), name="api-remote-job-cancel"),
    path(f"{JOB}/logs", jobs.JobLogView.as_view(), name="api-remote-job-logs"),
]

# Images (build_image): the newest of each name and build; a name's versions; one version.
from deployments.api import images  # noqa: E402  (kept with its routes)

urlpatterns += [
    path("images", images.ImageListView.as_view(), name="api-images"),
    path("images/<str:image>", images.ImageVersionListView.as_view(), name="api-image-versions"),
    path(
        "images/<str:image>/<str:version>",
        images.ImageVersionView.as_view(),
        name="api-image-version",
    ),
]

# A web service's telemetry rollups (the service page's charts).
from deployments.api import service_metrics  # noqa: E402  (kept with its routes)

urlpatterns += [
    path(
        "services/<str:service>/metrics",
        service_metrics.ServiceMetricsView.as_view(),
        name="api-service-metrics",
    ),
]

# A web service's drift monitors (deployments.api.drift).
from deployments.api import drift  # noqa: E402  (kept with its routes)

DRIFT_MONITOR = "services/<str:service>/drift-monitors/<str:monitor>"
urlpatterns += [
    path(
        "services/<str:service>/drift-monitors",
        drift.DriftMonitorListView.as_view(),
        name="api-drift-monitors",
    ),
    path(DRIFT_MONITOR, drift.DriftMonitorDetailView.as_view(), name="api-drift-monitor"),
    path(
        f"{DRIFT_MONITOR}/results",
        drift.DriftResultsView.as_view(),
        name="api-drift-monitor-results",
    ),
    path(
        f"{DRIFT_MONITOR}/backfill",
        drift.DriftBackfillView.as_view(),
        name="api-drift-monitor-backfill",
    ),
    path(
        f"{DRIFT_MONITOR}/jobs/<uuid:drift_job_id>",
        drift.DriftJobView.as_view(),
        name="api-drift-monitor-job",
    ),
]

# Web services: deploy, list, get, update, delete; keys, tokens, logs (deployments.api.services).
from deployments.api import services as web_services  # noqa: E402  (kept with its routes)

SERVICE = "services/<str:service>"
urlpatterns += [
    path("services", web_services.ServiceListView.as_view(), name="api-services"),
    path(SERVICE, web_services.ServiceDetailView.as_view(), name="api-service"),
    path(f"{SERVICE}/keys", web_services.ServiceKeysView.as_view(), name="api-service-keys"),
    path(
        f"{SERVICE}/regen-key",
        web_services.ServiceRegenKeyView.as_view(),
        name="api-service-regen-key",
    ),
    path(f"{SERVICE}/token", web_services.ServiceTokenView.as_view(), name="api-service-token"),
    path(f"{SERVICE}/logs", web_services.ServiceLogsView.as_view(), name="api-service-logs"),
]
