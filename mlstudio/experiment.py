"""Experiments of a workspace, and the search for their runs.

An experiment keeps the workspace it was built with (any object with the
mlstudio._client.parents.WorkspaceParent protocol); runs below it get the experiment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mlstudio._client.http import segment
from mlstudio._client.jobs import finish_job
from mlstudio._client.parents import WorkspaceParent, experiment_by_id
from mlstudio._client.snapshot import build_snapshot, upload_snapshot
from mlstudio.exceptions import (
    ConflictError,
    ExperimentNotFound,
    UserErrorException,
    WorkspaceNotFound,
)
from mlstudio.run import PARENT_TAG, RUN_TYPE_TAG, Run
from mlstudio.script_run_config import ScriptRunConfig

VIEW_TYPES = {"ActiveOnly": "active", "ArchivedOnly": "deleted", "All": "all"}


class Experiment:
    """An experiment: a named group of runs in a workspace.

    ``Experiment(ws, name)`` does not create anything yet: the experiment is created on the
    server the first time something is written to it (or with :meth:`create`), as MLflow's
    ``set_experiment`` does. Reading runs of one that does not exist yields none.

    Args:
        workspace: The workspace.
        name: The experiment's name.
    """

    def __init__(
        self,
        workspace: WorkspaceParent,
        name: str,
        _dto: dict[str, Any] | None = None,
    ) -> None:
        self.workspace = workspace
        self._name = name
        self._dto = _dto

    # --- Lookup -----------------------------------------------------------------------------

    @staticmethod
    def _lookup(
        workspace: WorkspaceParent, name: str, view: str = "active"
    ) -> dict[str, Any] | None:
        for dto in workspace._client.paged(
            f"{workspace._path}/experiments", {"name": name, "view": view}
        ):
            if dto["name"] == name:
                return dto
        return None

    @classmethod
    def _by_id(cls, workspace: WorkspaceParent, experiment_id: str) -> Experiment:
        dto = workspace._client.get(
            f"{workspace._path}/experiments/{segment(experiment_id)}",
            not_found=ExperimentNotFound,
        )
        return cls(workspace, dto["name"], _dto=dto)

    def _resolve(self) -> dict[str, Any] | None:
        # Names are unique in a workspace, archived experiments included: whatever its
        # stage, there is at most one experiment of this name.
        if self._dto is None:
            self._dto = self._lookup(self.workspace, self._name, "all")
        return self._dto

    def _ensure(self, tags: dict[str, str] | None = None) -> dict[str, Any]:
        """The experiment's record, creating the experiment when it does not exist yet."""
        dto = self._resolve()
        if dto is not None:
            return dto
        try:
            self._dto = self.workspace._client.post(
                f"{self.workspace._path}/experiments", {"name": self._name, "tags": tags or {}}
            )
        except ConflictError:  # someone created it meanwhile
            self._dto = self._lookup(self.workspace, self._name)
            if self._dto is None:
                raise
        return self._dto

    @classmethod
    def create(
        cls, workspace: WorkspaceParent, name: str, tags: dict[str, str] | None = None
    ) -> Experiment:
        """Create an experiment (or answer the active one of that name).

        Raises:
            ValidationError: a bad name.
        """
        experiment = cls(workspace, name)
        experiment._ensure(tags)
        return experiment

    @classmethod
    def list(
        cls,
        workspace: WorkspaceParent,
        experiment_name: str | None = None,
        view_type: str = "ActiveOnly",
        search: str | None = None,
    ) -> list[Experiment]:
        """The workspace's experiments.

        Args:
            workspace: The workspace.
            experiment_name: Only the one with this exact name.
            view_type: "ActiveOnly", "ArchivedOnly" or "All".
            search: Only those whose name contains this (any case).

        Returns:
            The experiments.
        """
        if view_type not in VIEW_TYPES:
            raise UserErrorException(f"view_type must be one of {', '.join(VIEW_TYPES)}.")
        params: dict[str, Any] = {"view": VIEW_TYPES[view_type]}
        if experiment_name is not None:
            params["name"] = experiment_name
        if search:
            params["search"] = search
        return [
            cls(workspace, dto["name"], _dto=dto)
            for dto in workspace._client.paged(f"{workspace._path}/experiments", params)
        ]

    # --- What it is -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def id(self) -> str | None:
        """The experiment's id, or None while it does not exist on the server."""
        dto = self._resolve()
        return dto["experiment_id"] if dto else None

    @property
    def tags(self) -> dict[str, str]:
        dto = self._resolve()
        return dict(dto.get("tags") or {}) if dto else {}

    @property
    def archived(self) -> bool:
        dto = self._resolve()
        return bool(dto and dto.get("lifecycle_stage") == "deleted")

    def get_details(self) -> dict[str, Any]:
        """The experiment as the server has it: experiment_id, name, artifact_location,
        lifecycle_stage, creation_time, last_update_time (ms), tags.

        Raises:
            ExperimentNotFound: it does not exist.
        """
        if self._dto is None:  # its lookup by name reads it fresh
            self._path()  # raises ExperimentNotFound when there is none
        else:
            self._dto = self.workspace._client.get(self._path(), not_found=ExperimentNotFound)
        return dict(self._dto)

    def _path(self, *parts: str) -> str:
        dto = self._resolve()
        if dto is None:
            raise ExperimentNotFound(
                f"No experiment named {self._name!r} in {self.workspace.name}."
            )
        return "/".join(
            [f"{self.workspace._path}/experiments/{segment(dto['experiment_id'])}", *parts]
        )

    # --- Runs -------------------------------------------------------------------------------

    def get_runs(
        self,
        type: str | None = None,
        tags: str | Iterable[str] | dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        include_children: bool = False,
        filter: str | None = None,
        order_by: str | Iterable[str] | None = None,
    ) -> Iterator[Run]:
        """The experiment's runs, newest first.

        Args:
            type: Only runs of this type (the ``mlstudio.runType`` tag; runs logged with
                mlflow have none).
            tags: Only runs with these tags: a key or keys (any value), or {key: value}.
            properties: Only runs with these params {key: value} (the reference SDK's
                properties are MLflow's params).
            include_children: Include nested runs (those with a parent run).
            filter: An MLflow search filter (``"metrics.alpha > 0.01"``).
            order_by: MLflow order-by clauses (default ``"attributes.start_time DESC"``).

        Yields:
            Run objects, fetched page by page as they are consumed.
        """
        dto = self._resolve()
        if dto is None:
            return
        clauses = [filter] if filter else []
        wanted_tags: dict[str, str | None] = {}
        if isinstance(tags, str):
            wanted_tags[tags] = None
        elif isinstance(tags, dict):
            wanted_tags.update(tags)
        elif tags is not None:
            wanted_tags.update(dict.fromkeys(tags))
        for key, value in wanted_tags.items():
            if value is not None and "'" not in value and "`" not in key:
                clauses.append(f"tags.`{key}` = '{value}'")
        for key, value in (properties or {}).items():
            if "'" not in value and "`" not in key:
                clauses.append(f"params.`{key}` = '{value}'")
        if isinstance(order_by, str):
            order_by = [order_by]
        params: dict[str, Any] = {
            "experiment_id": dto["experiment_id"],
            "view": "active",
            "order_by": list(order_by or ["attributes.start_time DESC"]),
        }
        if clauses:
            # MLflow's filter syntax has AND only, and no parentheses.
            params["filter"] = " and ".join(clauses)
        for run_dto in self.workspace._client.paged(f"{self.workspace._path}/runs", params):
            run_tags = run_dto.get("tags") or {}
            if not include_children and PARENT_TAG in run_tags:
                continue
            if type is not None and run_tags.get(RUN_TYPE_TAG) != type:
                continue
            # Checked here too: values the filter syntax cannot quote, keys without values.
            if any(
                key not in run_tags or (value is not None and run_tags[key] != value)
                for key, value in wanted_tags.items()
            ):
                continue
            run_params = run_dto.get("params") or {}
            if any(run_params.get(k) != v for k, v in (properties or {}).items()):
                continue
            yield Run(self, run_dto["run_id"], _dto=run_dto)

    # --- Remote runs ------------------------------------------------------------------------

    def submit(
        self,
        config: ScriptRunConfig,
        tags: dict[str, str] | None = None,
        *,
        run_name: str | None = None,
    ) -> Run:
        """Run a script on a compute target, as a new run of this experiment.

        The source directory is zipped (see mlstudio._client.snapshot: ignore files,
        limits) and uploaded unless the studio has the same content already; the studio
        queues the run on the target, whose worker builds the environment (once per spec)
        and runs the script with MLflow tracking wired to this run. The experiment is
        created if it does not exist yet.

        Args:
            config: What to run: a ScriptRunConfig.
            tags: Tags of the new run {key: value}.
            run_name: The run's name (default: one the studio makes up).

        Returns:
            The run, Queued; follow it with ``run.wait_for_completion(show_output=True)``.

        Raises:
            UserErrorException: the script is not in the source directory, the directory is
                past the snapshot limits, or the environment is invalid.
            NotFoundError: no such compute target or registered environment version.
            AuthorizationError: submitting needs the contributor role.
        """
        if not isinstance(config, ScriptRunConfig):
            raise UserErrorException(
                f"Experiment.submit takes a ScriptRunConfig; got {type(config).__name__}."
            )
        client = self.workspace._client
        with build_snapshot(config.source_directory) as snapshot:
            body = config._job_spec(snapshot.paths)
            upload_snapshot(client, self.workspace._path, snapshot)
        body.update(experiment_name=self._name, snapshot_hash=snapshot.sha256)
        if tags:
            body["tags"] = {str(key): str(value) for key, value in tags.items()}
        if run_name:
            body["run_name"] = run_name
        job = client.post(f"{self.workspace._path}/jobs", body)
        if self._dto is None:  # the studio made the experiment with the run
            self._resolve()
        return Run(self, job["run_id"], _job=job)

    # --- Lifecycle --------------------------------------------------------------------------

    def archive(self) -> None:
        """Soft-delete the experiment (its runs stay, restorable with :meth:`reactivate`)."""
        self._dto = self.workspace._client.delete(self._path(), not_found=ExperimentNotFound)

    def reactivate(self, new_name: str | None = None) -> None:
        """Restore an archived experiment, optionally renaming it first."""
        dto = self._dto
        if dto is None or dto.get("lifecycle_stage") != "deleted":
            dto = self._lookup(self.workspace, self._name, "all")
        if dto is None or dto.get("lifecycle_stage") != "deleted":
            raise ExperimentNotFound(f"No archived experiment named {self._name!r}.")
        self._dto = dto
        self._dto = self.workspace._client.post(self._path("restore"), not_found=ExperimentNotFound)
        if new_name is not None:
            self._dto = self.workspace._client.patch(self._path(), {"name": new_name})
            self._name = new_name

    def delete(
        self, wait: bool = True, show_progress: bool = True, timeout: float | None = None
    ) -> dict[str, Any]:
        """Delete the experiment for good: its runs, metrics and stored artifacts.

        Returns:
            The purge job (its final state when waiting).

        Raises:
            JobFailedError: the purge failed.
        """
        if not self.archived:
            self.archive()
        job = self.workspace._client.post(self._path("purge"), not_found=ExperimentNotFound)
        return finish_job(
            self.workspace._client, job, wait=wait, show_progress=show_progress, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"Experiment(Name: {self._name}, Workspace: {self.workspace.name})"


experiment_by_id.provide(Experiment._by_id)  # for Run.get, below this module


class WorkspaceExperiments(Mapping[str, "Experiment"]):
    """ws.experiments: a read-only mapping of the active experiments by name."""

    def __init__(self, workspace: WorkspaceParent) -> None:
        self._workspace = workspace

    def __getitem__(self, name: str) -> Experiment:
        dto = Experiment._lookup(self._workspace, name)
        if dto is None:
            raise KeyError(name)
        return Experiment(self._workspace, name, _dto=dto)

    def _items(self) -> Iterator[dict[str, Any]]:
        return self._workspace._client.paged(
            f"{self._workspace._path}/experiments",
            {"view": "active"},
            not_found=WorkspaceNotFound,
        )

    def __iter__(self) -> Iterator[str]:
        return (dto["name"] for dto in self._items())

    def __len__(self) -> int:
        return sum(1 for _ in self._items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and Experiment._lookup(self._workspace, name) is not None

    # values() and items() read one listing instead of looking each name up.
    def values(self) -> list[Experiment]:  # type: ignore[override]
        return [Experiment(self._workspace, dto["name"], _dto=dto) for dto in self._items()]

    def items(self) -> list[tuple[str, Experiment]]:  # type: ignore[override]
        return [(exp.name, exp) for exp in self.values()]

    def __repr__(self) -> str:
        return repr(dict(self.items()))
