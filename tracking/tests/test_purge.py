"""Permanent removal of tracking data: rows, metric points and stored artifacts.

`populate` builds an experiment with everything a run can log (also used by the
deletion job tests in tests/test_deletion.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection

from portal.errors import InvalidParameter, NotFound
from portal.models import AuditEntry
from tracking.artifacts import store_for
from tracking.models import (
    Dataset,
    Experiment,
    ExperimentTag,
    LatestMetric,
    LoggedModel,
    MetricPoint,
    ModelVersion,
    Param,
    RegisteredModel,
    Run,
    RunInput,
    RunTag,
)
from tracking.services import purge
from tracking.services.datasets import run_log_inputs
from tracking.services.experiments import experiment_create, experiment_delete
from tracking.services.logged_models import logged_model_create
from tracking.services.registry import model_version_create, registered_model_create
from tracking.services.runs import MetricIn, run_create, run_delete, run_log_batch

pytest_plugins = ["tracking.tests.azurite"]


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    """Workspaces created by the test get their artifact roots under tmp_path."""
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")


@dataclass
class Populated:
    experiment: Experiment
    runs: list[Run]
    model: LoggedModel
    run_files: list[str]  # artifact paths (relative to the workspace root) of each run
    model_file: str


def populate(workspace, name: str, runs: int = 3, points: int = 20) -> Populated:
    """An experiment whose runs logged params, tags, metric points, a dataset and an
    artifact file each, plus a logged model with a file and a registered version."""
    experiment = experiment_create(
        workspace=workspace, name=name, tags=[("team", "vision")], actor=None
    )
    store = store_for(workspace)
    made, files = [], []
    for i in range(runs):
        run = run_create(workspace=workspace, experiment=experiment, user_id="u", start_time=i)
        run_log_batch(
            run=run,
            metrics=[MetricIn("loss", float(p), False, 1, p) for p in range(points)],
            params=[("alpha", str(i))],
            tags=[("kind", "test")],
        )
        run_log_inputs(
            run=run,
            dataset_inputs=[
                {
                    "dataset": {
                        "name": "iris",
                        "digest": "abc",
                        "source_type": "local",
                        "source": "{}",
                    }
                }
            ],
        )
        path = f"{experiment.pk}/{run.run_uuid}/artifacts/notes/readme.txt"
        store.write(path, [f"run {i}".encode()])
        made.append(run)
        files.append(path)
    model = logged_model_create(
        workspace=workspace,
        experiment_id=str(experiment.pk),
        name="model",
        source_run_id=made[0].run_uuid,
    )
    model_file = f"{experiment.pk}/models/{model.model_id}/artifacts/MLmodel"
    store.write(model_file, [b"flavors: {}"])
    registered_model_create(workspace=workspace, name=f"{name}-registered", actor=None)
    model_version_create(
        workspace=workspace,
        name=f"{name}-registered",
        source=model.artifact_location,
        model_id=model.model_id,
    )
    return Populated(experiment, made, model, files, model_file)


def points_of(runs) -> int:
    return MetricPoint.objects.filter(series__run__in=runs).count()


def all_points() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM tracking_metricpoint")
        return cursor.fetchone()[0]


def _run_with_points(workspace, name: str, points: int = 50) -> Run:
    experiment = experiment_create(workspace=workspace, name=name, actor=None)
    run = run_create(workspace=workspace, experiment=experiment, user_id="u", start_time=1)
    metrics = [MetricIn("loss", float(i), False, 1, i) for i in range(points)]
    run_log_batch(run=run, metrics=metrics)
    return run


# --- Bulk row removal ----------------------------------------------------------------------


def test_runs_purge_removes_points_and_rows(cast):
    keep = _run_with_points(cast.workspace, "keep")
    gone = _run_with_points(cast.workspace, "gone")
    purge.runs_purge(runs=Run.objects.filter(pk=gone.pk))
    assert not Run.objects.filter(pk=gone.pk).exists()
    assert all_points() == 50
    assert MetricPoint.objects.filter(series__run=keep).count() == 50


# --- Run purge ------------------------------------------------------------------------------


def test_run_purge_removes_rows_points_and_stored_files(cast, backend):
    data = populate(cast.workspace, "exp")
    other = populate(cast.other_workspace, "exp")
    store = store_for(cast.workspace)
    gone, kept = data.runs[:2], data.runs[2:]
    for run in gone:
        run_delete(run=run, actor=None)

    purged = purge.run_purge(actor=cast.owner, workspace=cast.workspace, runs=gone)

    assert purged == 2
    assert not Run.objects.filter(pk__in=[r.pk for r in gone]).exists()
    for model in (Param, RunTag, LatestMetric, RunInput):
        assert not model.objects.filter(run__in=[r.pk for r in gone]).exists()
    assert points_of(gone) == 0
    assert points_of(kept) == 20
    assert not any(store.exists(path) for path in data.run_files[:2])
    assert not store.exists(data.run_files[0].rsplit("/artifacts/", 1)[0])  # the run folder
    assert store.exists(data.run_files[2])
    # The logged model lives in the experiment's folder, not the run's: it stays,
    # detached from the purged run, as mlflow gc leaves it.
    data.model.refresh_from_db()
    assert data.model.source_run_id is None
    assert store.exists(data.model_file)
    other_store = store_for(cast.other_workspace)
    assert all(other_store.exists(path) for path in other.run_files)
    assert points_of(other.runs) == 60


def test_run_purge_refuses_active_runs_and_touches_nothing(cast):
    data = populate(cast.workspace, "exp")
    run_delete(run=data.runs[0], actor=None)
    with pytest.raises(InvalidParameter, match="Only deleted runs can be purged"):
        purge.run_purge(actor=cast.owner, workspace=cast.workspace, runs=data.runs[:2])
    assert Run.objects.filter(pk__in=[r.pk for r in data.runs]).count() == 3
    assert store_for(cast.workspace).exists(data.run_files[0])


def test_run_purge_is_idempotent_and_audited(cast):
    data = populate(cast.workspace, "exp")
    run = data.runs[0]
    run_delete(run=run, actor=None)
    assert purge.run_purge(actor=cast.owner, workspace=cast.workspace, runs=[run]) == 1
    assert purge.run_purge(actor=cast.owner, workspace=cast.workspace, runs=[run]) == 0
    entries = AuditEntry.objects.filter(action="purge", workspace_id=cast.workspace.id)
    assert entries.count() == 1
    entry = entries.get()
    assert entry.actor == cast.owner
    assert entry.target_type == "run"
    assert entry.changes == {"runs": [run.run_uuid]}


def test_run_purge_after_a_crash_between_files_and_rows_finishes(cast, monkeypatch):
    data = populate(cast.workspace, "exp")
    run = data.runs[0]
    run_delete(run=run, actor=None)

    def crash(*args, **kwargs):
        raise RuntimeError("worker died")

    with monkeypatch.context() as patched:
        patched.setattr(purge, "_purge_run_rows", crash)
        with pytest.raises(RuntimeError):
            purge.run_purge(actor=cast.owner, workspace=cast.workspace, runs=[run])
    assert Run.objects.filter(pk=run.pk).exists()  # files went first, rows stayed
    assert not store_for(cast.workspace).exists(data.run_files[0])

    assert purge.run_purge(actor=cast.owner, workspace=cast.workspace, runs=[run]) == 1
    assert not Run.objects.filter(pk=run.pk).exists()


def test_run_purge_refuses_runs_of_another_workspace(cast):
    other = populate(cast.other_workspace, "exp")
    run_delete(run=other.runs[0], actor=None)
    with pytest.raises(NotFound):
        purge.run_purge(actor=cast.owner, workspace=cast.workspace, runs=[other.runs[0]])
    assert Run.objects.filter(pk=other.runs[0].pk).exists()


def test_run_purge_has_a_limit(cast, monkeypatch):
    monkeypatch.setattr(purge, "RUN_PURGE_LIMIT", 2)
    data = populate(cast.workspace, "exp")
    for run in data.runs:
        run_delete(run=run, actor=None)
    with pytest.raises(InvalidParameter, match="At most 2 runs"):
        purge.run_purge(actor=cast.owner, workspace=cast.workspace, runs=data.runs)
    assert Run.objects.filter(experiment=data.experiment).count() == 3


# --- Experiment purge -----------------------------------------------------------------------


def test_experiment_purge_removes_everything_and_frees_the_name(cast, backend, monkeypatch):
    monkeypatch.setattr(purge, "BATCH_SIZE", 2)  # several batches
    data = populate(cast.workspace, "exp", runs=5)
    keep = populate(cast.workspace, "keep")
    experiment_delete(experiment=data.experiment, actor=None)
    progress = []

    purge.experiment_purge(
        actor=cast.owner,
        experiment=data.experiment,
        progress=lambda done, phase: progress.append((done, phase)),
    )

    store = store_for(cast.workspace)
    assert not Experiment.objects.filter(pk=data.experiment.pk).exists()
    assert not Run.objects.filter(experiment_id=data.experiment.pk).exists()
    assert not LoggedModel.objects.filter(pk=data.model.pk).exists()
    assert not Dataset.objects.filter(experiment_id=data.experiment.pk).exists()
    assert not ExperimentTag.objects.filter(experiment_id=data.experiment.pk).exists()
    assert points_of(data.runs) == 0
    assert not store.exists(str(data.experiment.pk))
    assert not store.exists(data.model_file)
    assert all(store.exists(path) for path in [*keep.run_files, keep.model_file])
    assert points_of(keep.runs) == 60
    assert sum(done for done, _ in progress) == 5 + 2  # one per run, artifacts, the row
    assert AuditEntry.objects.filter(action="purge", target_repr="exp").exists()
    experiment_create(workspace=cast.workspace, name="exp", actor=None)  # the name is free again


def test_experiment_purge_refuses_an_active_experiment(cast):
    data = populate(cast.workspace, "exp")
    with pytest.raises(InvalidParameter, match="Only deleted experiments"):
        purge.experiment_purge(actor=cast.owner, experiment=data.experiment)
    assert Run.objects.filter(experiment=data.experiment).count() == 3


def test_experiment_purge_keeps_files_of_an_experiment_sharing_its_location(cast):
    store = store_for(cast.workspace)
    shared = "mlflow-artifacts:/shared"
    first = experiment_create(
        workspace=cast.workspace, name="a", artifact_location=shared, actor=None
    )
    second = experiment_create(
        workspace=cast.workspace, name="b", artifact_location=shared, actor=None
    )
    runs = {}
    for experiment in (first, second):
        run = run_create(workspace=cast.workspace, experiment=experiment, user_id="u", start_time=1)
        store.write(f"shared/{run.run_uuid}/artifacts/f.txt", [b"x"])
        runs[experiment.name] = run
    experiment_delete(experiment=first, actor=None)

    purge.experiment_purge(actor=cast.owner, experiment=first)

    assert not store.exists(f"shared/{runs['a'].run_uuid}")
    assert store.exists(f"shared/{runs['b'].run_uuid}/artifacts/f.txt")


def test_run_folder_is_derived_only_from_the_usual_shape():
    uuid = "a" * 32
    assert purge.run_artifact_folder(uuid, f"mlflow-artifacts:/7/{uuid}/artifacts") == f"7/{uuid}"
    assert purge.run_artifact_folder(uuid, "mlflow-artifacts:/7/artifacts") is None
    assert purge.run_artifact_folder(uuid, f"file:///etc/{uuid}/artifacts") is None
    assert purge.run_artifact_folder(uuid, "") is None


# --- Workspace contents -----------------------------------------------------------------------


def test_workspace_tracking_purge_empties_the_workspace_only(cast, backend):
    mine = populate(cast.workspace, "exp")
    other = populate(cast.other_workspace, "exp")
    purge.workspace_tracking_purge(workspace=cast.workspace)
    assert not Experiment.objects.filter(workspace=cast.workspace).exists()
    assert not Run.objects.filter(workspace=cast.workspace).exists()
    assert not RegisteredModel.objects.filter(workspace=cast.workspace).exists()
    assert not ModelVersion.objects.filter(registered_model__workspace=cast.workspace).exists()
    assert points_of(mine.runs) == 0
    assert store_for(cast.workspace).list("") == []
    assert all(store_for(cast.other_workspace).exists(p) for p in other.run_files)
    assert Run.objects.filter(workspace=cast.other_workspace).count() == 3


def test_a_workspace_sharing_its_root_is_purged_folder_by_folder(cast):
    cast.other_workspace.artifact_root = cast.workspace.artifact_root
    cast.other_workspace.save(update_fields=["artifact_root"])
    mine = populate(cast.workspace, "exp")
    other = populate(cast.other_workspace, "exp2")
    purge.workspace_tracking_purge(workspace=cast.workspace)
    store = store_for(cast.other_workspace)
    assert not any(store.exists(p) for p in [*mine.run_files, mine.model_file])
    assert all(store.exists(p) for p in [*other.run_files, other.model_file])


# --- Admin console ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_admin_deleting_a_workspace_takes_its_points_and_files(cast, client, django_user_model):
    _run_with_points(cast.other_workspace, "other")
    data = populate(cast.workspace, "mine")
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        f"/admin/portal/workspace/{cast.workspace.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not Run.objects.filter(workspace=cast.workspace).exists()
    assert all_points() == 50  # the other workspace's points stay
    assert not store_for(cast.workspace).exists(data.run_files[0])
    assert AuditEntry.objects.filter(action="delete", target_id=str(cast.workspace.pk)).exists()


def test_admin_deleting_a_run_purges_its_files(cast, client, django_user_model):
    data = populate(cast.workspace, "mine")
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    run = data.runs[0]
    response = client.post(f"/admin/tracking/run/{run.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert not Run.objects.filter(pk=run.pk).exists()
    assert points_of([run]) == 0
    assert not store_for(cast.workspace).exists(data.run_files[0])
    assert store_for(cast.workspace).exists(data.run_files[1])


def test_admin_deleting_an_experiment_purges_it(cast, client, django_user_model):
    data = populate(cast.workspace, "mine")
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        f"/admin/tracking/experiment/{data.experiment.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not Experiment.objects.filter(pk=data.experiment.pk).exists()
    assert not store_for(cast.workspace).exists(data.model_file)
