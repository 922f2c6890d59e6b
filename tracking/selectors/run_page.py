"""Reads for the run page: the run, its overview, child runs, models and artifact trees.

Every read is bounded: the page never loads metric history (charts ask for sampled
series themselves), child runs are capped, and the overview's keys and values come
from one query however many params, tags and metrics the run has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count
from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
from mlflow.utils.mlflow_tags import (
    MLFLOW_GIT_BRANCH,
    MLFLOW_GIT_COMMIT,
    MLFLOW_GIT_REPO_URL,
    MLFLOW_PARENT_RUN_ID,
    MLFLOW_PROJECT_ENTRY_POINT,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
)

from portal.errors import NotFound
from portal.models import Workspace
from tracking.artifacts import (
    ArtifactEntry,
    ArtifactStore,
    clean_artifact_path,
    join,
)
from tracking.artifacts.roots import ArtifactRoot
from tracking.models import (
    LatestMetric,
    LoggedModel,
    ModelVersion,
    RegisteredModelAlias,
    Run,
    RunInput,
)

SYSTEM_TAG_PREFIX = "mlflow."
NOTE_TAG = "mlflow.note.content"
LEGACY_GIT_REPO_URL = "mlflow.gitRepoURL"
CHILDREN_SHOWN = 200
CHILD_METRIC_COLUMNS = 6
FOLDER_ENTRIES_SHOWN = 500


@dataclass(frozen=True)
class MetricRow:
    key: str
    value: float
    timestamp: int
    step: int
    is_nan: bool


@dataclass
class RunOverview:
    """What the page header and the overview tab show; sorted by key."""

    params: list[tuple[str, str]]
    metrics: list[MetricRow]
    user_tags: list[tuple[str, str]]
    system_tags: list[tuple[str, str]]
    tags: dict[str, str]
    parent_id: str = ""
    parent: Run | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def metric_keys(self) -> list[str]:
        return [m.key for m in self.metrics]

    @property
    def source(self) -> dict[str, str]:
        """Where the run's code came from, from the mlflow.source.* tags."""
        tags = self.tags
        return {
            "name": tags.get(MLFLOW_SOURCE_NAME, ""),
            "type": tags.get(MLFLOW_SOURCE_TYPE, ""),
            "entry_point": tags.get(MLFLOW_PROJECT_ENTRY_POINT, ""),
            "commit": tags.get(MLFLOW_GIT_COMMIT, ""),
            "branch": tags.get(MLFLOW_GIT_BRANCH, ""),
            "repo": tags.get(MLFLOW_GIT_REPO_URL) or tags.get(LEGACY_GIT_REPO_URL, ""),
        }

    @property
    def note(self) -> str:
        return self.tags.get(NOTE_TAG, "")


def run_for_page(*, workspace: Workspace, run_id: str) -> Run:
    """The workspace's run (active or deleted) with its experiment, or 404."""
    run = (
        Run.objects.filter(workspace=workspace, run_uuid=run_id)
        .select_related("experiment")
        .first()
    )
    if run is None:
        raise NotFound(f"Run {run_id} not found in this workspace.")
    # The same workspace object everywhere, so building URLs costs no queries.
    run.workspace = workspace
    run.experiment.workspace = workspace
    return run


def run_overview(run: Run) -> RunOverview:
    """Params, tags and latest metrics in one round trip, then datasets and the parent."""
    params: list[tuple[str, str]] = []
    tags: dict[str, str] = {}
    metrics: list[MetricRow] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 0, key, NULL, value, timestamp, step, is_nan "
            "FROM tracking_latestmetric WHERE run_id = %s "
            "UNION ALL SELECT 1, key, value, NULL, NULL, NULL, NULL "
            "FROM tracking_param WHERE run_id = %s "
            "UNION ALL SELECT 2, key, value, NULL, NULL, NULL, NULL "
            "FROM tracking_runtag WHERE run_id = %s",
            [run.pk] * 3,
        )
        for kind, key, text, number, timestamp, step, is_nan in cursor.fetchall():
            if kind == 0:
                metrics.append(MetricRow(key, number, timestamp, step, bool(is_nan)))
            elif kind == 1:
                params.append((key, text))
            else:
                tags[key] = text
    ordered_tags = sorted(tags.items())
    overview = RunOverview(
        params=sorted(params),
        metrics=sorted(metrics, key=lambda m: m.key),
        user_tags=[(k, v) for k, v in ordered_tags if not k.startswith(SYSTEM_TAG_PREFIX)],
        system_tags=[(k, v) for k, v in ordered_tags if k.startswith(SYSTEM_TAG_PREFIX)],
        tags=tags,
        parent_id=tags.get(MLFLOW_PARENT_RUN_ID, ""),
    )
    if overview.parent_id:
        overview.parent = (
            Run.objects.filter(workspace_id=run.workspace_id, run_uuid=overview.parent_id)
            .only("run_uuid", "name", "workspace_id")
            .first()
        )
        if overview.parent is not None:
            overview.parent.workspace = run.workspace
    overview.datasets = run_datasets(run)
    return overview


def _json_object(raw: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def run_datasets(run: Run) -> list[dict[str, Any]]:
    """The run's dataset inputs, with the JSON fields MLflow stores as strings unpacked."""
    result = []
    inputs = RunInput.objects.filter(run=run).select_related("dataset").order_by("pk")
    for item in inputs:
        dataset = item.dataset
        input_tags = {t.get("key"): t.get("value") for t in item.tags if isinstance(t, dict)}
        source = _json_object(dataset.source)
        if isinstance(source, dict):
            location = next(
                (str(source[k]) for k in ("uri", "url", "path", "table_name") if source.get(k)),
                dataset.source,
            )
        else:
            location = dataset.source
        schema = _json_object(dataset.schema)
        columns = []
        if isinstance(schema, dict) and isinstance(schema.get("mlflow_colspec"), list):
            columns = [
                (str(col.get("name", "")), str(col.get("type", "")))
                for col in schema["mlflow_colspec"]
                if isinstance(col, dict)
            ]
        profile = _json_object(dataset.profile)
        result.append(
            {
                "name": dataset.name,
                "digest": dataset.digest,
                "source_type": dataset.source_type,
                "source": location,
                "context": input_tags.get("mlflow.data.context", ""),
                "columns": columns,
                "schema": dataset.schema,
                "profile": profile if isinstance(profile, dict) else {},
            }
        )
    return result


# --- Child runs ------------------------------------------------------------------------------


def _children_of(run: Run):
    return Run.objects.filter(
        workspace_id=run.workspace_id, tags__key=MLFLOW_PARENT_RUN_ID, tags__value=run.run_uuid
    )


def child_run_count(run: Run) -> int:
    return _children_of(run).count()


@dataclass
class ChildRuns:
    runs: list[Run]
    total: int
    metric_keys: list[str]  # the columns: the keys most child runs have
    metrics: dict[tuple[int, str], LatestMetric]  # (run pk, key) → latest value
    rows: list[dict[str, Any]] = field(default_factory=list)  # filled by the page


def child_runs(run: Run, *, total: int | None = None) -> ChildRuns:
    """The newest CHILDREN_SHOWN child runs and the latest values of their commonest metrics."""
    if total is None:
        total = child_run_count(run)
    runs = list(_children_of(run).order_by("-start_time", "run_uuid")[:CHILDREN_SHOWN])
    pks = [child.pk for child in runs]
    keys: list[str] = []
    values: dict[tuple[int, str], LatestMetric] = {}
    if pks:
        counted = (
            LatestMetric.objects.filter(run_id__in=pks)
            .values("key")
            .annotate(n=Count("id"))
            .order_by("-n", "key")[:CHILD_METRIC_COLUMNS]
        )
        keys = sorted(row["key"] for row in counted)
        if keys:
            for metric in LatestMetric.objects.filter(run_id__in=pks, key__in=keys).only(
                "run_id", "key", "value", "is_nan", "step"
            ):
                values[(metric.run_id, metric.key)] = metric
    return ChildRuns(runs=runs, total=total, metric_keys=keys, metrics=values)


# --- Models ----------------------------------------------------------------------------------


def run_logged_models(run: Run) -> list[LoggedModel]:
    """Logged models whose source is this run, newest first (deleted ones included)."""
    return list(
        LoggedModel.objects.filter(workspace_id=run.workspace_id, source_run=run).order_by(
            "-creation_timestamp_ms", "model_id"
        )
    )


def run_model_versions(run: Run) -> list[ModelVersion]:
    """Registered model versions created from this run, each with `.aliases` set."""
    versions = list(
        ModelVersion.objects.filter(
            registered_model__workspace_id=run.workspace_id, run_id=run.run_uuid
        )
        .exclude(current_stage=STAGE_DELETED_INTERNAL)
        .select_related("registered_model")
        .order_by("registered_model__name", "-version")
    )
    aliases: dict[tuple[int, int], list[str]] = {}
    if versions:
        rows = RegisteredModelAlias.objects.filter(
            registered_model_id__in={v.registered_model_id for v in versions}
        ).order_by("alias")
        for row in rows:
            aliases.setdefault((row.registered_model_id, row.version), []).append(row.alias)
    for version in versions:
        version.aliases = aliases.get((version.registered_model_id, version.version), [])
    return versions


# --- Artifacts -------------------------------------------------------------------------------


@dataclass
class TreeNode:
    """One entry of the artifact tree; `children` is filled for folders shown open."""

    name: str
    path: str  # relative to the artifact root
    is_dir: bool
    size: int | None
    children: list[TreeNode] | None = None
    more: int = 0  # entries of an open folder left out of `children`

    @property
    def open(self) -> bool:
        return self.children is not None


def _nodes(entries: list[ArtifactEntry], prefix: str) -> tuple[list[TreeNode], int]:
    cut = len(prefix) + 1 if prefix else 0
    # Folders first, then files, each by name, as file browsers show them.
    ordered = sorted(entries, key=lambda e: (not e.is_dir, e.name.lower(), e.name))
    nodes = [
        TreeNode(name=e.name, path=e.path[cut:], is_dir=e.is_dir, size=e.file_size)
        for e in ordered[:FOLDER_ENTRIES_SHOWN]
    ]
    return nodes, max(0, len(ordered) - FOLDER_ENTRIES_SHOWN)


def artifact_folder(
    store: ArtifactStore, root: ArtifactRoot, path: str = ""
) -> tuple[list[TreeNode], int]:
    """The entries of a folder below the root (folders first), and how many were left out."""
    path = clean_artifact_path(path)
    return _nodes(store.list(join(root.prefix, path)), root.prefix)


def artifact_tree(
    store: Any, root: ArtifactRoot, open_path: str = ""
) -> tuple[list[TreeNode], int]:
    """The root's entries, with the folders leading to `open_path` listed open, so a
    deep link to a file shows where it is."""
    nodes, more = artifact_folder(store, root)
    parts = clean_artifact_path(open_path).split("/")[:-1] if open_path else []
    level = nodes
    for depth in range(len(parts)):
        folder = "/".join(parts[: depth + 1])
        node = next((n for n in level if n.is_dir and n.path == folder), None)
        if node is None:
            break
        node.children, node.more = artifact_folder(store, root, folder)
        level = node.children
    return nodes, more
