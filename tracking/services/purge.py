"""Permanent removal of tracking data: rows and stored artifacts, for good.

Purge applies to what is already soft-deleted (as `mlflow gc` does): an active run or
experiment is refused with INVALID_PARAMETER_VALUE. Every function here is
idempotent: run it again after a crash midway and it finishes the work, skipping
what is already gone. Artifacts go before the rows that point at them, so a crash
between the two leaves rows that a re-run purges, never files nobody can find.

Metric points have no foreign-key constraint (there can be millions per run), so
whatever deletes runs first calls `metric_points_purge` for them: one set-based
DELETE. Runs go in batches (BATCH_SIZE per transaction) so an experiment with
10,000 runs never holds one huge transaction, and progress can be reported.

Where files are (see tracking.mlflow.artifacts and tracking.services.runs): paths are
relative to the workspace's artifact root; an experiment's folder is the path of its
`artifact_location` (`mlflow-artifacts:/<experiment id>` by default), a run's is
`<experiment folder>/<run uuid>` (its artifact_uri ends in `/artifacts`), a logged
model's is `<experiment folder>/models/<model id>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from tracking.artifacts import ArtifactStore, artifact_uri_path, store_for
from tracking.models import (
    EvaluationDataset,
    Experiment,
    LatestMetric,
    LifecycleStage,
    LoggedModel,
    RegisteredModel,
    Run,
)

BATCH_SIZE = 500  # runs per transaction in cascades
RUN_PURGE_LIMIT = 100  # runs one synchronous purge accepts (a page's selection)

# (how many more units are done, phase text); called inside each batch's transaction
# so the job's progress commits together with the rows it counts.
Progress = Callable[[int, str], None]


def _no_progress(done: int, phase: str) -> None:
    return None


# --- Rows --------------------------------------------------------------------------


def metric_points_purge(*, runs: QuerySet[Run]) -> int:
    """Delete every metric point of these runs; returns how many went."""
    series = LatestMetric.objects.filter(run__in=runs).values("id")
    sql, params = series.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM tracking_metricpoint WHERE series_id IN ({sql})",  # noqa: S608
            params,
        )
        return cursor.rowcount


def runs_purge(*, runs: QuerySet[Run]) -> int:
    """Delete runs for good with everything they logged (artifacts are the caller's).

    Params, tags, latest metrics, inputs, outputs and model metrics go with them, one
    DELETE per table; logged models they produced stay, detached from the run."""
    metric_points_purge(runs=runs)
    deleted, _ = runs.delete()
    return deleted


# --- Artifact folders --------------------------------------------------------------


def _folder(uri: str | None) -> str | None:
    """The path below the workspace root of an `mlflow-artifacts:/` location, or None
    when it is not one (nothing of ours to delete)."""
    if not uri:
        return None
    try:
        return artifact_uri_path(uri)
    except InvalidParameter:
        return None


def run_artifact_folder(run_uuid: str, artifact_uri: str) -> str | None:
    """`<experiment folder>/<run uuid>`: everything the run stored. None unless the
    artifact_uri has the shape runs are created with, so a purge never deletes more
    than the run's own folder."""
    path = _folder(artifact_uri)
    if not path:
        return None
    folder, _, last = path.rpartition("/")
    if last != "artifacts" or folder.rpartition("/")[2] != run_uuid:
        return None
    return folder


def logged_model_artifact_folder(model_id: str, artifact_location: str) -> str | None:
    """`<experiment folder>/models/<model id>`, on the same terms as run folders."""
    path = _folder(artifact_location)
    if not path:
        return None
    folder, _, last = path.rpartition("/")
    if last != "artifacts" or folder.rpartition("/")[2] != model_id:
        return None
    return folder


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def _overlap(a: str, b: str) -> bool:
    return _within(a, b) or _within(b, a)


def _normal_root(root: str) -> str:
    return root.split("?", 1)[0].rstrip("/")


def root_is_shared(workspace: Workspace) -> bool:
    """Whether another workspace's artifact root overlaps this one's (staff can point
    roots anywhere); then the root cannot simply be emptied."""
    return len(_workspaces_sharing_root(workspace)) > 1


def _workspaces_sharing_root(workspace: Workspace) -> list[Any]:
    mine = _normal_root(workspace.artifact_root)
    return [workspace.pk] + [
        pk
        for pk, root in Workspace.objects.exclude(pk=workspace.pk).values_list(
            "pk", "artifact_root"
        )
        if _overlap(mine, _normal_root(root))
    ]


def experiment_folder_is_exclusive(experiment: Experiment) -> bool:
    """Whether the experiment's folder holds nothing of any other experiment: locations
    are chosen by clients, so two experiments may share one, or nest."""
    folder = _folder(experiment.artifact_location)
    if not folder:
        return False
    others = (
        Experiment.objects.filter(workspace_id__in=_workspaces_sharing_root(experiment.workspace))
        .exclude(pk=experiment.pk)
        .values_list("artifact_location", flat=True)
    )
    for location in others.iterator():
        other = _folder(location)
        if other is None:
            continue
        if other == "" or _overlap(folder, other):
            return False
    return True


def _delete_folders(store: ArtifactStore, folders: Iterable[str | None]) -> None:
    for folder in folders:
        if folder:  # never "" (the whole root)
            store.delete_prefix(folder)


# --- Run purge (synchronous, a page's selection) -----------------------------------------


def run_purge(*, actor: Any, workspace: Workspace, runs: Iterable[Run]) -> int:
    """Purge soft-deleted runs of this workspace for good: their stored artifacts, metric
    points and rows (and any logged model stored inside a run's folder). Returns how
    many runs were purged; runs already gone are skipped, so a repeat is harmless.

    At most RUN_PURGE_LIMIT runs per call; an experiment's worth goes through its purge
    job. Refuses active runs and runs of other workspaces before touching anything."""
    from portal.services import audit_record

    pks = {run.pk for run in runs}
    if len(pks) > RUN_PURGE_LIMIT:
        raise InvalidParameter(
            f"At most {RUN_PURGE_LIMIT} runs can be purged at once; "
            "to remove more, delete and purge their experiment."
        )
    if Run.objects.filter(pk__in=pks).exclude(workspace=workspace).exists():
        raise NotFound("Some of these runs are not in this workspace.")
    found = list(
        Run.objects.filter(workspace=workspace, pk__in=pks).values_list(
            "pk", "run_uuid", "artifact_uri", "lifecycle_stage", "name"
        )
    )
    active = [name or uuid for _, uuid, _, stage, name in found if stage != LifecycleStage.DELETED]
    if active:
        shown = ", ".join(active[:5]) + (" …" if len(active) > 5 else "")
        raise InvalidParameter(
            f"Only deleted runs can be purged; delete these first: {shown}. "
            "Purging removes a run and its artifacts for good."
        )
    if not found:
        return 0
    store = store_for(workspace)
    folders = {pk: run_artifact_folder(uuid, uri) for pk, uuid, uri, _, _ in found}
    _delete_folders(store, folders.values())
    with transaction.atomic():
        _purge_run_rows(list(folders), folders)
        audit_record(
            actor=actor,
            action="purge",
            target=workspace,
            target_type="run" if len(found) == 1 else "runs",
            target_repr=", ".join(name or uuid for _, uuid, _, _, name in found)[:300],
            changes={"runs": [uuid for _, uuid, _, _, _ in found]},
        )
    return len(found)


def _purge_run_rows(pks: list[int], folders: dict[int, str | None]) -> None:
    """Rows of these runs, and logged models whose files lived inside a run's folder
    (their files went with it)."""
    inside = [
        model_pk
        for model_pk, run_pk, location, model_id in LoggedModel.objects.filter(
            source_run_id__in=pks
        ).values_list("pk", "source_run_id", "artifact_location", "model_id")
        if folders.get(run_pk)
        and (path := logged_model_artifact_folder(model_id, location) or _folder(location))
        and _within(path, folders[run_pk])
    ]
    if inside:
        LoggedModel.objects.filter(pk__in=inside).delete()
    runs_purge(runs=Run.objects.filter(pk__in=pks))


def logged_model_purge(*, actor: Any, model: LoggedModel) -> None:
    """Remove a logged model for good: its artifact folder, then its row. Registered
    versions made from it keep their own copy of where the files were."""
    from portal.services import audit_record

    folder = logged_model_artifact_folder(model.model_id, model.artifact_location)
    if folder:
        store_for(model.workspace).delete_prefix(folder)
    with transaction.atomic():
        audit_record(actor=actor, action="purge", target=model)
        LoggedModel.objects.filter(pk=model.pk).delete()


# --- Cascades (run by deletion jobs) ---------------------------------------------------


def _runs_in_batches(
    runs: QuerySet[Run],
    *,
    store: ArtifactStore | None,
    progress: Progress,
    phase: str,
    batch_size: int,
    guard: Callable[[], None] | None = None,
) -> None:
    """Purge every run of `runs`, a batch per transaction. With a store, each run's
    folder is deleted first (when its parent folder cannot be removed in one go).
    `guard` runs before each batch and raises to stop."""
    while True:
        if guard is not None:
            guard()
        batch = list(runs.order_by("pk").values_list("pk", "run_uuid", "artifact_uri")[:batch_size])
        if not batch:
            return
        folders = {pk: run_artifact_folder(uuid, uri) for pk, uuid, uri in batch}
        if store is not None:
            _delete_folders(store, folders.values())
        with transaction.atomic():
            _purge_run_rows(list(folders), folders)
            progress(len(batch), phase)


def experiment_purge_units(experiment: Experiment) -> int:
    """How many progress units purging it takes: one per run, artifacts, the rest."""
    return Run.objects.filter(experiment=experiment).count() + 2


def experiment_purge(
    *,
    actor: Any,
    experiment: Experiment,
    progress: Progress | None = None,
    batch_size: int | None = None,
) -> None:
    """Purge a soft-deleted experiment: its stored artifacts, all its runs (batched),
    logged models, datasets and tags, then the row. Its name is free afterwards."""
    from portal.services import audit_record

    if experiment.lifecycle_stage != LifecycleStage.DELETED:
        raise InvalidParameter(
            f"Only deleted experiments can be purged; delete '{experiment.name}' first."
        )
    progress = progress or _no_progress
    batch_size = batch_size or BATCH_SIZE
    store = store_for(experiment.workspace)
    exclusive = experiment_folder_is_exclusive(experiment)
    if exclusive:
        progress(0, "Deleting stored artifacts")
        store.delete_prefix(_folder(experiment.artifact_location))
    progress(1, "Deleting runs")
    _runs_in_batches(
        Run.objects.filter(experiment=experiment),
        store=None if exclusive else store,
        progress=progress,
        phase="Deleting runs",
        batch_size=batch_size,
        guard=partial(_still_deleted, experiment),
    )
    _experiment_rows_purge(experiment, store=None if exclusive else store)
    with transaction.atomic():
        audit_record(actor=actor, action="purge", target=experiment)
        Experiment.objects.filter(pk=experiment.pk).delete()
        progress(1, "Experiment removed")


def _still_deleted(experiment: Experiment) -> None:
    """A purge stops if the experiment was restored meanwhile (pages should not offer
    that while its purge job runs, but a stop is better than purging an active one)."""
    if not Experiment.objects.filter(
        pk=experiment.pk, lifecycle_stage=LifecycleStage.DELETED
    ).exists():
        raise InvalidParameter(
            f"Experiment '{experiment.name}' was restored while it was being purged; "
            "the purge stopped."
        )


def _experiment_rows_purge(experiment: Experiment, *, store: ArtifactStore | None) -> None:
    models = LoggedModel.objects.filter(experiment=experiment)
    if store is not None:
        _delete_folders(
            store,
            (
                logged_model_artifact_folder(model_id, location)
                for model_id, location in models.values_list("model_id", "artifact_location")
            ),
        )
    models.delete()


def workspace_purge_units(workspace: Workspace) -> int:
    """Progress units of our part of a workspace purge: runs, experiments, artifacts."""
    return (
        Run.objects.filter(workspace=workspace).count()
        + Experiment.objects.filter(workspace=workspace).count()
        + 1
    )


def workspace_tracking_purge(
    *,
    workspace: Workspace,
    progress: Progress | None = None,
    batch_size: int | None = None,
) -> None:
    """Everything the tracking app holds for a workspace, for good: stored artifacts
    (the workspace's own root), runs in batches, logged models, the registry,
    evaluation datasets, experiments. The workspace row itself is the caller's."""
    progress = progress or _no_progress
    batch_size = batch_size or BATCH_SIZE
    store = store_for(workspace)
    label = workspace.name
    progress(0, f"Deleting stored artifacts of {label}")
    if not root_is_shared(workspace):
        store.delete_prefix("")
    else:
        # Emptying the root would take other workspaces' files: go folder by folder.
        for experiment in Experiment.objects.filter(workspace=workspace).iterator():
            if experiment_folder_is_exclusive(experiment):
                store.delete_prefix(_folder(experiment.artifact_location))
            else:
                _delete_folders(
                    store,
                    (
                        run_artifact_folder(uuid, uri)
                        for uuid, uri in experiment.runs.values_list("run_uuid", "artifact_uri")
                    ),
                )
                _experiment_rows_purge(experiment, store=store)
    progress(1, f"Deleting runs of {label}")
    _runs_in_batches(
        Run.objects.filter(workspace=workspace),
        store=None,
        progress=progress,
        phase=f"Deleting runs of {label}",
        batch_size=batch_size,
    )
    with transaction.atomic():
        progress(0, f"Deleting experiments and models of {label}")
        LoggedModel.objects.filter(workspace=workspace).delete()
        RegisteredModel.objects.filter(workspace=workspace).delete()
        EvaluationDataset.objects.filter(workspace=workspace).delete()
        experiments = Experiment.objects.filter(workspace=workspace)
        count = experiments.count()
        experiments.delete()
        progress(count, f"Deleting experiments and models of {label}")
