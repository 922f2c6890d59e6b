"""Follow a server job (a cascade deletion) until it ends, with a progress bar."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

from mlstudio._client.http import HttpClient
from mlstudio.exceptions import JobFailedError, MLStudioError

FINAL = {"succeeded", "failed"}


def follow_job(
    client: HttpClient,
    job: dict[str, Any],
    *,
    show_progress: bool = True,
    poll_interval: float = 0.5,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Poll a job's ``url`` until it succeeds or fails, drawing its percent and phase.

    Args:
        client: The client to poll with.
        job: The job as the server answered it (needs ``url``, ``status``, ``percent``).
        show_progress: Draw a progress bar on stderr.
        poll_interval: Seconds between polls.
        timeout: Give up after this many seconds (None waits as long as it takes).

    Returns:
        The job's final state.

    Raises:
        JobFailedError: the job failed; its error message and state are attached.
        MLStudioError: the timeout passed first.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    bar = tqdm(
        total=100,
        desc=job.get("label") or "job",
        unit="%",
        file=sys.stderr,
        disable=not show_progress,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}{postfix}]",
    )
    try:
        while True:
            _draw(bar, job)
            if job.get("status") in FINAL:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise MLStudioError(
                    f"The job {job.get('id')} is still {job.get('status')} after {timeout}s; "
                    f"follow it at {job.get('page_url') or job.get('url')}."
                )
            time.sleep(poll_interval)
            job = client.get(job["url"])
    finally:
        bar.close()
    if job["status"] == "failed":
        raise JobFailedError(
            f"The job '{job.get('label')}' failed: {job.get('error') or 'no reason given'}",
            job=job,
        )
    return job


def finish_job(
    client: HttpClient,
    job: dict[str, Any],
    *,
    wait: bool,
    show_progress: bool = True,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The job as the server started it, or with `wait` its final state (see follow_job).

    Raises:
        JobFailedError: waiting, the job failed.
        MLStudioError: waiting, the timeout passed first.
    """
    if not wait:
        return job
    return follow_job(client, job, show_progress=show_progress, timeout=timeout)


def _draw(bar: tqdm, job: dict[str, Any]) -> None:
    percent = 100 if job.get("status") == "succeeded" else int(job.get("percent") or 0)
    bar.set_postfix_str(f"{job.get('status')}: {job.get('phase') or ''}".rstrip(": "), False)
    bar.update(max(percent - bar.n, 0))
    bar.refresh()
