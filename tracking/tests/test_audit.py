"""Every door audits the same way: the services write the audit entry, so a delete or a
restore made from a page, from /api/v1 or with the MLflow client leaves exactly one
entry naming who did what to which object."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from portal.errors import InvalidParameter
from portal.models import AuditEntry
from portal.selectors import tracking_uri
from portal.tests.api import api
from tracking.models import Experiment, LifecycleStage, RegisteredModel, Run
from tracking.services import experiments as experiment_services
from tracking.services import registry
from tracking.services import runs as run_services
from tracking.services.logged_models import logged_model_create
from tracking.tests import api_v1
from tracking.tests.factories import make_experiment, make_run
from tracking.views.common import ws_kwargs

pytestmark = pytest.mark.django_db

ACTOR = "contributor"


# --- What is acted on, set up by the system (actor=None) ------------------------------------


def _experiment(cast) -> Experiment:
    return make_experiment(cast.workspace, "churn")


def _deleted_experiment(cast) -> Experiment:
    return experiment_services.experiment_delete(experiment=_experiment(cast), actor=None)


def _run(cast) -> Run:
    return make_run(_experiment(cast), "rf-1")


def _deleted_run(cast) -> Run:
    return run_services.run_delete(run=_run(cast), actor=None)


def _registered_model(cast) -> RegisteredModel:
    return registry.registered_model_create(
        workspace=cast.workspace, name="churn-model", actor=None
    )


# --- The doors: each acts as the contributor through a client made beforehand (a token
# is audited when it is made) ---------------------------------------------------------------


def _client(cast, door: str) -> Client:
    if door == "page":
        client = Client()
        client.force_login(cast.user(ACTOR))
        return client
    return api(cast, ACTOR)  # a Bearer token: /api/v1 and the MLflow protocol take it


def _page(client: Client, cast, view: str, body: dict, **extra) -> None:
    response = client.post(reverse(view, kwargs={**ws_kwargs(cast.workspace), **extra}), body)
    assert response.status_code == 302, response.content[:500]


def _api_v1(client: Client, cast, method: str, view: str, **extra) -> None:
    response = getattr(client, method)(api_v1.url(cast, view, **extra))
    assert response.status_code == 200, response.content[:500]


def mlflow_call(client: Client, cast, method: str, path: str, body: dict):
    """The MLflow REST protocol under the workspace's tracking URI."""
    url = f"{tracking_uri(cast.workspace, '')}/api/2.0/mlflow/{path}"
    return client.generic(method, url, json.dumps(body), content_type="application/json")


def _mlflow(client: Client, cast, method: str, path: str, body: dict) -> None:
    response = mlflow_call(client, cast, method, path, body)
    assert response.status_code == 200, response.content[:500]


Door = Callable[[Client, object, Model], None]


@dataclass(frozen=True)
class Action:
    setup: Callable[[object], Model]
    audit: str  # the audit entry's action
    doors: dict[str, Door]


ACTIONS = {
    "experiment delete": Action(
        _experiment,
        "delete",
        {
            "page": lambda c, cast, exp: _page(
                c, cast, "experiment-action", {"action": "delete"}, experiment_id=exp.pk
            ),
            "api": lambda c, cast, exp: _api_v1(
                c, cast, "delete", "api-experiment", experiment_id=exp.pk
            ),
            "mlflow": lambda c, cast, exp: _mlflow(
                c, cast, "POST", "experiments/delete", {"experiment_id": str(exp.pk)}
            ),
        },
    ),
    "experiment restore": Action(
        _deleted_experiment,
        "restore",
        {
            "page": lambda c, cast, exp: _page(
                c, cast, "experiment-action", {"action": "restore"}, experiment_id=exp.pk
            ),
            "api": lambda c, cast, exp: _api_v1(
                c, cast, "post", "api-experiment-restore", experiment_id=exp.pk
            ),
            "mlflow": lambda c, cast, exp: _mlflow(
                c, cast, "POST", "experiments/restore", {"experiment_id": str(exp.pk)}
            ),
        },
    ),
    "run delete": Action(
        _run,
        "delete",
        {
            "page": lambda c, cast, run: _page(
                c, cast, "run-action", {"action": "delete", "run_ids": [run.run_uuid]}
            ),
            "api": lambda c, cast, run: _api_v1(c, cast, "delete", "api-run", run_id=run.run_uuid),
            "mlflow": lambda c, cast, run: _mlflow(
                c, cast, "POST", "runs/delete", {"run_id": run.run_uuid}
            ),
        },
    ),
    "run restore": Action(
        _deleted_run,
        "restore",
        {
            "page": lambda c, cast, run: _page(
                c, cast, "run-action", {"action": "restore", "run_ids": [run.run_uuid]}
            ),
            "api": lambda c, cast, run: _api_v1(
                c, cast, "post", "api-run-restore", run_id=run.run_uuid
            ),
            "mlflow": lambda c, cast, run: _mlflow(
                c, cast, "POST", "runs/restore", {"run_id": run.run_uuid}
            ),
        },
    ),
    # /api/v1 has no registry endpoints.
    "registered model delete": Action(
        _registered_model,
        "delete",
        {
            "page": lambda c, cast, model: _page(c, cast, "model-delete", {}, name=model.name),
            "mlflow": lambda c, cast, model: _mlflow(
                c, cast, "DELETE", "registered-models/delete", {"name": model.name}
            ),
        },
    ),
}

CASES = [
    pytest.param(name, door, id=f"{name}-{door}")
    for name, action in ACTIONS.items()
    for door in action.doors
]


@pytest.mark.parametrize(("name", "door"), CASES)
def test_every_door_leaves_one_audit_entry(cast, settings, tmp_path, name, door):
    api_v1.isolate(settings, tmp_path)
    action = ACTIONS[name]
    target = action.setup(cast)
    client = _client(cast, door)
    before = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    action.doors[door](client, cast, target)

    entries = list(AuditEntry.objects.filter(pk__gt=before))
    assert len(entries) == 1, [str(e) for e in entries]
    entry = entries[0]
    assert (entry.action, entry.actor, entry.actor_name) == (
        action.audit,
        cast.contributor,
        cast.contributor.get_username(),
    )
    assert (entry.target_type, entry.target_id, entry.target_repr) == (
        target._meta.verbose_name,
        str(target.pk),
        str(target),
    )
    assert entry.workspace_id == cast.workspace.pk


@pytest.mark.parametrize("door", ["api", "mlflow"])
def test_asking_twice_changes_nothing_and_logs_once(cast, settings, tmp_path, door):
    api_v1.isolate(settings, tmp_path)
    experiment = _experiment(cast)
    client = _client(cast, door)
    for _ in range(2):
        ACTIONS["experiment delete"].doors[door](client, cast, experiment)
    assert AuditEntry.objects.filter(action="delete", target_id=str(experiment.pk)).count() == 1


def test_a_deleted_model_version_is_audited_in_its_workspace(cast):
    run = _run(cast)
    model = _registered_model(cast)
    registry.model_version_create(
        workspace=cast.workspace,
        name=model.name,
        source=f"runs:/{run.run_uuid}/model",
        run_id=run.run_uuid,
    )
    client = _client(cast, "mlflow")
    body = {"name": model.name, "version": "1"}
    _mlflow(client, cast, "DELETE", "model-versions/delete", body)
    entry = AuditEntry.objects.get(action="delete", target_type="model version")
    assert (entry.actor, entry.target_repr) == (cast.contributor, "churn-model v1")
    assert entry.workspace_id == cast.workspace.pk


# --- Services: the entry is part of the change --------------------------------------------------


def test_the_entry_commits_with_the_change(cast, monkeypatch):
    """The entry is written in the service's transaction: if it cannot be written, the
    change is not made either."""
    experiment = _run(cast).experiment

    def broken(**kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(experiment_services, "audit_record", broken)
    with pytest.raises(RuntimeError):
        experiment_services.experiment_delete(experiment=experiment, actor=cast.owner)
    experiment.refresh_from_db()
    assert experiment.lifecycle_stage == LifecycleStage.ACTIVE
    assert experiment.runs.get().lifecycle_stage == LifecycleStage.ACTIVE


def test_the_system_is_an_actor_too(cast):
    experiment = _experiment(cast)
    experiment_services.experiment_delete(experiment=experiment, actor=None)
    entry = AuditEntry.objects.get(action="delete", target_id=str(experiment.pk))
    assert entry.actor is None and entry.actor_name == ""
    assert str(entry) == "system deleted experiment churn"


def test_renames_record_both_names(cast):
    experiment = _experiment(cast)
    experiment_services.experiment_rename(
        experiment=experiment, new_name="churn-2", actor=cast.owner
    )
    experiment_services.experiment_rename(
        experiment=experiment, new_name="churn-2", actor=cast.owner
    )
    model = _registered_model(cast)
    registry.registered_model_rename(
        workspace=cast.workspace, name=model.name, new_name="churn-model-2", actor=cast.owner
    )
    renames = AuditEntry.objects.filter(action="rename").order_by("pk")
    assert [(e.target_type, e.changes) for e in renames] == [
        ("experiment", {"name": ["churn", "churn-2"]}),  # the same name again: no entry
        ("registered model", {"name": ["churn-model", "churn-model-2"]}),
    ]


# --- The rule: a run of a deleted experiment is restored with its experiment ----------------------


def test_run_restore_refuses_a_run_of_a_deleted_experiment(cast):
    run = _run(cast)
    experiment_services.experiment_delete(experiment=run.experiment, actor=None)
    run.refresh_from_db()
    before = AuditEntry.objects.count()

    with pytest.raises(InvalidParameter, match="restore the experiment first"):
        run_services.run_restore(run=run, actor=cast.owner)

    run.refresh_from_db()
    assert run.lifecycle_stage == LifecycleStage.DELETED
    assert AuditEntry.objects.count() == before
    # Restoring the experiment brings the run back with it.
    experiment_services.experiment_restore(experiment=run.experiment, actor=cast.owner)
    run.refresh_from_db()
    assert run.lifecycle_stage == LifecycleStage.ACTIVE


def test_run_restore_rule_holds_for_the_mlflow_client(cast):
    run = _run(cast)
    experiment_services.experiment_delete(experiment=run.experiment, actor=None)

    response = mlflow_call(
        _client(cast, "mlflow"), cast, "POST", "runs/restore", {"run_id": run.run_uuid}
    )

    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "restore the experiment first" in body["message"]
    run.refresh_from_db()
    assert run.lifecycle_stage == LifecycleStage.DELETED


# --- The admin console goes through the same services ---------------------------------------


def test_admin_deletions_are_audited(cast, client, django_user_model, settings, tmp_path):
    api_v1.isolate(settings, tmp_path)
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(staff)
    run = _run(cast)
    logged = logged_model_create(
        workspace=cast.workspace, experiment_id=str(run.experiment_id), name="clf"
    )
    model = _registered_model(cast)
    before = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    for path in (
        f"/admin/tracking/run/{run.pk}/delete/",
        f"/admin/tracking/loggedmodel/{logged.pk}/delete/",
        f"/admin/tracking/registeredmodel/{model.pk}/delete/",
    ):
        assert client.post(path, {"post": "yes"}).status_code == 302

    entries = AuditEntry.objects.filter(pk__gt=before).order_by("pk")
    assert [(e.actor, e.action, e.target_type, e.target_repr) for e in entries] == [
        (staff, "delete", "run", "rf-1"),  # a run deleted here is soft-deleted, then purged
        (staff, "purge", "run", "rf-1"),
        (staff, "purge", "logged model", "clf"),
        (staff, "delete", "registered model", "churn-model"),
    ]
    assert not Run.objects.filter(pk=run.pk).exists()
    assert not RegisteredModel.objects.filter(pk=model.pk).exists()
