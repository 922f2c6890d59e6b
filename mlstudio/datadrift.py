"""Data drift monitors of web services (the reference SDK's ``DataDriftDetector``).

A monitor compares windows of the inputs a web service was scored with against a
baseline, feature by feature, and flags a window whose drift magnitude reaches the
threshold (with an email and a webhook call)::

    from mlstudio.datadrift import DataDriftDetector

    monitor = DataDriftDetector.create_from_service(
        ws, "diabetes-model-1", "inputs", baseline=f"runs:/{run_id}",
        frequency="Day", threshold=0.2, alert_emails=["ops@example.com"])
    job = monitor.backfill(datetime(2026, 11, 1), datetime(2026, 12, 1))
    job.wait_for_completion(show_output=True)
    for window in monitor.get_results():
        print(window["window_start"], window["magnitude"], window["drifted"])

The baseline is one of: ``runs:/<run id>`` (the training data the run logged with
``mlflow.log_input``, its rows an artifact of the run; ``runs:/<run id>/<artifact path>``
names the file), ``datasets:/<dataset id>`` (a registered dataset), a pandas DataFrame or
the path of a local CSV file (uploaded), or the server's own dict
(``{"kind": "run_input", "run_id": ..., "dataset_name": ...}``).

Figures are also logged as metrics of a run in the experiment ``drift-<service>``
(``drift_magnitude``, ``<feature>.wasserstein`` …), so MLflow charts them as well.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, date, datetime
from typing import Any

from urllib3 import encode_multipart_formdata

from mlstudio._client.http import segment
from mlstudio._client.jobs import follow_job
from mlstudio._client.parents import WorkspaceParent
from mlstudio.exceptions import NotFoundError, ValidationError


class DriftMonitorNotFound(NotFoundError):
    """No drift monitor of that name on the service."""


def _moment(value: datetime | date | str | None, what: str) -> str | None:
    """ISO 8601 for the server; naive datetimes are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise ValidationError(f"{what} must be a datetime, a date or an ISO 8601 string.")


def baseline_spec(baseline: Any) -> tuple[dict[str, Any] | None, tuple[str, bytes] | None]:
    """(the server's baseline dict, or None) and (a CSV to upload: name, bytes, or None)."""
    if hasattr(baseline, "to_csv") and hasattr(baseline, "columns"):  # a pandas DataFrame
        buffer = io.StringIO()
        baseline.to_csv(buffer, index=False)
        return None, ("baseline.csv", buffer.getvalue().encode())
    if isinstance(baseline, dict):
        return dict(baseline), None
    run_id = getattr(getattr(baseline, "info", None), "run_id", None)  # an mlflow Run
    if isinstance(run_id, str):
        return {"kind": "run_input", "run_id": run_id}, None
    if isinstance(baseline, str) and baseline.startswith("runs:/"):
        run_id, _, artifact_path = baseline[len("runs:/") :].partition("/")
        spec: dict[str, Any] = {"kind": "run_input", "run_id": run_id}
        if artifact_path:
            spec["artifact_path"] = artifact_path
        return spec, None
    if isinstance(baseline, str) and baseline.startswith("datasets:/"):
        return {"kind": "dataset", "dataset_id": baseline[len("datasets:/") :]}, None
    if isinstance(baseline, os.PathLike) or (
        isinstance(baseline, str) and baseline.lower().endswith(".csv")
    ):
        path = os.fspath(baseline)
        with open(path, "rb") as handle:
            return None, (os.path.basename(path), handle.read())
    raise ValidationError(
        "baseline must be 'runs:/<run id>[/<artifact path>]', 'datasets:/<dataset id>', a "
        "pandas DataFrame, the path of a CSV file, or a dict the server takes."
    )


class DriftJob:
    """A drift computation running on the server (a backfill, or a ``run``)."""

    def __init__(self, client: Any, details: dict[str, Any]) -> None:
        self._client = client
        self._details = details

    @property
    def id(self) -> str:
        return str(self._details["id"])

    @property
    def status(self) -> str:
        """queued, running, succeeded or failed."""
        return self._details["status"]

    def get_details(self) -> dict[str, Any]:
        return dict(self._details)

    def refresh(self) -> DriftJob:
        self._details = self._client.get(self._details["url"])
        return self

    def wait_for_completion(
        self, show_output: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        """Poll until the job ends; raises JobFailedError when it failed."""
        self._details = follow_job(
            self._client, self._details, show_progress=show_output, timeout=timeout
        )
        return dict(self._details)

    def __repr__(self) -> str:
        return f"DriftJob(id={self.id!r}, status={self.status!r})"


class DataDriftDetector:
    """A drift monitor of a web service. Get one with :meth:`get` or
    :meth:`create_from_service`."""

    def __init__(
        self,
        workspace: WorkspaceParent,
        service_name: str,
        name: str,
        _details: dict[str, Any] | None = None,
    ) -> None:
        self.workspace = workspace
        self.service_name = service_name
        self._name = name
        self._details = _details if _details is not None else self._fetch()

    # --- Paths ---------------------------------------------------------------------------

    @staticmethod
    def _list_path(workspace: WorkspaceParent, service_name: str) -> str:
        return f"{workspace._path}/services/{segment(service_name)}/drift-monitors"

    def _path(self, *parts: str) -> str:
        base = f"{self._list_path(self.workspace, self.service_name)}/{segment(self._name)}"
        return "/".join([base, *parts])

    def _fetch(self) -> dict[str, Any]:
        return self.workspace._client.get(self._path(), not_found=DriftMonitorNotFound)

    # --- Creating, finding ---------------------------------------------------------------

    @staticmethod
    def create_from_service(
        workspace: WorkspaceParent,
        service_name: str,
        name: str,
        baseline: Any,
        features: list[str] | None = None,
        frequency: str = "Day",
        threshold: float = 0.2,
        alert_emails: list[str] | None = None,
        webhook: str | None = None,
        categorical_features: list[str] | None = None,
        enabled: bool = True,
    ) -> DataDriftDetector:
        """Create a monitor of a web service's inputs.

        Args:
            workspace: The workspace.
            service_name: The web service whose scoring inputs are watched.
            name: The monitor's name (unique per service).
            baseline: What the inputs are compared with (see the module's doc).
            features: The columns compared (default: every column of the baseline).
            frequency: "Hour", "Day" or "Week": the length of a window.
            threshold: A window drifted when its magnitude (0 to 1) reaches this.
            alert_emails: Who gets an email when a window drifted.
            webhook: A URL that gets a JSON POST when a window drifted.
            categorical_features: Numeric columns to compare as categories.
            enabled: Whether the schedule computes each window as it ends.

        Raises:
            ValidationError: a setting is wrong, or the baseline cannot be read.
            ConflictError: the service has a monitor of that name already.
        """
        spec, upload = baseline_spec(baseline)
        fields: dict[str, Any] = {
            "name": name,
            "frequency": str(frequency).lower(),
            "threshold": threshold,
            "enabled": enabled,
        }
        for key, value in (
            ("features", features),
            ("categorical_features", categorical_features),
            ("alert_emails", alert_emails),
            ("alert_webhook", webhook),
        ):
            if value is not None:
                fields[key] = list(value) if isinstance(value, list | tuple) else value
        client = workspace._client
        path = DataDriftDetector._list_path(workspace, service_name)
        if upload is None:
            details = client.post(path, json={**fields, "baseline": spec})
        else:
            body, content_type = encode_multipart_formdata(
                {"spec": json.dumps(fields), "baseline_file": (upload[0], upload[1], "text/csv")}
            )
            details = client.call("POST", path, data=body, headers={"Content-Type": content_type})
        return DataDriftDetector(workspace, service_name, details["name"], _details=details)

    @staticmethod
    def get(workspace: WorkspaceParent, service_name: str, name: str) -> DataDriftDetector:
        """The service's monitor of that name (DriftMonitorNotFound otherwise)."""
        return DataDriftDetector(workspace, service_name, name)

    @staticmethod
    def list(workspace: WorkspaceParent, service_name: str) -> list[DataDriftDetector]:
        """The service's monitors."""
        path = DataDriftDetector._list_path(workspace, service_name)
        found = workspace._client.get(path)["drift_monitors"]
        return [DataDriftDetector(workspace, service_name, d["name"], _details=d) for d in found]

    # --- What it is ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._details["name"]

    @property
    def baseline(self) -> dict[str, Any]:
        return dict(self._details["baseline"])

    @property
    def features(self) -> list[str]:
        """The compared columns ([] = every column of the baseline)."""
        return list(self._details["features"])

    @property
    def frequency(self) -> str:
        return self._details["frequency"].capitalize()

    @property
    def threshold(self) -> float:
        return self._details["threshold"]

    @property
    def alert_emails(self) -> list[str]:
        return list(self._details["alert_emails"])

    @property
    def enabled(self) -> bool:
        """Whether the schedule computes windows as they end."""
        return self._details["enabled"]

    @property
    def monitoring_run_id(self) -> str | None:
        """The MLflow run drift figures are logged to as metrics."""
        return self._details["monitoring_run_id"]

    @property
    def latest_result(self) -> dict[str, Any] | None:
        return self._details["latest_result"]

    def get_details(self) -> dict[str, Any]:
        return dict(self._details)

    def refresh(self) -> DataDriftDetector:
        self._details = self._fetch()
        return self

    # --- Computing, results --------------------------------------------------------------

    def _job(self, start: Any, end: Any, send_alerts: bool) -> DriftJob:
        body = {
            "start": _moment(start, "start"),
            "end": _moment(end, "end"),
            "send_alerts": send_alerts,
        }
        client = self.workspace._client
        return DriftJob(client, client.post(self._path("backfill"), json=body))

    def run(self, start: Any, end: Any) -> DriftJob:
        """Compute the windows of [start, end) now, alerting on drifted ones not alerted
        before. Returns the job (``.wait_for_completion()``)."""
        return self._job(start, end, True)

    def backfill(self, start: Any, end: Any, send_alerts: bool = False) -> DriftJob:
        """Compute (again) every window of [start, end), by default without alerts."""
        return self._job(start, end, send_alerts)

    def get_results(self, start: Any = None, end: Any = None) -> list[dict[str, Any]]:
        """The computed windows, oldest first: window_start, window_end, rows, magnitude,
        drifted and per feature its figures and contribution."""
        params = {
            key: value
            for key, value in (("start", _moment(start, "start")), ("end", _moment(end, "end")))
            if value is not None
        }
        return self.workspace._client.get(self._path("results"), params=params)["results"]

    # --- Changing ------------------------------------------------------------------------

    def update(self, **changes: Any) -> DataDriftDetector:
        """Change features, categorical_features, frequency, threshold, alert_emails,
        alert_webhook or enabled."""
        if "webhook" in changes:
            changes["alert_webhook"] = changes.pop("webhook")
        if isinstance(changes.get("frequency"), str):
            changes["frequency"] = changes["frequency"].lower()
        self._details = self.workspace._client.patch(self._path(), json=changes)
        return self

    def enable_schedule(self) -> DataDriftDetector:
        """Compute each window as it ends (Celery beat on the server)."""
        return self.update(enabled=True)

    def disable_schedule(self) -> DataDriftDetector:
        return self.update(enabled=False)

    def delete(self) -> None:
        """Remove the monitor and its results (its monitoring run stays)."""
        self.workspace._client.delete(self._path())

    def __repr__(self) -> str:
        return f"DataDriftDetector(service={self.service_name!r}, name={self._name!r})"
