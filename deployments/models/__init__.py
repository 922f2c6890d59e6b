"""Deployment models: compute targets and their workers, environments, remote runs."""

from deployments.models.compute import ComputeTarget, ComputeWorker, WorkerToken
from deployments.models.environments import Environment
from deployments.models.jobs import RemoteJob, Stage

__all__ = ["ComputeTarget", "ComputeWorker", "Environment", "RemoteJob", "Stage", "WorkerToken"]
