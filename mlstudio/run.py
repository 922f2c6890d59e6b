"""Runs: their status, details, metrics, files, and cancel/delete/restore.

The lowest object: a run keeps the experiment it was built with and reaches its workspace
through it (see mlstudio._client.parents).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlstudio._client.http import HttpClient, segment
from mlstudio._client.parents import ExperimentParent, WorkspaceParent, experiment_by_id
from mlstudio.exceptions import RunNotFound

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
        self, experiment: ExperimentParent, run_id: str, _dto: dict[str, Any] | None = None
    ) -> None:
        self.experiment = experiment
        self._run_id = run_id
        self._dto = _dto if _dto is not None else self._fetch()

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
        return status_name(self._dto["status"])

    @property
    def type(self) -> str:
        return (self._dto.get("tags") or {}).get(RUN_TYPE_TAG, "mlflow")

    @property
    def parent(self) -> Run | None:
        parent_id = (self._dto.get("tags") or {}).get(PARENT_TAG)
        return Run(self.experiment, parent_id) if parent_id else None

    def get_status(self) -> str:
        """The run's current status: Running, Completed, Failed, Canceled or Queued."""
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
        tags = dict(dto.get("tags") or {})
        return {
            "runId": dto["run_id"],
            "displayName": dto.get("run_name") or dto["run_id"],
            "experimentId": dto["experiment_id"],
            "status": self.status,
            "startTimeUtc": _utc(dto.get("start_time")),
            "endTimeUtc": _utc(dto.get("end_time")),
            "properties": dict(dto.get("params") or {}),
            "tags": tags,
            "target": tags.get(TARGET_TAG, "local"),
            "inputDatasets": [],
            "outputDatasets": [],
            "logFiles": {},
            "submittedBy": dto.get("user_id") or "",
            "artifactUri": dto.get("artifact_uri"),
        }

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
        """Mark a running or queued run Canceled (a finished one raises ValidationError)."""
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
