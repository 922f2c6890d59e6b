"""Bulk removal of metric points, which carry no foreign-key constraint."""

from __future__ import annotations

import pytest
from django.db import connection

from tracking.models import MetricPoint, Run
from tracking.services.experiments import experiment_create
from tracking.services.purge import runs_purge
from tracking.services.runs import MetricIn, run_create, run_log_batch


def _run_with_points(workspace, name: str, points: int = 50) -> Run:
    experiment = experiment_create(workspace=workspace, name=name)
    run = run_create(workspace=workspace, experiment=experiment, user_id="u", start_time=1)
    metrics = [MetricIn("loss", float(i), False, 1, i) for i in range(points)]
    run_log_batch(run=run, metrics=metrics)
    return run


def _points() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM tracking_metricpoint")
        return cursor.fetchone()[0]


def test_runs_purge_removes_points_and_rows(cast):
    keep = _run_with_points(cast.workspace, "keep")
    gone = _run_with_points(cast.workspace, "gone")
    runs_purge(runs=Run.objects.filter(pk=gone.pk))
    assert not Run.objects.filter(pk=gone.pk).exists()
    assert _points() == 50
    assert MetricPoint.objects.filter(series__run=keep).count() == 50


@pytest.mark.django_db(transaction=True)
def test_admin_deleting_a_workspace_takes_its_points(cast, client, django_user_model):
    _run_with_points(cast.other_workspace, "other")
    _run_with_points(cast.workspace, "mine")
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        f"/admin/portal/workspace/{cast.workspace.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not Run.objects.filter(workspace=cast.workspace).exists()
    assert _points() == 50  # the other workspace's points stay
