"""Metric history reads: keyset-paged history, streamed full history, sampled history.

Points are read with raw SQL in primary-key order (series, step, timestamp, value,
is_nan), which the primary-key index serves directly; pages continue after the last
key rather than at an offset, so the millionth point costs what the first does.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import orjson
from django.db import connection

from portal.errors import InvalidParameter
from tracking.models import LatestMetric, Run

POINTS = "tracking_metricpoint"
SERIES = "tracking_latestmetric"
STREAM_CHUNK = 10_000
_COLUMNS = "step, timestamp, value, is_nan"


def series_id(run: Run, key: str) -> int | None:
    return LatestMetric.objects.filter(run=run, key=key).values_list("id", flat=True).first()


def encode_token(row: tuple) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(row))).decode()


def decode_token(token: str) -> tuple[int, int, float, bool]:
    try:
        step, timestamp, value, is_nan = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(step), int(timestamp), float(value), bool(is_nan)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidParameter(f"Invalid page token '{token[:100]}'.") from None


def history_page(
    series: int, *, limit: int, after: tuple | None = None
) -> list[tuple[int, int, float, bool]]:
    """Up to `limit` points of a series after the given key, in step order."""
    sql = f"SELECT {_COLUMNS} FROM {POINTS} WHERE series_id = %s"
    args: list = [series]
    if after is not None:
        sql += " AND (step, timestamp, value, is_nan) > (%s, %s, %s, %s)"
        args += list(after)
    sql += " ORDER BY step, timestamp, value, is_nan LIMIT %s"
    args.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


def points_json(key: str, rows: list[tuple[int, int, float, bool]]) -> bytes:
    """Points as MLflow's JSON array. No run_id on each point, as mlflow server answers:
    the client parses every field of every point, and the run is the one asked for."""
    from tracking.api.protocol import json_float

    return orjson.dumps(
        [
            {
                "key": key,
                # v - v is 0 only for finite numbers; the rest take protobuf's words.
                "value": value if not is_nan and value - value == 0 else json_float(value, is_nan),
                "timestamp": ts,
                "step": step,
            }
            for step, ts, value, is_nan in rows
        ]
    )


def history_page_json(
    series: int, key: str, *, limit: int, after: tuple | None = None
) -> tuple[bytes, tuple | None]:
    """One page as a JSON array, and the key of its last point when more follow.
    (Building the JSON in PostgreSQL measured slower than this.)"""
    rows = history_page(series, limit=limit + 1, after=after)
    more = rows[limit - 1] if len(rows) > limit else None
    return points_json(key, rows[:limit]), more


def history_stream(series: int) -> Iterator[list[tuple[int, int, float, bool]]]:
    """The whole history in chunks, holding one chunk in memory at a time."""
    after = None
    while True:
        rows = history_page(series, limit=STREAM_CHUNK, after=after)
        if rows:
            yield rows
        if len(rows) < STREAM_CHUNK:
            return
        after = rows[-1]


def sampled_history(
    run_pks: list[int],
    key: str,
    *,
    max_results: int,
    start_step: int | None = None,
    end_step: int | None = None,
) -> list[tuple[int, int, int, float, bool]]:
    """Up to about `max_results` points per run, in one statement for all runs.

    A series short enough comes back whole. A longer one is cut into max_results/2
    buckets of consecutive points, and each bucket gives its lowest and highest value,
    so spikes survive the downsampling; the first and last points always do.
    Rows: (run pk, step, timestamp, value, is_nan).
    """
    if not run_pks:
        return []
    buckets = max(1, max_results // 2)
    where = ""
    args: list = [*run_pks, key]
    if start_step is not None and end_step is not None:
        where = " AND p.step >= %s AND p.step <= %s"
        args += [start_step, end_step]
    marks = ", ".join(["%s"] * len(run_pks))
    sql = f"""
        WITH pts AS (
            SELECT s.run_id, p.step, p.timestamp, p.value, p.is_nan,
                   ROW_NUMBER() OVER w - 1 AS rn,
                   COUNT(*) OVER (PARTITION BY p.series_id) AS n,
                   p.series_id
            FROM {POINTS} p JOIN {SERIES} s ON s.id = p.series_id
            WHERE s.run_id IN ({marks}) AND s.key = %s{where}
            WINDOW w AS (PARTITION BY p.series_id ORDER BY p.step, p.timestamp, p.value, p.is_nan)
        ), bucketed AS (
            SELECT *, (rn * %s) / n AS bucket FROM pts
        ), ranked AS (
            SELECT *,
                   ROW_NUMBER() OVER (PARTITION BY series_id, bucket
                                      ORDER BY is_nan, value, rn) AS lo,
                   ROW_NUMBER() OVER (PARTITION BY series_id, bucket
                                      ORDER BY is_nan, value DESC, rn) AS hi
            FROM bucketed
        )
        SELECT run_id, step, timestamp, value, is_nan FROM ranked
        WHERE n <= %s OR lo = 1 OR hi = 1 OR rn = 0 OR rn = n - 1
        ORDER BY run_id, step, timestamp, value, is_nan
    """
    args += [buckets, max_results]
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()
