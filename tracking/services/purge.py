"""Permanent removal of tracking data in bulk.

Metric points have no foreign-key constraint (there can be millions per run), so
whatever deletes runs — a run purge, an experiment or workspace cascade, the admin
console — first calls `metric_points_purge` for those runs, one set-based DELETE.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from tracking.models import LatestMetric, Run


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
    """Delete runs for good with everything they logged (artifacts are the caller's)."""
    metric_points_purge(runs=runs)
    deleted, _ = runs.delete()
    return deleted
