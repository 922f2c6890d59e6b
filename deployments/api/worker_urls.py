"""Routes of /api/v1/compute/: the compute workers' side (deployments.api.workers)."""

from django.urls import path

from deployments.api import workers

JOB = "jobs/<uuid:remote_job_id>"

urlpatterns = [
    path("worker", workers.WorkerInfoView.as_view(), name="api-compute-worker"),
    path(
        "worker/heartbeat",
        workers.WorkerHeartbeatView.as_view(),
        name="api-compute-worker-heartbeat",
    ),
    path(f"{JOB}/claim", workers.JobClaimView.as_view(), name="api-compute-job-claim"),
    path(f"{JOB}/snapshot", workers.JobSnapshotView.as_view(), name="api-compute-job-snapshot"),
    path(f"{JOB}/heartbeat", workers.JobHeartbeatView.as_view(), name="api-compute-job-heartbeat"),
    path(f"{JOB}/report", workers.JobReportView.as_view(), name="api-compute-job-report"),
    path(f"{JOB}/logs", workers.JobLogView.as_view(), name="api-compute-job-logs"),
    path(
        f"{JOB}/artifacts/<path:path>",
        workers.JobArtifactView.as_view(),
        name="api-compute-job-artifact",
    ),
]
