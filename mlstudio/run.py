"""Runs: their status, details, metrics, files, and cancel/delete/restore; a remote run's
output and end (wait_for_completion).

The lowest object: a run keeps the experiment it was built with and reaches its workspace
through it (see mlstudio._client.parents).

A remote run (``Experiment.submit``) is an MLflow run with a job: while it has one, its
status is the job's stage (Queued, Preparing, Running, Finalizing, Completed, Failed,
Canceled), since the MLflow run's own status cannot tell Preparing or Finalizing apart.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlstudio._client import remote
from mlstudio._client.http import HttpClient, segment
from mlstudio._client.parents import ExperimentParent, WorkspaceParent, experiment_by_id
from mlstudio.exceptions import RunFailedError, RunNotFound

# MLflow's run statuses as the reference service names them.
STATUS_NAMES = {
    "RUNNING": "Running",
    "FINISHED": "Completed",
    "FAILED": "Failed",
    "KILLED": "Canceled",
    "SCHEDULED": "Queued",
}


def status_name(status: str) -> str:
    """An MLflow run status (FINISHED, ...) as the reference service names it (Completed)."""
    return STATUS_NAMES.get(status, status.title())


PARENT_TAG = "mlflow.parentRunId"
RUN_TYPE_TAG = "mlstudio.runType"
TARGET_TAG = "mlstudio.target"
COMPUTE_TAG = "mlstudio.compute"  # a remote run's target: the studio tags its runs with it
SOURCE_TYPE_TAG = "mlflow.source.type"
LOG_FILE = "logs/std_log.txt"
HISTORY_PAGE = 25_000  # the largest history page the API serves: most histories come whole


def _utc(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _number(value: Any) -> float:
    # The API writes NaN and the infinities as the strings "NaN", "Infinity", "-Infinity".
    return float(value) if isinstance(value, str) else value


class Run:
    """One run of an experiment.

    Args:
        experiment: The experiment it belongs to.
        run_id: The run's id.
    """

    def __init__(
        self,
        experiment: ExperimentParent,
        run_id: str,
        _dto: dict[str, Any] | None = None,
        _job: dict[str, Any] | None = None,
    ) -> None:
        self.experiment = experiment
        self._run_id = run_id
        self._dto = _dto if _dto is not None else self._fetch()
        self._job = _job

    @staticmethod
    def get(workspace: WorkspaceParent, run_id: str) -> Run:
        """A run of the workspace by id.

        Raises:
            RunNotFound: no such run.
        """
        dto = workspace._client.get(
            f"{workspace._path}/runs/{segment(run_id)}", not_found=RunNotFound
        )
        return Run(experiment_by_id(workspace, dto["experiment_id"]), run_id, _dto=dto)

    @property
    def _client(self) -> HttpClient:
        return self.experiment.workspace._client

    def _path(self, *parts: str) -> str:
        return "/".join([f"{self.experiment.workspace._path}/runs/{segment(self._run_id)}", *parts])

    def _fetch(self) -> dict[str, Any]:
        return self._client.get(self._path(), not_found=RunNotFound)

    def _refresh(self) -> dict[str, Any]:
        self._dto = self._fetch()
        return self._dto

    @property
    def _workspace_path(self) -> str:
        return self.experiment.workspace._path

    @property
    def is_remote(self) -> bool:
        """Whether the run was submitted to a compute target (Experiment.submit)."""
        tags = self._dto.get("tags") or {}
        return self._job is not None or (tags.get(SOURCE_TYPE_TAG) == "JOB" and COMPUTE_TAG in tags)

    def get_job(self) -> dict[str, Any]:
        """A remote run's job, fresh: stage, status, compute, environment, script,
        arguments, exit_code, error, log_bytes, url (the run's page), ...

        Raises:
            RunNotFound: the run is not a remote run.
        """
        self._job = remote.get_job(self._client, self._workspace_path, self._run_id)
        return dict(self._job)

    # --- What it is -------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._run_id

    @property
    def name(self) -> str:
        return self._dto.get("run_name") or self._run_id

    display_name = name

    @property
    def status(self) -> str:
        """The status when last read (see :meth:`get_status` for a fresh one)."""
        if self._job is not None:
            return remote.stage_status(self._job.get("stage"))
        return status_name(self._dto["status"])

    @property
    def type(self) -> str:
        return (self._dto.get("tags") or {}).get(RUN_TYPE_TAG, "mlflow")

    @property
    def parent(self) -> Run | None:
        parent_id = (self._dto.get("tags") or {}).get(PARENT_TAG)
        return Run(self.experiment, parent_id) if parent_id else None

    def get_status(self) -> str:
        """The run's current status.

        Returns:
            For a remote run one of Queued, Preparing, Running, Finalizing, Completed,
            Failed, Canceled; for a run logged with mlflow one of Queued, Running,
            Completed, Failed, Canceled.
        """
        if self.is_remote:
            self.get_job()
        else:
            self._refresh()
        return self.status

    def get_tags(self) -> dict[str, str]:
        """The run's tags {key: value}."""
        return dict(self._refresh().get("tags") or {})

    def get_params(self) -> dict[str, str]:
        """The run's MLflow params {key: value}."""
        return dict(self._refresh().get("params") or {})

    get_properties = get_params

    def get_details(self) -> dict[str, Any]:
        """The run's details in the reference service's shape.

        Returns:
            A dict: runId, displayName, experimentId, status, startTimeUtc, endTimeUtc
            (ISO-8601, UTC), properties (params), tags, target, inputDatasets,
            outputDatasets, logFiles, submittedBy, artifactUri.
        """
        dto = self._refresh()
        if self.is_remote:
            self.get_job()
        tags = dict(dto.get("tags") or {})
        details = {
            "runId": dto["run_id"],
            "displayName": dto.get("run_name") or dto["run_id"],
            "experimentId": dto["experiment_id"],
            "status": self.status,
            "startTimeUtc": _utc(dto.get("start_time")),
            "endTimeUtc": _utc(dto.get("end_time")),
            "properties": dict(dto.get("params") or {}),
            "tags": tags,
            "target": tags.get(COMPUTE_TAG) or tags.get(TARGET_TAG, "local"),
            "inputDatasets": [],
            "outputDatasets": [],
            "logFiles": {},
            "submittedBy": dto.get("user_id") or "",
            "artifactUri": dto.get("artifact_uri"),
        }
        if self._job is not None:
            details.update(self._remote_details(self._job))
        return details

    def _remote_details(self, job: dict[str, Any]) -> dict[str, Any]:
        """What a remote run's details add: its definition, log file and error."""
        added: dict[str, Any] = {
            "target": job.get("compute"),
            "runDefinition": {
                "script": job.get("script"),
                "arguments": list(job.get("arguments") or []),
                "target": job.get("compute"),
                "environment": job.get("environment"),
                "snapshotId": job.get("snapshot_hash"),
                "maxRunDurationSeconds": job.get("max_run_duration_seconds"),
            },
            "logFiles": {LOG_FILE: self._client.url(self._logs_path())},
            "exitCode": job.get("exit_code"),
            "url": job.get("url"),
        }
        if job.get("stage") in ("failed", "canceled") and job.get("error"):
            added["error"] = {"error": {"code": "UserError", "message": job["error"]}}
        return added

    def _logs_path(self) -> str:
        return remote.job_path(self._workspace_path, self._run_id, "logs")

    # --- A remote run's end and output ---------------------------------------------------------

    def wait_for_completion(
        self,
        show_output: bool = False,
        wait_post_processing: bool = False,
        raise_on_error: bool = True,
    ) -> dict[str, Any]:
        """Wait until the run ends, printing its output as it comes when asked.

        Args:
            show_output: Print the script's output (stdout and stderr) as it comes, between
                a header with the run's id and page and a summary at the end.
            wait_post_processing: Accepted for compatibility: a remote run ends only after
                its outputs/ are uploaded, so waiting always includes that.
            raise_on_error: Raise when the run failed.

        Returns:
            A remote run's final job (stage, status, exit_code, error, url, ...); for a run
            logged with mlflow, its details (see :meth:`get_details`).

        Raises:
            RunFailedError: the run failed and raise_on_error (also importable as
                ActivityFailedException); its ``job`` is the final job.
        """
        if not self.is_remote:
            while self.get_status() in ("Queued", "Running"):
                remote.pause(remote.IDLE_POLL)
            details = self.get_details()
            if raise_on_error and details["status"] == "Failed":
                raise RunFailedError(f"Run {self.id} failed.", job=details)
            return details
        job = self._job or self.get_job()
        if show_output:
            out = sys.stdout
            out.write(f"RunId: {self.id}\nWeb View: {job.get('url')}\n\n")
            out.write(f"Streaming {LOG_FILE}\n{'=' * (10 + len(LOG_FILE))}\n\n")
            out.flush()
            self.stream_logs(out, follow=True)
        job = remote.wait_for_end(self._client, self._workspace_path, self.get_job())
        self._job = job
        if show_output:
            sys.stdout.write(
                f"\nExecution Summary\n=================\nRunId: {self.id}\n"
                f"Status: {self.status}\nWeb View: {job.get('url')}\n\n"
            )
            sys.stdout.flush()
        if raise_on_error and job.get("stage") == "failed":
            exit_code = job.get("exit_code")
            raise RunFailedError(
                f"Run {self.id} failed"
                + (f" (exit code {exit_code})" if exit_code is not None else "")
                + f": {job.get('error') or 'no reason given'}\nSee {job.get('url')}",
                job=job,
            )
        return dict(job)

    def stream_logs(self, output: Any = None, follow: bool = True) -> None:
        """Write a remote run's output (stdout and stderr of its script) to `output`.

        Args:
            output: A text file (default sys.stdout); flushed after each piece.
            follow: Keep writing what comes until the run ends; else write what there is.

        Raises:
            RunNotFound: the run is not a remote run.
        """
        out = output if output is not None else sys.stdout

        def write(text: str) -> None:
            out.write(text)
            out.flush()

        remote.tail_log(self._client, self._workspace_path, self._run_id, write, follow=follow)

    # --- Metrics ----------------------------------------------------------------------------

    def _history(self, key: str) -> list[float]:
        return [
            _number(point["value"])
            for point in self._client.paged(
                self._path("metrics", "history"),
                {"key": key, "page_size": HISTORY_PAGE},
                not_found=RunNotFound,
            )
        ]

    def get_metrics(
        self, name: str | None = None, recursive: bool = False
    ) -> dict[str, float | list[float]]:
        """The run's metrics, as the reference SDK shapes them.

        A metric logged once is its value; one logged several times is the list of its values
        in step order.

        Args:
            name: Only this metric.
            recursive: Also the metrics of the run's children; the answer is then
                {run_id: {name: value | [values]}}.

        Returns:
            {name: value | [value, ...]}

        Raises:
            RunNotFound: the run was purged.
        """
        if recursive:
            answer = {self.id: self.get_metrics(name)}
            for child in self.get_children(recursive=True):
                answer[child.id] = child.get_metrics(name)
            return answer  # type: ignore[return-value]
        keys = [m["key"] for m in self._client.get(self._path("metrics"), not_found=RunNotFound)]
        if name is not None:
            keys = [key for key in keys if key == name]
        # One request per metric (a page holds a thousand points), a few at a time: only the
        # history tells a single value from several logged at the same step.
        with ThreadPoolExecutor(max_workers=min(4, len(keys) or 1)) as pool:
            histories = dict(zip(keys, pool.map(self._history, keys), strict=True))
        return {
            key: values[0] if len(values) == 1 else values
            for key, values in histories.items()
            if values
        }

    # --- Children and files -----------------------------------------------------------------

    def get_children(self, recursive: bool = False) -> Iterator[Run]:
        """The runs nested in this one (MLflow's mlflow.parentRunId tag)."""
        children = list(
            self.experiment.get_runs(
                include_children=True, filter=f"tags.`{PARENT_TAG}` = '{self.id}'"
            )
        )
        for child in children:
            yield child
            if recursive:
                yield from child.get_children(recursive=True)

    def get_file_names(self) -> list[str]:
        """The paths of every artifact the run stored."""
        names: list[str] = []
        folders = [""]
        while folders:
            folder = folders.pop()
            listing = self._client.get(
                self._path("artifacts"), params={"path": folder} if folder else None
            )
            for item in listing.get("files") or []:
                (folders if item["is_dir"] else names).append(item["path"])
        return sorted(names)

    def download_file(self, name: str, output_file_path: str | os.PathLike | None = None) -> Path:
        """Download one artifact.

        Args:
            name: The artifact's path in the run.
            output_file_path: Where to write it (a folder keeps the file's name); default the
                current folder.

        Returns:
            The path written.
        """
        target = Path(output_file_path) if output_file_path is not None else Path.cwd()
        if target.is_dir():
            target = target / Path(name).name
        response = self._client.request(
            "GET", self._path("artifacts", "download"), params={"path": name}, stream=True
        )
        with target.open("wb") as handle:
            for chunk in response.iter_content(1 << 20):
                handle.write(chunk)
        return target

    # --- Lifecycle --------------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the run.

        A remote run still queued ends Canceled at once; a running one is stopped by its
        worker within seconds (its status says Canceled when it has). A run logged with
        mlflow is marked Canceled (a finished one raises ValidationError).
        """
        if self.is_remote:
            self._job = self._client.post(
                remote.job_path(self._workspace_path, self._run_id, "cancel"),
                not_found=RunNotFound,
            )
        else:
            self._dto = self._client.post(self._path("cancel"), not_found=RunNotFound)

    def delete(self) -> None:
        """Soft-delete the run (:meth:`restore` brings it back)."""
        self._dto = self._client.delete(self._path(), not_found=RunNotFound)

    def restore(self) -> None:
        """Restore a deleted run."""
        self._dto = self._client.post(self._path("restore"), not_found=RunNotFound)

    def purge(self) -> None:
        """Delete a deleted run for good, with its metrics and artifacts."""
        self._client.post(self._path("purge"), not_found=RunNotFound)

    def __repr__(self) -> str:
        return (
            f"Run(Experiment: {self.experiment.name}, Id: {self.id}, Type: {self.type}, "
            f"Status: {self.status})"
        )
