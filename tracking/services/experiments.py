"""Experiment writes: create, rename, delete/restore, tags.

Creates, renames, deletes and restores take the acting user (`actor`, None for the
system) and write their audit entry in their own transaction, so every door (pages,
/api/v1, the MLflow protocol, the admin) is audited the same way. A call that changes
nothing (deleting a deleted experiment) writes none. Tags are not audited."""

from __future__ import annotations

import time
from urllib.parse import unquote

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from mlflow.utils.validation import (
    _validate_experiment_name,
    _validate_experiment_tag,
)

from portal.errors import AlreadyExists, InvalidParameter, NotFound
from portal.models import Workspace
from portal.services import audit_record
from tracking.models import Experiment, ExperimentTag, LifecycleStage, Run
from tracking.selectors.core import mlflow_experiment_id
from tracking.selectors.purge import experiment_purge_job

DEFAULT_EXPERIMENT_NAME = "Default"
ARTIFACT_SCHEME = "mlflow-artifacts:"


def now_ms() -> int:
    return int(time.time() * 1000)


def validate_workspace_artifact_uri(uri: str, what: str = "artifact_location") -> str:
    """Only locations inside the workspace's own artifact store are accepted: the proxied
    `mlflow-artifacts:/<relative path>` form. Clients cannot point at file://, other
    hosts or a path that climbs out."""
    if not uri.startswith(ARTIFACT_SCHEME + "/") or uri.startswith(ARTIFACT_SCHEME + "//"):
        raise InvalidParameter(
            f"{what} must be an 'mlflow-artifacts:/...' location inside this workspace; "
            f"got '{uri[:200]}'."
        )
    path = uri[len(ARTIFACT_SCHEME) :]
    decoded = path
    for _ in range(5):
        step = unquote(decoded)
        if step == decoded:
            break
        decoded = step
    parts = decoded.split("/")
    if "\\" in decoded or any(p in ("..", ".") for p in parts) or "\x00" in decoded:
        raise InvalidParameter(f"{what} must not contain '..', '.', or backslashes.")
    return uri.rstrip("/")


def experiment_create(
    *,
    workspace: Workspace,
    name: str,
    artifact_location: str = "",
    tags: list[tuple[str, str]] | None = None,
    actor: AbstractBaseUser | None,
) -> Experiment:
    _validate_experiment_name(name)
    for key, value in tags or []:
        _validate_experiment_tag(key, value)
    if artifact_location:
        artifact_location = validate_workspace_artifact_uri(artifact_location)
    now = now_ms()
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                workspace=workspace,
                name=name,
                artifact_location=artifact_location or "pending",
                creation_time=now,
                last_update_time=now,
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
            if not artifact_location:
                experiment.artifact_location = f"{ARTIFACT_SCHEME}/{experiment.pk}"
                experiment.save(update_fields=["artifact_location"])
            if tags:
                ExperimentTag.objects.bulk_create(
                    [ExperimentTag(experiment=experiment, key=k, value=v) for k, v in tags]
                )
            audit_record(actor=actor, action="create", target=experiment)
    except IntegrityError:
        raise AlreadyExists(f"Experiment(name={name}) already exists.") from None
    return experiment


def default_experiment_create(
    *, workspace: Workspace, actor: AbstractBaseUser | None
) -> Experiment:
    """The workspace's "Default" experiment (MLflow's id 0), made with the workspace, as
    `mlflow server` has experiment 0 from its start. Idempotent: a workspace that has
    one keeps it; one that has an experiment of that name (from before there was a
    default) takes it as its default."""
    with transaction.atomic():
        existing = Experiment.objects.filter(workspace=workspace, is_default=True).first()
        if existing is not None:
            return existing
        named = (
            Experiment.objects.select_for_update()
            .filter(workspace=workspace, name=DEFAULT_EXPERIMENT_NAME)
            .first()
        )
        if named is not None:
            named.is_default = True
            named.save(update_fields=["is_default"])
            return named
        experiment = experiment_create(
            workspace=workspace, name=DEFAULT_EXPERIMENT_NAME, actor=actor
        )
        experiment.is_default = True
        experiment.save(update_fields=["is_default"])
        return experiment


def default_experiment(*, workspace: Workspace) -> Experiment:
    """The workspace's "Default" experiment, which MLflow clients call id 0. Every
    workspace gets one when it is made; one whose default was purged gets a new one on
    first use (as `mlflow server` makes experiment 0 again when it starts without it)."""
    experiment = Experiment.objects.filter(workspace=workspace, is_default=True).first()
    if experiment is not None:
        return experiment
    try:
        # Made by the system rather than whoever happened to ask for it.
        return default_experiment_create(workspace=workspace, actor=None)
    except (AlreadyExists, IntegrityError):
        return Experiment.objects.get(workspace=workspace, is_default=True)


def on_workspace_created(*, workspace: Workspace, actor: AbstractBaseUser | None) -> None:
    """Portal's `workspace_created` hook: the new workspace's Default experiment."""
    default_experiment_create(workspace=workspace, actor=None)


def _require_active(experiment: Experiment) -> None:
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameter(
            f"The experiment {mlflow_experiment_id(experiment)} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )


def experiment_rename(
    *, experiment: Experiment, new_name: str, actor: AbstractBaseUser | None
) -> Experiment:
    _validate_experiment_name(new_name)
    _require_active(experiment)
    old = experiment.name
    try:
        with transaction.atomic():
            experiment.name = new_name
            experiment.last_update_time = now_ms()
            experiment.save(update_fields=["name", "last_update_time"])
            if new_name != old:
                audit_record(
                    actor=actor,
                    action="rename",
                    target=experiment,
                    changes={"name": [old, new_name]},
                )
    except IntegrityError:
        raise AlreadyExists(f"Experiment(name={new_name}) already exists.") from None
    return experiment


@transaction.atomic
def experiment_delete(*, experiment: Experiment, actor: AbstractBaseUser | None) -> Experiment:
    """Soft delete: the experiment and its runs move to the deleted stage (restorable)."""
    if experiment.lifecycle_stage == LifecycleStage.DELETED:
        return experiment
    stamp = timezone.now()
    experiment.lifecycle_stage = LifecycleStage.DELETED
    experiment.deleted_at = stamp
    experiment.last_update_time = now_ms()
    experiment.save(update_fields=["lifecycle_stage", "deleted_at", "last_update_time"])
    Run.objects.filter(experiment=experiment, lifecycle_stage=LifecycleStage.ACTIVE).update(
        lifecycle_stage=LifecycleStage.DELETED, deleted_at=stamp
    )
    audit_record(actor=actor, action="delete", target=experiment)
    return experiment


@transaction.atomic
def experiment_restore(*, experiment: Experiment, actor: AbstractBaseUser | None) -> Experiment:
    """Restores the experiment and the runs that were deleted with it."""
    if experiment.lifecycle_stage == LifecycleStage.ACTIVE:
        return experiment
    refuse_restore_while_purging(experiment.pk)
    stamp = experiment.deleted_at
    experiment.lifecycle_stage = LifecycleStage.ACTIVE
    experiment.deleted_at = None
    experiment.last_update_time = now_ms()
    experiment.save(update_fields=["lifecycle_stage", "deleted_at", "last_update_time"])
    runs = Run.objects.filter(experiment=experiment, lifecycle_stage=LifecycleStage.DELETED)
    if stamp is not None:
        runs = runs.filter(deleted_at__gte=stamp)
    runs.update(lifecycle_stage=LifecycleStage.ACTIVE, deleted_at=None)
    audit_record(actor=actor, action="restore", target=experiment)
    return experiment


def refuse_restore_while_purging(experiment_id: int) -> None:
    """A purge job may already have removed files; restoring would bring back a husk."""
    if experiment_purge_job(experiment_id=experiment_id) is not None:
        raise InvalidParameter(
            f"The experiment {experiment_id} is being purged and can no longer be restored."
        )


def experiment_set_tag(*, experiment: Experiment, key: str, value: str) -> None:
    _validate_experiment_tag(key, value)
    _require_active(experiment)
    ExperimentTag.objects.update_or_create(
        experiment=experiment, key=key, defaults={"value": value}
    )


def experiment_delete_tag(*, experiment: Experiment, key: str) -> None:
    _require_active(experiment)
    deleted, _ = ExperimentTag.objects.filter(experiment=experiment, key=key).delete()
    if not deleted:
        raise NotFound(
            f"No tag with name: {key} in experiment with id {mlflow_experiment_id(experiment)}"
        )
