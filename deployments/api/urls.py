"""Routes of remote runs below a workspace in /api/v1 (included by portal.api.urls):
compute targets, environments, snapshots, jobs. docs/remote-runs.md has the contract.

Names are taken as text: one that names nothing here is a 404 in the API's error shape
rather than Django's page."""

from django.urls import path

from deployments.api import computes, environments, jobs, snapshots

COMPUTE = "computes/<str:compute>"
ENVIRONMENT = "environments/<str:environment>"
JOB = "jobs/<str:run_id>"

urlpatterns = [
    path("computes", computes.ComputeListView.as_view(), name="api-computes"),
    path(COMPUTE, computes.ComputeDetailView.as_view(), name="api-compute"),
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
