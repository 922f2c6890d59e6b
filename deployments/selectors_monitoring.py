"""Reads of web service telemetry shared by the service page and /api/v1: series for the
charts (requests per minute, error rate, latency percentiles from summed histogram
buckets), a window's totals, recent sampled requests.

Rollups are per minute; a long range is read in coarser buckets (BUCKETS) so a chart
never carries more than a few hundred points. A 7-day range is at most 10,080 rows per
service, summed here in one pass over `values_list` tuples (no model instances)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from deployments.models import RequestMinute, RequestSample, WebService
from deployments.scoring.telemetry import N_BUCKETS, MinuteCounts, percentile_from_buckets
from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace

# (longest range, bucket) pairs, in order: the first that covers the range is used.
BUCKETS: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(hours=6), timedelta(minutes=1)),
    (timedelta(days=2), timedelta(minutes=5)),
    (timedelta(days=8), timedelta(minutes=30)),
    (timedelta(days=31), timedelta(hours=2)),
    (timedelta(days=400), timedelta(days=1)),
)
MAX_RANGE = BUCKETS[-1][0]
# The page's range selector: label → length.
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_RANGE = "1h"
PERCENTILES = (50, 95, 99)
RECENT_SAMPLES = 50
PREVIEW_CHARS = 120
IN_PROGRESS_FLOOR = timedelta(seconds=15)

_FIELDS = (
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


def service_by_name(*, workspace: Workspace, name: str) -> WebService:
    """The workspace's service called `name`; NotFound otherwise."""
    service = (
        WebService.objects.filter(workspace=workspace, name=name)
        .select_related("image", "compute_target", "created_by")
        .first()
    )
    if service is None:
        raise NotFound(f"No web service named {name!r} in this workspace.")
    return service


def bucket_for(span: timedelta) -> timedelta:
    for longest, bucket in BUCKETS:
        if span <= longest:
            return bucket
    return BUCKETS[-1][1]


def _parse_time(value: str, what: str) -> datetime:
    """An ISO 8601 time, or epoch seconds / milliseconds, from 1970 to 9000."""
    try:
        number = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
            parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):
            raise InvalidParameter(
                f"{what} must be an ISO 8601 time or epoch seconds, not {value[:40]!r}."
            ) from None
    else:
        if number > 1e11:  # milliseconds
            number /= 1000
        try:
            parsed = datetime.fromtimestamp(number, UTC)
        except (OverflowError, ValueError, OSError):
            raise InvalidParameter(f"{what} is out of range.") from None
    if not 1970 <= parsed.year <= 9000:
        raise InvalidParameter(f"{what} is out of range.")
    return parsed


def metrics_window(
    start: str | None = None, end: str | None = None, range_label: str | None = None
) -> tuple[datetime, datetime]:
    """The window a request asks for: `start`/`end` (ISO or epoch), else the last
    `range_label` (1h, 24h, 7d) up to now. Checked: start before end, at most MAX_RANGE."""
    now = timezone.now()
    if range_label and not (start or end):
        if range_label not in RANGES:
            raise InvalidParameter(f"range must be one of {', '.join(RANGES)}.")
        return now - RANGES[range_label], now
    end_at = _parse_time(end, "end") if end else now
    start_at = _parse_time(start, "start") if start else end_at - RANGES[DEFAULT_RANGE]
    if start_at >= end_at:
        raise InvalidParameter("start must be before end.")
    if end_at - start_at > MAX_RANGE:
        raise InvalidParameter(f"A window spans at most {MAX_RANGE.days} days.")
    return start_at, end_at


def _floor(moment: datetime, bucket: timedelta) -> datetime:
    seconds = int(bucket.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


class _Acc(MinuteCounts):
    __slots__ = ()

    def add(self, row: tuple) -> None:
        _, requests, errors, server_errors, lat_sum, lat_max, buckets, bin_, bout = row
        self.requests += requests
        self.errors += errors
        self.server_errors += server_errors
        self.lat_sum += lat_sum
        self.lat_max = max(self.lat_max, lat_max)
        self.bin += bin_
        self.bout += bout
        for i, count in enumerate((buckets or [])[:N_BUCKETS]):
            self.buckets[i] += count

    def percentiles(self) -> dict[str, float | None]:
        return {f"p{q}": _round(percentile_from_buckets(self.buckets, q)) for q in PERCENTILES}

    def totals(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "server_errors": self.server_errors,
            "error_rate": _rate(self.errors, self.requests),
            "latency_avg_ms": _round(self.lat_sum / self.requests) if self.requests else None,
            "latency_max_ms": _round(self.lat_max) if self.requests else None,
            **{f"latency_{k}_ms": v for k, v in self.percentiles().items()},
            "bytes_in": self.bin,
            "bytes_out": self.bout,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _rate(errors: int, requests: int) -> float | None:
    return round(errors / requests, 5) if requests else None


def _rows(service: WebService, start: datetime, end: datetime) -> Iterable[tuple]:
    return (
        RequestMinute.objects.filter(service=service, minute__gte=start, minute__lt=end)
        .order_by("minute")
        .values_list(*_FIELDS)
        .iterator(chunk_size=2000)
    )


def _span(moment: datetime, bucket: timedelta, now: datetime) -> float:
    """Minutes a bucket has lasted: all of it, or for the one still under way the part
    that has passed (at least IN_PROGRESS_FLOOR, as telemetry arrives every few seconds),
    so its rate is not shown as a drop."""
    elapsed = min(bucket, max(now - moment, IN_PROGRESS_FLOOR))
    return elapsed.total_seconds() / 60


def service_metrics(
    *, service: WebService, start: datetime, end: datetime, bucket: timedelta | None = None
) -> dict[str, Any]:
    """The window's series, one point per bucket (empty buckets are zeros; their
    percentiles null) and its totals. The window starts at the bucket `start` falls in,
    so the totals are the sum of the series:

    {"start", "end", "bucket_seconds", "totals": {...},
     "series": {"time": [...], "requests": [...], "requests_per_minute": [...],
                "errors": [...], "error_rate": [...], "p50_ms": [...], "p95_ms": [...],
                "p99_ms": [...], "latency_avg_ms": [...], "latency_max_ms": [...]}}"""
    bucket = bucket or bucket_for(end - start)
    first = _floor(start, bucket)
    accs: dict[datetime, _Acc] = {}
    total = _Acc()
    for row in _rows(service, first, end):
        key = _floor(row[0], bucket)
        acc = accs.get(key)
        if acc is None:
            acc = accs[key] = _Acc()
        acc.add(row)
        total.add(row)
    now = timezone.now()
    series: dict[str, list] = {
        name: []
        for name in (
            "time",
            "requests",
            "requests_per_minute",
            "errors",
            "error_rate",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "latency_avg_ms",
            "latency_max_ms",
        )
    }
    moment = first
    while moment < end:
        acc = accs.get(moment) or _Acc()
        series["time"].append(moment.isoformat().replace("+00:00", "Z"))
        series["requests"].append(acc.requests)
        series["requests_per_minute"].append(round(acc.requests / _span(moment, bucket, now), 3))
        series["errors"].append(acc.errors)
        series["error_rate"].append(_rate(acc.errors, acc.requests))
        for name, value in acc.percentiles().items():
            series[f"{name}_ms"].append(value)
        series["latency_avg_ms"].append(
            _round(acc.lat_sum / acc.requests) if acc.requests else None
        )
        series["latency_max_ms"].append(_round(acc.lat_max) if acc.requests else None)
        moment += bucket
    return {
        "start": first.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
        "bucket_seconds": int(bucket.total_seconds()),
        "totals": total.totals(),
        "series": series,
    }


def service_totals(*, service: WebService, start: datetime, end: datetime) -> dict[str, Any]:
    """The window's totals alone (percentiles from the summed buckets)."""
    total = _Acc()
    for row in _rows(service, start, end):
        total.add(row)
    return total.totals()


def requests_since(*, services: Iterable[WebService], since: datetime) -> dict[int, int]:
    """Requests per service id since `since` (the services list's last-hour column), in
    one grouped query."""
    ids = [s.pk for s in services]
    if not ids:
        return {}
    rows = (
        RequestMinute.objects.filter(
            service_id__in=ids, minute__gte=_floor(since, timedelta(minutes=1))
        )
        .values("service_id")
        .annotate(n=Sum("requests"))
    )
    return {row["service_id"]: row["n"] or 0 for row in rows}


def _preview(inputs: dict | None) -> str:
    """The first rows of a sample's inputs, as short text for the table."""
    if not inputs:
        return ""
    data = inputs.get("data") or []
    head = ", ".join(str(row) for row in data[:2])
    text = f"{len(data)} row{'s' if len(data) != 1 else ''}: {head}"
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def recent_samples(*, service: WebService, limit: int = RECENT_SAMPLES) -> list[dict[str, Any]]:
    """The newest sampled requests, each with a short preview of its inputs."""
    rows = (
        RequestSample.objects.filter(service=service)
        .order_by("-time", "-pk")
        .values(
            "time", "request_id", "status", "latency_ms", "bytes_in", "bytes_out", "inputs", "error"
        )[:limit]
    )
    out = []
    for row in rows:
        preview = _preview(row.pop("inputs"))
        out.append({**row, "preview": preview})
    return out
