"""Compute targets, environments and snapshots: the services under remote runs."""

from __future__ import annotations

import mlflow
import pytest

from deployments import selectors
from deployments.models import ComputeTarget, Environment, RemoteJob
from deployments.services import compute, environments, snapshots, workers
from deployments.tests.factories import make_zip, stored_snapshot, submit
from portal.errors import AlreadyExists, InvalidParameter, NotFound
from portal.models import AuditEntry


@pytest.fixture(autouse=True)
def _no_messages(monkeypatch):
    from portal.services import jobs

    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: None)


# --- Compute targets ----------------------------------------------------------------------


def test_every_workspace_gets_a_local_target_on_first_listing(cast, settings):
    settings.COMPUTE_LOCAL_QUEUE = "celery"
    assert not ComputeTarget.objects.filter(workspace=cast.workspace).exists()
    targets = list(selectors.compute_target_list(workspace=cast.workspace))
    assert [t.name for t in targets] == ["local"]
    assert targets[0].queue == "celery" and targets[0].queued_count == 0
    assert list(selectors.compute_target_list(workspace=cast.workspace)) == targets  # once
    assert AuditEntry.objects.filter(action="create", target_type="compute target").count() == 1


def test_targets_are_created_named_updated_and_deleted_with_audit(cast):
    target = compute.compute_target_create(
        actor=cast.owner, workspace=cast.workspace, name="cpu-cluster", max_nodes=4
    )
    assert target.queue == f"compute-{target.pk}"
    with pytest.raises(AlreadyExists):
        compute.compute_target_create(
            actor=cast.owner, workspace=cast.workspace, name="CPU-Cluster"
        )
    with pytest.raises(AlreadyExists):
        compute.compute_target_create(actor=cast.owner, workspace=cast.workspace, name="Local")
    for bad in ("x", "1abc", "a" * 25, "has space", "under_score"):
        with pytest.raises(InvalidParameter, match="letters, digits and hyphens"):
            compute.compute_target_create(actor=cast.owner, workspace=cast.workspace, name=bad)
    for bad in (0, 101, "4"):
        with pytest.raises(InvalidParameter, match="max_nodes"):
            compute.compute_target_create(
                actor=cast.owner, workspace=cast.workspace, name="gpu", max_nodes=bad
            )
    target = compute.compute_target_update(
        actor=cast.owner, target=target, max_nodes=8, description="CPUs"
    )
    assert (target.max_nodes, target.description) == (8, "CPUs")
    assert compute.compute_target_get(workspace=cast.workspace, name="CPU-CLUSTER") == target
    compute.compute_target_delete(actor=cast.owner, target=target)
    with pytest.raises(NotFound):
        compute.compute_target_get(workspace=cast.workspace, name="cpu-cluster")
    actions = list(
        AuditEntry.objects.filter(target_type="compute target", target_repr="cpu-cluster")
        .order_by("timestamp", "id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "delete"]
    local = compute.compute_target_local(workspace=cast.workspace)
    with pytest.raises(InvalidParameter, match="cannot be deleted"):
        compute.compute_target_delete(actor=cast.owner, target=local)


def test_a_target_with_unfinished_jobs_cannot_be_deleted(cast):
    target = compute.compute_target_create(
        actor=cast.owner, workspace=cast.workspace, name="gpu", max_nodes=1
    )
    job = submit(cast, compute_name="gpu")
    with pytest.raises(InvalidParameter, match="1 unfinished job"):
        compute.compute_target_delete(actor=cast.owner, target=target)
    RemoteJob.objects.filter(pk=job.pk).update(status="failed", stage="failed")
    compute.compute_target_delete(actor=cast.owner, target=target)
    job.refresh_from_db()
    assert job.compute_target is None and job.compute_name == "gpu"  # history keeps it


def test_worker_heartbeats_show_on_the_listing_with_job_counts(cast):
    target = compute.compute_target_create(
        actor=cast.owner, workspace=cast.workspace, name="gpu", max_nodes=2
    )
    token, _ = workers.worker_token_create(actor=cast.owner, target=target, name="gpu")
    studio, _ = workers.worker_token_create(actor=None, target=None, name="studio")
    workers.compute_worker_heartbeat(token=token, hostname="node-1", slots=2, version="1")
    workers.compute_worker_heartbeat(token=token, hostname="node-1", slots=3, version="2")
    workers.compute_worker_heartbeat(token=studio, hostname="studio-host")
    submit(cast, compute_name="gpu")
    submit(cast, compute_name="gpu")
    listed = {t.name: t for t in selectors.compute_target_list(workspace=cast.workspace)}
    gpu = listed["gpu"]
    assert (gpu.queued_count, gpu.running_count) == (2, 0)
    assert [(w.hostname, w.slots, w.version) for w in gpu.recent_workers] == [("node-1", 3, "2")]
    # The studio's own worker is listed with `local` (of every workspace).
    assert [w.hostname for w in listed["local"].recent_workers] == ["studio-host"]
    with pytest.raises(InvalidParameter, match="slots"):
        workers.compute_worker_heartbeat(token=token, hostname="x", slots="many")


# --- Environments -------------------------------------------------------------------------


def test_a_new_version_only_when_the_spec_changes(cast):
    def register(**spec):
        return environments.environment_register(
            actor=cast.owner, workspace=cast.workspace, name="mlflow-env", **spec
        )

    first = register(pip_packages=["mlflow", "scikit-learn"])
    assert first.version == 1
    # The same spec, written differently (order, case, duplicates): the same version.
    assert register(pip_packages=["Scikit_Learn", "mlflow", "mlflow"]).pk == first.pk
    second = register(pip_packages=["mlflow", "scikit-learn"], env_vars={"A": "1"})
    assert second.version == 2
    third = register(pip_packages=["mlflow"], python_version="3.11")
    assert third.version == 3 and third.python_version == "3.11"
    assert environments.environment_get(workspace=cast.workspace, name="mlflow-env") == third
    assert (
        environments.environment_get(workspace=cast.workspace, name="mlflow-env", version=1)
        == first
    )
    with pytest.raises(NotFound, match="version 9"):
        environments.environment_get(workspace=cast.workspace, name="mlflow-env", version=9)
    assert AuditEntry.objects.filter(action="create", target_type="environment").count() == 3


def test_invalid_specs_and_reserved_names_are_refused_clearly(cast):
    def register(name="env", **spec):
        return environments.environment_register(
            actor=cast.owner, workspace=cast.workspace, name=name, **spec
        )

    with pytest.raises(InvalidParameter, match="options are not allowed"):
        register(pip_packages=["--index-url=https://evil"])
    with pytest.raises(InvalidParameter, match="not a Python version"):
        register(python_version="2.7")
    with pytest.raises(InvalidParameter, match="environment variable name"):
        register(env_vars={"1BAD": "x"})
    with pytest.raises(InvalidParameter, match="reserved"):
        register(name="mlstudio-mine")
    with pytest.raises(InvalidParameter, match="Invalid environment name"):
        register(name="has space")
    assert not Environment.objects.exists()


def test_curated_environments_exist_in_every_workspace(cast):
    names = {e["name"]: e for e in environments.environment_names(workspace=cast.workspace)}
    assert names["mlstudio-sklearn"]["curated"] and names["mlstudio-minimal"]["curated"]
    env = environments.environment_get(workspace=cast.workspace, name="mlstudio-sklearn")
    assert env.version == 1 and env.created_by is None
    assert env.pip_packages == [f"mlflow=={mlflow.__version__}", "scikit-learn"]
    assert environments.environment_get(workspace=cast.workspace, name="mlstudio-sklearn") == env
    other = environments.environment_get(workspace=cast.other_workspace, name="mlstudio-sklearn")
    assert other.workspace_id == cast.other_workspace.pk and other.spec_hash == env.spec_hash


# --- Snapshots ----------------------------------------------------------------------------


def test_snapshots_are_stored_once_by_content_and_list_their_files(cast):
    data = make_zip({"train.py": "print(1)\n", "lib/util.py": "x = 1\n"})
    first = snapshots.snapshot_store(actor=cast.owner, workspace=cast.workspace, source=data)
    assert first["stored"] and first["files"] == 2 and len(first["hash"]) == 64
    import io

    again = snapshots.snapshot_store(
        actor=cast.owner, workspace=cast.workspace, source=io.BytesIO(data)
    )
    assert again["hash"] == first["hash"] and not again["stored"]
    files = snapshots.snapshot_files(workspace=cast.workspace, snapshot_hash=first["hash"])
    assert files == [{"path": "train.py", "size": 9}, {"path": "lib/util.py", "size": 6}]
    assert AuditEntry.objects.filter(action="snapshot_upload").count() == 1
    with pytest.raises(NotFound):
        snapshots.snapshot_files(workspace=cast.other_workspace, snapshot_hash=first["hash"])


def test_a_zip_no_worker_would_unpack_is_refused_before_it_is_stored(cast):
    with pytest.raises(InvalidParameter, match="not a readable zip"):
        snapshots.snapshot_store(actor=cast.owner, workspace=cast.workspace, source=b"not a zip")
    with pytest.raises(InvalidParameter, match="path leaves the snapshot"):
        snapshots.snapshot_store(
            actor=cast.owner, workspace=cast.workspace, source=make_zip({"../evil.py": "x"})
        )
    from tracking.artifacts import store_for

    assert not store_for(cast.workspace).exists("snapshots")
    with pytest.raises(InvalidParameter, match="64 lowercase"):
        snapshots.snapshot_files(workspace=cast.workspace, snapshot_hash="../../etc")
    assert len(stored_snapshot(cast)) == 64
