"""Web service telemetry: what scoring servers post (per-minute rollups and sampled
requests) checked and stored, and the retention sweep.

Ingestion is a hot path (every running service posts every few seconds), so a batch is
written with one set-based upsert per chunk of minutes — counts and histogram buckets
summed into the existing row, the maximum latency kept — and one bulk insert of samples,
never a read-modify-write per row. The same SQL shape runs on PostgreSQL and SQLite (both
have INSERT … ON CONFLICT DO UPDATE); only the JSON functions that sum two bucket arrays
differ. The body shape is the scoring server's (deployments/scoring/telemetry.py)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from deployments.models import RequestMinute, RequestSample, WebService
from deployments.scoring.telemetry import N_BUCKETS
from portal.errors import InvalidParameter, NotFound

# Bounds of one batch: a server posts every few seconds, so anything near these is not a
# scoring server's batch.
MAX_MINUTES = 1440
MAX_SAMPLES = 2000
MAX_SAMPLE_ROWS = 1000
# Per report: bounds no server reaches in a few seconds, far below the columns' limits,
# so sums of many reports cannot overflow them.
MAX_COUNT = 10**8
MAX_BYTES = 10**15
MAX_MILLIS = 1e12
# Nesting of a sample's inputs and outputs (a model's rows are flat).
MAX_DEPTH = 32
# A minute stamped further ahead than this (clock skew aside) is refused.
FUTURE_SLACK = timedelta(hours=1)
UPSERT_CHUNK = 500
ERROR_CHARS = 500
REQUEST_ID_CHARS = 64

_MINUTE_COUNTS = ("requests", "errors", "server_errors", "bytes_in", "bytes_out")
_COLUMNS = (
    "service_id",
    "minute",
    "requests",
    "errors",
    "server_errors",
    "latency_sum_ms",
    "latency_max_ms",
    "latency_buckets",
    "bytes_in",
    "bytes_out",
)


def telemetry_token_hash(token: str) -> str:
    """The form a service's telemetry token is looked up by: sha256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def telemetry_service(*, token: str) -> WebService | None:
    """The service whose scoring server holds `token`, or None."""
    if not token or len(token) > 512:
        return None
    return (
        WebService.objects.filter(telemetry_token_hash=telemetry_token_hash(token))
        .only("pk", "workspace_id", "name")
        .first()
    )


# --- The body -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Minute:
    minute: datetime
    requests: int
    errors: int
    server_errors: int
    latency_sum_ms: float
    latency_max_ms: float
    latency_buckets: list[int]
    bytes_in: int
    bytes_out: int

    def merged(self, other: Minute) -> Minute:
        """Two reports of one minute in one batch (the upsert cannot touch a row twice)."""
        return Minute(
            minute=self.minute,
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            server_errors=self.server_errors + other.server_errors,
            latency_sum_ms=self.latency_sum_ms + other.latency_sum_ms,
            latency_max_ms=max(self.latency_max_ms, other.latency_max_ms),
            latency_buckets=[
                a + b for a, b in zip(self.latency_buckets, other.latency_buckets, strict=True)
            ],
            bytes_in=self.bytes_in + other.bytes_in,
            bytes_out=self.bytes_out + other.bytes_out,
        )


@dataclass(frozen=True)
class Batch:
    minutes: list[Minute]
    samples: list[dict[str, Any]]


def _where(path: str, message: str) -> InvalidParameter:
    return InvalidParameter(f"{path}: {message}")


def _count(value: Any, path: str, limit: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _where(path, "must be a whole number.")
    if not 0 <= value <= limit:
        raise _where(path, f"must be from 0 to {limit}.")
    return value


def _millis(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _where(path, "must be a number.")
    value = float(value)
    if not math.isfinite(value) or not 0 <= value <= MAX_MILLIS:
        raise _where(path, f"must be a number of milliseconds from 0 to {MAX_MILLIS:g}.")
    return value


def _time(value: Any, path: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise _where(path, "must be an ISO 8601 time such as 2026-12-05T09:01:00Z.")
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:  # the servers send UTC
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _where(path, "must be an ISO 8601 time such as 2026-12-05T09:01:00Z.") from None
    if parsed.year < 2000:
        raise _where(path, "lies before 2000; check the scoring server's clock.")
    if parsed > timezone.now() + FUTURE_SLACK:
        raise _where(path, "lies in the future; check the scoring server's clock.")
    return parsed


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _where(path, "must be an object.")
    return value


def _minute(item: Any, path: str) -> Minute:
    item = _object(item, path)
    counts = {
        name: _count(
            item.get(name, 0), f"{path}.{name}", MAX_BYTES if "bytes" in name else MAX_COUNT
        )
        for name in _MINUTE_COUNTS
    }
    if counts["errors"] > counts["requests"] or counts["server_errors"] > counts["errors"]:
        raise _where(path, "needs server_errors ≤ errors ≤ requests.")
    buckets = item.get("latency_buckets")
    if not isinstance(buckets, list) or len(buckets) != N_BUCKETS:
        raise _where(f"{path}.latency_buckets", f"must be a list of {N_BUCKETS} counts.")
    return Minute(
        minute=_time(item.get("minute"), f"{path}.minute").replace(second=0, microsecond=0),
        latency_sum_ms=_millis(item.get("latency_sum_ms", 0), f"{path}.latency_sum_ms"),
        latency_max_ms=_millis(item.get("latency_max_ms", 0), f"{path}.latency_max_ms"),
        latency_buckets=[_count(n, f"{path}.latency_buckets[{i}]") for i, n in enumerate(buckets)],
        **counts,
    )


def _inputs(value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    value = _object(value, path)
    columns, data = value.get("columns"), value.get("data")
    # null: the caller sent unnamed rows ({"data": [[...]]}); drift names them after its
    # baseline's columns.
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
    ):
        raise _where(f"{path}.columns", "must be a list of column names or null.")
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise _where(f"{path}.data", "must be a list of rows (lists).")
    if len(data) > MAX_SAMPLE_ROWS:
        raise _where(f"{path}.data", f"has more than {MAX_SAMPLE_ROWS} rows.")
    return {
        "columns": None if columns is None else _clean(columns, path),
        "data": _clean(data, path),
    }


def _clean(value: Any, path: str, depth: int = 0) -> Any:
    """`value` without NUL characters in its strings (PostgreSQL's jsonb refuses them;
    they carry nothing a monitoring page shows), and not nested past MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise _where(path, f"is nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, list):
        return [_clean(v, path, depth + 1) for v in value]
    if isinstance(value, dict):
        return {_clean(k, path, depth + 1): _clean(v, path, depth + 1) for k, v in value.items()}
    return value


def _sample(item: Any, path: str) -> dict[str, Any]:
    item = _object(item, path)
    status = item.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise _where(f"{path}.status", "must be an HTTP status code.")
    request_id, error = item.get("request_id") or "", item.get("error") or ""
    if not isinstance(request_id, str) or not isinstance(error, str):
        raise _where(path, "request_id and error must be strings.")
    outputs = item.get("outputs")
    if outputs is not None and not isinstance(outputs, list | dict):
        raise _where(f"{path}.outputs", "must be a list, an object or null.")
    return {
        "time": _time(item.get("time"), f"{path}.time"),
        "request_id": _clean(request_id[:REQUEST_ID_CHARS], path),
        "status": status,
        "latency_ms": _millis(item.get("latency_ms"), f"{path}.latency_ms"),
        "bytes_in": min(_count(item.get("bytes_in", 0), f"{path}.bytes_in"), 2**31 - 1),
        "bytes_out": min(_count(item.get("bytes_out", 0), f"{path}.bytes_out"), 2**31 - 1),
        "inputs": _inputs(item.get("inputs"), f"{path}.inputs"),
        "outputs": _clean(outputs, f"{path}.outputs"),
        "error": _clean(error[:ERROR_CHARS], path),
    }


def telemetry_parse(body: Any) -> Batch:
    """The checked batch; InvalidParameter naming the first bad field otherwise."""
    body = _object(body, "body")
    minutes, samples = body.get("minutes", []), body.get("samples", [])
    if not isinstance(minutes, list) or not isinstance(samples, list):
        raise InvalidParameter("body: minutes and samples must be lists.")
    if len(minutes) > MAX_MINUTES or len(samples) > MAX_SAMPLES:
        raise InvalidParameter(
            f"body: at most {MAX_MINUTES} minutes and {MAX_SAMPLES} samples per batch."
        )
    merged: dict[datetime, Minute] = {}
    for i, item in enumerate(minutes):
        minute = _minute(item, f"minutes[{i}]")
        seen = merged.get(minute.minute)
        merged[minute.minute] = minute if seen is None else seen.merged(minute)
    return Batch(
        minutes=sorted(merged.values(), key=lambda m: m.minute),
        samples=[_sample(item, f"samples[{i}]") for i, item in enumerate(samples)],
    )


# --- Storing it ---------------------------------------------------------------------------


def _sum_buckets_sql(vendor: str, old: str, new: str) -> str:
    """SQL for the element-wise sum of two JSON arrays of counts (either may be shorter)."""
    if vendor == "postgresql":
        return (
            # Only fixed column names are put into this SQL; the values are parameters.
            "COALESCE((SELECT jsonb_agg(s ORDER BY i) FROM (SELECT i, SUM(v::bigint) AS s FROM ("  # noqa: S608
            f"SELECT i, v FROM jsonb_array_elements_text({old}) WITH ORDINALITY AS a(v, i) "
            f"UNION ALL SELECT i, v FROM jsonb_array_elements_text({new}) WITH ORDINALITY "
            "AS b(v, i)) AS u GROUP BY i) AS g), '[]'::jsonb)"
        )
    return (
        "COALESCE((SELECT json_group_array(s) FROM (SELECT key, SUM(value) AS s FROM ("  # noqa: S608
        f"SELECT key, value FROM json_each({old}) UNION ALL "
        f"SELECT key, value FROM json_each({new})) GROUP BY key ORDER BY key)), '[]')"
    )


def _upsert_sql(rows: int) -> str:
    vendor = connection.vendor
    table = connection.ops.quote_name(RequestMinute._meta.db_table)
    json_param = "%s::jsonb" if vendor == "postgresql" else "%s"
    row = "(" + ", ".join([json_param if c == "latency_buckets" else "%s" for c in _COLUMNS]) + ")"
    greatest = "GREATEST" if vendor == "postgresql" else "MAX"
    sums = ", ".join(f"{c} = m.{c} + EXCLUDED.{c}" for c in (*_MINUTE_COUNTS, "latency_sum_ms"))
    buckets = _sum_buckets_sql(vendor, "m.latency_buckets", "EXCLUDED.latency_buckets")
    return (
        f"INSERT INTO {table} AS m ({', '.join(_COLUMNS)}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT (service_id, minute) DO UPDATE SET {sums}, "
        f"latency_max_ms = {greatest}(m.latency_max_ms, EXCLUDED.latency_max_ms), "
        f"latency_buckets = {buckets}"
    )


def _minute_params(service_id: int, m: Minute) -> list[Any]:
    return [
        service_id,
        connection.ops.adapt_datetimefield_value(m.minute),
        m.requests,
        m.errors,
        m.server_errors,
        m.latency_sum_ms,
        m.latency_max_ms,
        json.dumps(m.latency_buckets),
        m.bytes_in,
        m.bytes_out,
    ]


def _cutoffs(now: datetime) -> tuple[datetime, datetime]:
    return (
        now - timedelta(days=settings.MONITORING_RETENTION_DAYS),
        now - timedelta(days=settings.MONITORING_SAMPLE_RETENTION_DAYS),
    )


def telemetry_ingest(*, service: WebService, batch: Batch) -> dict[str, int]:
    """Add the batch's minutes into the service's rollups and store its samples. Minutes
    and samples older than their retention are dropped (a server catching up after a long
    outage must not resurrect what the sweep removed). Returns how many were stored."""
    minute_cutoff, sample_cutoff = _cutoffs(timezone.now())
    minutes = [m for m in batch.minutes if m.minute >= minute_cutoff]
    samples = [
        RequestSample(service_id=service.pk, **s)
        for s in batch.samples
        if s["time"] >= sample_cutoff
    ]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for start in range(0, len(minutes), UPSERT_CHUNK):
                chunk = minutes[start : start + UPSERT_CHUNK]
                params = [p for m in chunk for p in _minute_params(service.pk, m)]
                cursor.execute(_upsert_sql(len(chunk)), params)
            RequestSample.objects.bulk_create(samples, batch_size=500)
    except IntegrityError:
        # The service's row went (its delete job ended) while the batch was in flight.
        if WebService.objects.filter(pk=service.pk).exists():
            raise
        raise NotFound("The web service no longer exists.") from None
    return {"minutes": len(minutes), "samples": len(samples)}


def monitoring_retention(*, now: datetime | None = None) -> dict[str, int]:
    """Delete rollups older than MONITORING_RETENTION_DAYS and samples older than
    MONITORING_SAMPLE_RETENTION_DAYS (the beat task's work). Returns the counts deleted."""
    minute_cutoff, sample_cutoff = _cutoffs(now or timezone.now())
    # Nothing refers to these rows and no signal listens, so Django deletes them with one
    # DELETE … WHERE each, without loading them.
    minutes, _ = RequestMinute.objects.filter(minute__lt=minute_cutoff).delete()
    samples, _ = RequestSample.objects.filter(time__lt=sample_cutoff).delete()
    return {"minutes": minutes, "samples": samples}
