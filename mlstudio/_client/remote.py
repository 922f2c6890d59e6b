"""Following a remote run: its job's stage, and its output as it comes.

A remote run is named by its MLflow run id below the workspace: ``jobs/{run_id}`` is its
job (stage, exit code, error), ``jobs/{run_id}/logs?offset=`` pages of its output. The
output is tailed by passing ``next_offset`` back until the job has ``ended`` and
``next_offset`` reached ``log_bytes``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlstudio._client.http import HttpClient, segment
from mlstudio.exceptions import RunNotFound

# The reference service's run statuses, in the order a run goes through them.
RUN_STATUSES = (
    "NotStarted",
    "Queued",
    "Preparing",
    "Running",
    "Finalizing",
    "Completed",
    "Failed",
    "Canceled",
)
STAGE_STATUS = {
    "queued": "Queued",
    "preparing": "Preparing",
    "running": "Running",
    "finalizing": "Finalizing",
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
}
TERMINAL_STAGES = frozenset({"completed", "failed", "canceled"})
# Seconds between polls: short while output flows, longer while the run is quiet.
BUSY_POLL = 0.5
IDLE_POLL = 1.0
LOG_PAGE = 65536


def stage_status(stage: str | None) -> str:
    """A job's stage (``running``) as the reference service names the run's status
    (``Running``); NotStarted when there is none."""
    if not stage:
        return "NotStarted"
    return STAGE_STATUS.get(stage, stage.title())


def pause(seconds: float) -> None:
    """Wait between two polls (tests replace it to drive the run between them)."""
    time.sleep(seconds)


def job_path(workspace_path: str, run_id: str, *parts: str) -> str:
    """The API path of a remote run's job (or of what is below it)."""
    return "/".join([f"{workspace_path}/jobs/{segment(run_id)}", *parts])


def get_job(client: HttpClient, workspace_path: str, run_id: str) -> dict[str, Any]:
    """The job of a remote run.

    Raises:
        RunNotFound: the run has no job (it is not a remote run) or does not exist.
    """
    return client.get(job_path(workspace_path, run_id), not_found=RunNotFound)


def tail_log(
    client: HttpClient,
    workspace_path: str,
    run_id: str,
    write: Callable[[str], Any],
    *,
    follow: bool,
    offset: int = 0,
) -> int:
    """Write a remote run's output from `offset`: what there is, or, following, what comes
    until the run has ended and all of it was written.

    Returns:
        The offset after the last text written.
    """
    path = job_path(workspace_path, run_id, "logs")
    while True:
        page = client.get(path, params={"offset": offset, "limit": LOG_PAGE}, not_found=RunNotFound)
        if page["text"]:
            write(page["text"])
        offset = int(page["next_offset"])
        if offset < int(page["log_bytes"]):
            continue  # more is there already
        if page["ended"] or not follow:
            return offset
        pause(BUSY_POLL if page["text"] else IDLE_POLL)


def wait_for_end(client: HttpClient, workspace_path: str, job: dict[str, Any]) -> dict[str, Any]:
    """Poll a job until its stage is final; answer its final record."""
    while job.get("stage") not in TERMINAL_STAGES:
        pause(IDLE_POLL)
        job = get_job(client, workspace_path, job["run_id"])
    return job
