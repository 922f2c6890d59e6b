"""Metric history reads: keyset-paged history, streamed full history, sampled history.

Points are read with raw SQL in primary-key order (series, step, timestamp, value,
is_nan), which the primary-key index serves directly; pages continue after the last
key rather than at an offset, so the millionth point costs what the first does.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from django.db import connection, transaction

from portal.errors import InvalidParameter
from tracking.encoding import json_float
from tracking.models import LatestMetric, Run

POINTS = "tracking_metricpoint"
SERIES = "tracking_latestmetric"
RUNS = "tracking_run"
STREAM_CHUNK = 10_000
_COLUMNS = "step, timestamp, value, is_nan"


def series_id(run: Run, key: str) -> int | None:
    return LatestMetric.objects.filter(run=run, key=key).values_list("id", flat=True).first()


def encode_token(row: tuple) -> str:
    """A page token from the last point's key. JSON has no infinity (orjson would write
    null), so ±inf travel as the words float() reads back."""
    step, timestamp, value, is_nan = row
    if not math.isfinite(value):
        value = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return base64.urlsafe_b64encode(orjson.dumps([step, timestamp, value, is_nan])).decode()


def decode_token(token: str) -> tuple[int, int, float, bool]:
    try:
        step, timestamp, value, is_nan = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(step), int(timestamp), float(value), bool(is_nan)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidParameter(f"Invalid page token '{token[:100]}'.") from None


def history_page(
    series: int, *, limit: int, after: tuple | None = None, offset: int = 0
) -> list[tuple[int, int, float, bool]]:
    """Up to `limit` points of a series after the given key (or past the first `offset`
    points), in step order."""
    sql = f"SELECT {_COLUMNS} FROM {POINTS} WHERE series_id = %s"
    args: list = [series]
    if after is not None:
        sql += " AND (step, timestamp, value, is_nan) > (%s, %s, %s, %s)"
        args += list(after)
    sql += " ORDER BY step, timestamp, value, is_nan LIMIT %s"
    args.append(limit)
    if offset:
        sql += " OFFSET %s"
        args.append(offset)
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


def points_json(key: str, rows: list[tuple[int, int, float, bool]]) -> bytes:
    """Points as MLflow's JSON array. No run_id on each point, as mlflow server answers:
    the client parses every field of every point, and the run is the one asked for."""
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


def history_stream(
    series: int, *, after: tuple | None = None, offset: int = 0, limit: int | None = None
) -> Iterator[list[tuple[int, int, float, bool]]]:
    """The history in chunks, holding one chunk in memory at a time: all of it, or
    `limit` points; from the start, after a key or past `offset` points."""
    left = limit
    while left is None or left > 0:
        size = STREAM_CHUNK if left is None else min(STREAM_CHUNK, left)
        rows = history_page(series, limit=size, after=after, offset=offset)
        if rows:
            yield rows
        if len(rows) < size:
            return
        after, offset = rows[-1], 0
        if left is not None:
            left -= len(rows)


def history_bulk(run_pks: list[int], key: str, *, limit: int) -> list[tuple]:
    """Up to `limit` points of metric `key` across the runs, in the order mlflow's store
    gives them: by run id, then timestamp, step and value (NaN, stored as 0, where 0
    is). Rows: (run_uuid, step, timestamp, value, is_nan)."""
    if not run_pks or limit <= 0:
        return []
    marks = ", ".join(["%s"] * len(run_pks))
    sql = f"""
        SELECT r.run_uuid, p.step, p.timestamp, p.value, p.is_nan
        FROM {POINTS} p
        JOIN {SERIES} s ON s.id = p.series_id
        JOIN {RUNS} r ON r.id = s.run_id
        WHERE s.run_id IN ({marks}) AND s.key = %s
        ORDER BY r.run_uuid, p.timestamp, p.step, p.value, p.is_nan
        LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*run_pks, key, limit])
        return cursor.fetchall()


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


# --- Chart history ---------------------------------------------------------------------
#
# sampled_history ranks every point with window functions: several sorts of the whole
# series, ~4 s for a 1,000,000-point metric on PostgreSQL. Charts instead cut the series
# into buckets of equal step range and keep, per bucket, its first, last, lowest and
# highest point (M4): never more than 4 points a bucket, no spike hidden, and a series
# that fits is returned whole. Bucket edges come from the primary-key index
# (series, step, ...), so a short series or a zoomed range costs a few index probes.

# A chart point: (step, timestamp, value, is_nan); is_nan points carry value 0.
# Step arithmetic stays within 64 bits below this span; wider series (steps near both
# ends of the int64 range) are sampled by rank instead.
_MAX_SPAN = 2**62
ChartRow = tuple[int, int, float, bool]


@dataclass(slots=True)
class ChartSeries:
    rows: list[ChartRow]  # in step order
    total: int  # points of the series within the asked step range
    downsampled: bool


def chart_history(
    run_pks: list[int],
    key: str,
    *,
    points: int,
    start_step: int | None = None,
    end_step: int | None = None,
) -> dict[int, ChartSeries]:
    """At most about `points` points per run of metric `key`, by run pk; runs without the
    metric (or without points in the step range) are left out.

    A series with at most `points` points in the range comes back whole. A longer one
    is cut into points/4 buckets of equal step range, each giving its first, last, lowest
    and highest point. One whose steps are too few to cut (e.g. logged always at step 0)
    falls back to sampled_history's buckets of consecutive points.
    """
    if not run_pks:
        return {}
    buckets = max(1, points // 4)
    bounds = _chart_bounds(run_pks, key, points + 1, start_step, end_step)
    whole, cut, ranked = [], [], []
    for series, run_pk, lo, hi, capped in bounds:
        if lo is None:
            continue
        if capped <= points:
            whole.append((series, run_pk))
        elif buckets <= hi - lo + 1 < _MAX_SPAN:
            width = -(-(hi - lo + 1) // buckets)  # ceil: at most `buckets` buckets
            cut.append((series, run_pk, lo, hi, width))
        else:
            ranked.append((series, run_pk))
    result: dict[int, ChartSeries] = {}
    if whole:
        result.update(_chart_whole(whole, start_step, end_step))
    if cut:
        bucketed = _chart_buckets_pg if connection.vendor == "postgresql" else _chart_buckets
        result.update(bucketed(cut, key))
    if ranked:
        result.update(_chart_ranked(ranked, key, points, start_step, end_step))
    return result


def _step_range(start_step: int | None, end_step: int | None, alias: str = "p") -> tuple:
    if start_step is None or end_step is None:
        return "", []
    return f" AND {alias}.step >= %s AND {alias}.step <= %s", [start_step, end_step]


def _chart_bounds(
    run_pks: list[int], key: str, cap: int, start_step: int | None, end_step: int | None
) -> list[tuple]:
    """(series id, run pk, first step, last step, point count capped at `cap`) per series,
    from index probes and at most `cap` index entries each."""
    rng, rng_args = _step_range(start_step, end_step)
    marks = ", ".join(["%s"] * len(run_pks))
    sql = f"""
        SELECT s.id, s.run_id,
            (SELECT p.step FROM {POINTS} p WHERE p.series_id = s.id{rng}
             ORDER BY p.step LIMIT 1),
            (SELECT p.step FROM {POINTS} p WHERE p.series_id = s.id{rng}
             ORDER BY p.step DESC LIMIT 1),
            (SELECT COUNT(*) FROM (SELECT 1 FROM {POINTS} p WHERE p.series_id = s.id{rng}
             LIMIT %s) capped)
        FROM {SERIES} s WHERE s.run_id IN ({marks}) AND s.key = %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*rng_args, *rng_args, *rng_args, cap, *run_pks, key])
        return cursor.fetchall()


def _chart_whole(
    series: list[tuple[int, int]], start_step: int | None, end_step: int | None
) -> dict[int, ChartSeries]:
    run_of = dict(series)
    rng, rng_args = _step_range(start_step, end_step)
    marks = ", ".join(["%s"] * len(run_of))
    rows: dict[int, list[ChartRow]] = {run_pk: [] for run_pk in run_of.values()}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.series_id, {_COLUMNS} FROM {POINTS} p "
            f"WHERE p.series_id IN ({marks}){rng} "
            "ORDER BY p.series_id, step, timestamp, value, is_nan",
            [*run_of, *rng_args],
        )
        for series_id, step, timestamp, value, is_nan in cursor.fetchall():
            rows[run_of[series_id]].append((step, timestamp, value, bool(is_nan)))
    return {
        run_pk: ChartSeries(rows=points, total=len(points), downsampled=False)
        for run_pk, points in rows.items()
    }


def _bucket_specs(cut: list[tuple]) -> tuple[str, list]:
    """The series to cut as a VALUES list: (series id, first step, last step, width)."""
    one = "(CAST(%s AS INTEGER), CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT))"
    args: list = []
    for series, _, lo, hi, width in cut:
        args += [series, lo, hi, width]
    return ", ".join([one] * len(cut)), args


def _chart_buckets_pg(cut: list[tuple], _key: str) -> dict[int, ChartSeries]:
    """PostgreSQL: per bucket, one index range scan for count/min/max, then index probes
    (LIMIT 1) for the first and last point and for where the min and max sit."""
    values, args = _bucket_specs(cut)
    in_bucket = "q.series_id = b.series_id AND q.step >= b.a AND q.step <= b.z"
    sql = f"""
        WITH v(series_id, lo, hi, width) AS (VALUES {values}),
        b AS (
            SELECT v.series_id, v.lo + g * v.width AS a,
                   v.lo + LEAST((g + 1) * v.width - 1, v.hi - v.lo) AS z
            FROM v, generate_series(0, (v.hi - v.lo) / v.width) g
        )
        SELECT b.series_id, s.n,
               f.step, f.timestamp, f.value, f.is_nan,
               l.step, l.timestamp, l.value, l.is_nan,
               lo.step, lo.timestamp, s.lo, hi.step, hi.timestamp, s.hi
        FROM b
        CROSS JOIN LATERAL (
            SELECT COUNT(*) AS n,
                   MIN(q.value) FILTER (WHERE NOT q.is_nan) AS lo,
                   MAX(q.value) FILTER (WHERE NOT q.is_nan) AS hi
            FROM {POINTS} q WHERE {in_bucket}
        ) s
        LEFT JOIN LATERAL (
            SELECT {_COLUMNS} FROM {POINTS} q WHERE {in_bucket}
            ORDER BY q.step, q.timestamp LIMIT 1
        ) f ON true
        LEFT JOIN LATERAL (
            SELECT {_COLUMNS} FROM {POINTS} q WHERE {in_bucket}
            ORDER BY q.step DESC, q.timestamp DESC LIMIT 1
        ) l ON true
        LEFT JOIN LATERAL (
            SELECT q.step, q.timestamp FROM {POINTS} q
            WHERE {in_bucket} AND q.value = s.lo AND NOT q.is_nan ORDER BY q.step LIMIT 1
        ) lo ON true
        LEFT JOIN LATERAL (
            SELECT q.step, q.timestamp FROM {POINTS} q
            WHERE {in_bucket} AND q.value = s.hi AND NOT q.is_nan ORDER BY q.step LIMIT 1
        ) hi ON true
        WHERE s.n > 0
    """
    run_of = {series: run_pk for series, run_pk, *_ in cut}
    picked: dict[int, set[ChartRow]] = {run_pk: set() for run_pk in run_of.values()}
    totals = dict.fromkeys(run_of.values(), 0)
    # The planner's row estimates for the lateral scans are far off, and the JIT
    # compilation they trigger costs more than the query itself.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, args)
        for row in cursor.fetchall():
            run_pk = run_of[row[0]]
            totals[run_pk] += row[1]
            rows = picked[run_pk]
            rows.add((row[2], row[3], row[4], row[5]))
            rows.add((row[6], row[7], row[8], row[9]))
            if row[12] is not None:
                rows.add((row[10], row[11], row[12], False))
                rows.add((row[13], row[14], row[15], False))
    return {
        run_pk: ChartSeries(rows=sorted(rows), total=totals[run_pk], downsampled=True)
        for run_pk, rows in picked.items()
    }


def _chart_buckets(cut: list[tuple], _key: str) -> dict[int, ChartSeries]:
    """Any database (SQLite has no LATERAL): one grouped pass for each bucket's count,
    first and last step and extreme values, a probe per bucket for the step of each
    extreme, then the points at the picked steps; Python keeps one point per pick."""
    values, args = _bucket_specs(cut)
    where_extreme = (
        f"SELECT q.step FROM {POINTS} q WHERE q.series_id = agg.series_id "
        "AND q.step >= agg.f AND q.step <= agg.l AND q.value = agg.{col} AND NOT q.is_nan "
        "ORDER BY q.step LIMIT 1"
    )
    sql = f"""
        WITH v(series_id, lo, hi, width) AS (VALUES {values}),
        agg AS (
            SELECT p.series_id, (p.step - v.lo) / v.width AS b, COUNT(*) AS n,
                   MIN(p.step) AS f, MAX(p.step) AS l,
                   MIN(CASE WHEN p.is_nan THEN NULL ELSE p.value END) AS vlo,
                   MAX(CASE WHEN p.is_nan THEN NULL ELSE p.value END) AS vhi
            FROM {POINTS} p JOIN v ON p.series_id = v.series_id
                AND p.step >= v.lo AND p.step <= v.hi
            GROUP BY p.series_id, (p.step - v.lo) / v.width
        ), picks(series_id, b, n, role, step, val) AS (
            SELECT series_id, b, n, 0, f, CAST(NULL AS DOUBLE PRECISION) FROM agg
            UNION ALL SELECT series_id, b, n, 1, l, NULL FROM agg
            UNION ALL SELECT series_id, b, n, 2, ({where_extreme.format(col="vlo")}), vlo
                FROM agg WHERE vlo IS NOT NULL
            UNION ALL SELECT series_id, b, n, 3, ({where_extreme.format(col="vhi")}), vhi
                FROM agg WHERE vhi IS NOT NULL
        )
        SELECT k.series_id, k.b, k.n, k.role, k.val, p.step, p.timestamp, p.value, p.is_nan
        FROM picks k JOIN {POINTS} p ON p.series_id = k.series_id AND p.step = k.step
        ORDER BY k.series_id, k.b, k.role, p.timestamp
    """
    run_of = {series: run_pk for series, run_pk, *_ in cut}
    picked: dict[int, set[ChartRow]] = {run_pk: set() for run_pk in run_of.values()}
    counted: dict[int, dict[int, int]] = {run_pk: {} for run_pk in run_of.values()}
    chosen: dict[tuple, ChartRow] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        rows = cursor.fetchall()
    for series, bucket, n, role, val, step, timestamp, value, is_nan in rows:
        run_pk = run_of[series]
        counted[run_pk][bucket] = n
        point = (step, timestamp, value, bool(is_nan))
        pick = (run_pk, bucket, role)
        # Several points may share the picked step: the first takes the earliest, the
        # last the latest, an extreme the one holding that value.
        first = pick not in chosen and (role == 0 or (not is_nan and value == val))
        if role == 1 or first:
            chosen[pick] = point
    for (run_pk, _, _), point in chosen.items():
        picked[run_pk].add(point)
    return {
        run_pk: ChartSeries(
            rows=sorted(rows), total=sum(counted[run_pk].values()), downsampled=True
        )
        for run_pk, rows in picked.items()
    }


def _chart_ranked(
    series: list[tuple[int, int]],
    key: str,
    points: int,
    start_step: int | None,
    end_step: int | None,
) -> dict[int, ChartSeries]:
    """Series with many points over few steps: sampled_history's rank buckets."""
    run_pks = [run_pk for _, run_pk in series]
    rows: dict[int, list[ChartRow]] = {run_pk: [] for run_pk in run_pks}
    for run_pk, step, timestamp, value, is_nan in sampled_history(
        run_pks, key, max_results=points, start_step=start_step, end_step=end_step
    ):
        rows[run_pk].append((step, timestamp, value, bool(is_nan)))
    rng, rng_args = _step_range(start_step, end_step)
    marks = ", ".join(["%s"] * len(series))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.series_id, COUNT(*) FROM {POINTS} p "
            f"WHERE p.series_id IN ({marks}){rng} GROUP BY p.series_id",
            [*(s for s, _ in series), *rng_args],
        )
        totals = {dict(series)[s]: n for s, n in cursor.fetchall()}
    return {
        run_pk: ChartSeries(rows=rows[run_pk], total=totals.get(run_pk, 0), downsampled=True)
        for run_pk in run_pks
    }
