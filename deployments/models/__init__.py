"""Deployment models: compute targets and their workers, environments, remote runs,
images, web services and their monitoring."""

from deployments.models.compute import ComputeTarget, ComputeWorker, WorkerToken
from deployments.models.environments import Environment
from deployments.models.images import Image, ImageBuildJob
from deployments.models.jobs import RemoteJob, Stage
from deployments.models.monitoring import (
    DriftBackfillJob,
    DriftMonitor,
    DriftResult,
    RequestMinute,
    RequestSample,
)
from deployments.models.webservices import DeploymentJob, WebService

__all__ = [
    "ComputeTarget",
    "ComputeWorker",
    "DeploymentJob",
    "DriftBackfillJob",
    "DriftMonitor",
    "DriftResult",
    "Environment",
    "Image",
    "ImageBuildJob",
    "RemoteJob",
    "RequestMinute",
    "RequestSample",
    "Stage",
    "WebService",
    "WorkerToken",
]
