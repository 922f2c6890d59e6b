"""The experiment list, the runs table and the run actions, through Django's test client."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.models import AuditEntry
from tracking.models import Experiment, Run
from tracking.tests.factories import make_experiment, make_run
from tracking.views.common import ws_kwargs

READERS = ["owner", "contributor", "reader"]
WRITERS = ["owner", "contributor"]


def url(cast, name: str, workspace=None, **extra) -> str:
    return reverse(name, kwargs={**ws_kwargs(workspace or cast.workspace), **extra})


def as_user(client, cast, who: str):
    user = cast.user(who)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def data(cast):
    fraud = make_experiment(cast.workspace, "fraud-detection")
    churn = make_experiment(cast.workspace, "churn-baseline")
    runs = [
        make_run(
            fraud,
            f"rf-{i}",
            params={"model": "rf", "depth": i},
            metrics={"auc": 0.7 + i / 100, "loss": [1.0, 0.5, 0.2 + i / 100]},
            tags={"team": "risk"},
        )
        for i in range(5)
    ]
    runs.append(make_run(fraud, "xgb-0", params={"model": "xgb"}, metrics={"auc": 0.95}))
    make_run(churn, "baseline", metrics={"auc": 0.6})
    return {"fraud": fraud, "churn": churn, "runs": runs}


# --- Permissions -------------------------------------------------------------------------


@pytest.mark.parametrize("who", READERS)
def test_readers_see_list_and_runs(client, cast, data, who):
    as_user(client, cast, who)
    assert client.get(url(cast, "experiments")).status_code == 200
    response = client.get(url(cast, "experiment", experiment_id=data["fraud"].pk))
    assert response.status_code == 200
    assert b"rf-3" in response.content
    shows_write = b'value="delete"' in response.content
    assert shows_write == (who in WRITERS)


def test_outsider_gets_404_everywhere(client, cast, data):
    as_user(client, cast, "outsider")
    fraud = data["fraud"]
    assert client.get(url(cast, "experiments")).status_code == 404
    assert client.get(url(cast, "experiment", experiment_id=fraud.pk)).status_code == 404
    assert client.post(url(cast, "experiment-create"), {"name": "x"}).status_code == 404
    assert (
        client.post(
            url(cast, "experiment-action", experiment_id=fraud.pk), {"action": "delete"}
        ).status_code
        == 404
    )
    run_id = data["runs"][0].run_uuid
    response = client.post(url(cast, "run-action"), {"action": "delete", "run_ids": [run_id]})
    assert response.status_code == 404
    assert Run.objects.get(run_uuid=run_id).lifecycle_stage == "active"


def test_anonymous_is_sent_to_login(client, cast, data):
    response = client.get(url(cast, "experiments"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = client.post(url(cast, "experiment-create"), {"name": "x"})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_reader_cannot_write(client, cast, data):
    as_user(client, cast, "reader")
    fraud = data["fraud"]
    assert client.post(url(cast, "experiment-create"), {"name": "x"}).status_code == 403
    response = client.post(
        url(cast, "experiment-action", experiment_id=fraud.pk), {"action": "delete"}
    )
    assert response.status_code == 403
    run_id = data["runs"][0].run_uuid
    response = client.post(url(cast, "run-action"), {"action": "delete", "run_ids": [run_id]})
    assert response.status_code == 403
    fraud.refresh_from_db()
    assert fraud.lifecycle_stage == "active"
    assert not Experiment.objects.filter(name="x").exists()


def test_other_workspaces_experiment_is_404(client, cast, data):
    theirs = make_experiment(cast.other_workspace, "theirs")
    as_user(client, cast, "owner")
    assert client.get(url(cast, "experiment", experiment_id=theirs.pk)).status_code == 404
    response = client.post(
        url(cast, "experiment-action", experiment_id=theirs.pk), {"action": "delete"}
    )
    assert response.status_code == 404


# --- Experiment list -----------------------------------------------------------------------


def test_search_by_substring_any_case_returns_partial_for_htmx(client, cast, data):
    as_user(client, cast, "reader")
    response = client.get(url(cast, "experiments"), {"q": "DETECT"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "fraud-detection" in body and "churn-baseline" not in body
    assert "<html" not in body  # only the table is swapped in
    response = client.get(url(cast, "experiments"), {"q": "zzz"})
    assert "No experiment matches" in response.content.decode()


def test_list_counts_runs_and_sorts(client, cast, data):
    as_user(client, cast, "reader")
    response = client.get(url(cast, "experiments"), {"sort": "-runs"})
    experiments = list(response.context["page"].object_list)
    # The workspace's Default experiment (MLflow's id 0) has no runs.
    assert [e.name for e in experiments] == ["fraud-detection", "churn-baseline", "Default"]
    assert [e.run_count for e in experiments] == [6, 1, 0]
    response = client.get(url(cast, "experiments"), {"sort": "name"})
    assert [e.name for e in response.context["page"].object_list] == [
        "Default",
        "churn-baseline",
        "fraud-detection",
    ]


def test_create_rename_delete_restore(client, cast, data):
    as_user(client, cast, "contributor")
    response = client.post(url(cast, "experiment-create"), {"name": "new-exp"})
    experiment = Experiment.objects.get(workspace=cast.workspace, name="new-exp")
    assert response.status_code == 302
    assert response["Location"] == url(cast, "experiment", experiment_id=experiment.pk)

    action = url(cast, "experiment-action", experiment_id=experiment.pk)
    client.post(action, {"action": "rename", "name": "renamed"})
    experiment.refresh_from_db()
    assert experiment.name == "renamed"

    client.post(action, {"action": "delete"})
    experiment.refresh_from_db()
    assert experiment.lifecycle_stage == "deleted"
    active = client.get(url(cast, "experiments")).context["page"].object_list
    assert "renamed" not in [e.name for e in active]
    deleted = client.get(url(cast, "experiments"), {"view": "deleted"}).context["page"]
    assert [e.name for e in deleted.object_list] == ["renamed"]

    client.post(action, {"action": "restore"})
    experiment.refresh_from_db()
    assert experiment.lifecycle_stage == "active"
    actions = set(
        AuditEntry.objects.filter(target_id=str(experiment.pk)).values_list("action", flat=True)
    )
    assert {"create", "rename", "delete", "restore"} <= actions


def test_create_duplicate_keeps_the_typed_name_and_says_why(client, cast, data):
    as_user(client, cast, "owner")
    response = client.post(url(cast, "experiment-create"), {"name": "fraud-detection"})
    body = response.content.decode()
    assert response.status_code == 400
    assert "already exists" in body
    assert 'value="fraud-detection"' in body


def test_rename_to_taken_name_shows_error(client, cast, data):
    as_user(client, cast, "owner")
    action = url(cast, "experiment-action", experiment_id=data["churn"].pk)
    response = client.post(action, {"action": "rename", "name": "fraud-detection"}, follow=True)
    assert "already exists" in response.content.decode()
    data["churn"].refresh_from_db()
    assert data["churn"].name == "churn-baseline"


# --- Runs table ----------------------------------------------------------------------------


def test_runs_table_filter_with_mlflow_syntax_and_order(client, cast, data):
    as_user(client, cast, "reader")
    page = url(cast, "experiment", experiment_id=data["fraud"].pk)
    response = client.get(
        page, {"filter": 'params.model = "rf" and metrics.auc > 0.72', "order": "metrics.auc ASC"}
    )
    names = [row.run.name for row in response.context["table"].rows]
    assert names == ["rf-3", "rf-4"]
    assert response.context["table"].total == 2


def test_bad_filter_gives_a_clear_message_and_keeps_the_filter(client, cast, data):
    as_user(client, cast, "reader")
    page = url(cast, "experiment", experiment_id=data["fraud"].pk)
    response = client.get(page, {"filter": "metrics.auc >> 3"})
    body = response.content.decode()
    assert response.status_code == 400
    assert "search with this filter" in body
    assert 'value="metrics.auc &gt;&gt; 3"' in body
    assert "Traceback" not in body


def test_columns_default_and_chosen(client, cast, data):
    as_user(client, cast, "reader")
    page = url(cast, "experiment", experiment_id=data["fraud"].pk)
    response = client.get(page)
    idents = [c.ident for c in response.context["columns"]]
    assert idents == ["metrics.auc", "metrics.loss", "params.depth", "params.model"]
    response = client.get(page, {"cols": "tags.team,metrics.loss,params.nope"})
    assert [c.ident for c in response.context["columns"]] == ["tags.team", "metrics.loss"]
    row = next(r for r in response.context["table"].rows if r.run.name == "rf-1")
    assert row.tags["team"] == "risk"
    assert row.metrics["loss"].step == 2  # the latest value, not the first


def test_runs_table_pages(client, cast, data):
    for i in range(30):
        make_run(data["churn"], f"bulk-{i:02d}", metrics={"auc": i})
    as_user(client, cast, "reader")
    page = url(cast, "experiment", experiment_id=data["churn"].pk)
    response = client.get(page, {"per_page": 25, "order": "metrics.auc DESC", "page": 2})
    table = response.context["table"]
    assert (table.total, table.pages, table.page) == (31, 2, 2)
    assert [row.run.name for row in table.rows][:2] == ["bulk-04", "bulk-03"]
    assert len(table.rows) == 6


def test_runs_table_query_count_does_not_grow_with_rows(
    client, cast, data, django_assert_max_num_queries
):
    for i in range(40):
        make_run(data["churn"], f"bulk-{i:02d}", params={"p": i}, metrics={"auc": i})
    as_user(client, cast, "reader")
    page = url(cast, "experiment", experiment_id=data["churn"].pk)
    with django_assert_max_num_queries(16):
        client.get(page)


def test_delete_restore_runs_and_show_deleted(client, cast, data):
    as_user(client, cast, "contributor")
    fraud = data["fraud"]
    page = url(cast, "experiment", experiment_id=fraud.pk)
    victims = [r.run_uuid for r in data["runs"][:2]]
    response = client.post(
        url(cast, "run-action"), {"action": "delete", "run_ids": victims, "next": page}
    )
    assert response.status_code == 302 and response["Location"] == page
    assert set(
        Run.objects.filter(run_uuid__in=victims).values_list("lifecycle_stage", flat=True)
    ) == {"deleted"}
    assert client.get(page).context["table"].total == 4
    deleted = client.get(page, {"view": "deleted"}).context["table"]
    assert {row.run.run_uuid for row in deleted.rows} == set(victims)

    client.post(url(cast, "run-action"), {"action": "restore", "run_ids": victims[:1]})
    assert client.get(page).context["table"].total == 5
    assert AuditEntry.objects.filter(action="delete", target_id=str(data["runs"][0].pk)).exists()


def test_run_action_refuses_unsafe_next_and_unknown_action(client, cast, data):
    as_user(client, cast, "owner")
    run_id = data["runs"][0].run_uuid
    response = client.post(
        url(cast, "run-action"),
        {"action": "delete", "run_ids": [run_id], "next": "https://evil.example/"},
    )
    assert response["Location"] == url(cast, "experiments")
    response = client.post(
        url(cast, "run-action"), {"action": "explode", "run_ids": [run_id]}, follow=True
    )
    assert "Unknown action" in response.content.decode()


def test_run_ids_of_another_workspace_are_ignored(client, cast, data):
    theirs = make_run(make_experiment(cast.other_workspace, "theirs"), "their-run")
    as_user(client, cast, "owner")
    client.post(url(cast, "run-action"), {"action": "delete", "run_ids": [theirs.run_uuid]})
    theirs.refresh_from_db()
    assert theirs.lifecycle_stage == "active"


def test_restore_is_refused_while_a_purge_job_is_pending(client, cast, data, monkeypatch):
    from portal.services import jobs

    monkeypatch.setattr(jobs, "job_enqueue", lambda job, countdown=None: None)
    as_user(client, cast, "owner")
    fraud = data["fraud"]
    action = url(cast, "experiment-action", experiment_id=fraud.pk)
    client.post(action, {"action": "delete"})
    response = client.post(action, {"action": "purge"})
    assert response.status_code == 302 and "/jobs/" in response["Location"]
    response = client.post(action, {"action": "restore"}, follow=True)
    assert "can no longer be restored" in response.content.decode()
    fraud.refresh_from_db()
    assert fraud.lifecycle_stage == "deleted"
    run_id = data["runs"][0].run_uuid
    client.post(url(cast, "run-action"), {"action": "restore", "run_ids": [run_id]})
    assert Run.objects.get(run_uuid=run_id).lifecycle_stage == "deleted"
