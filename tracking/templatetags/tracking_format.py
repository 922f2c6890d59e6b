"""Formatting filters for tracking pages: epoch milliseconds, durations, metric values."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from django import template

register = template.Library()


@register.filter
def ms_datetime(value: int | None) -> datetime | None:
    """Epoch milliseconds → aware datetime, for Django's `date` filter."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


@register.filter
def duration(ms: int | None) -> str:
    """1234567 → '20m 34s'; None → '—'."""
    if ms is None:
        return "—"
    seconds = int(ms) // 1000
    if seconds < 1:
        return f"{int(ms)}ms"
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown)


@register.filter
def metric_value(value: Any, is_nan: bool = False) -> str:
    """Compact, exact-enough display of a metric value: 0.912345 → '0.9123'."""
    if is_nan:
        return "NaN"
    if value is None:
        return ""
    number = float(value)
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.6g}" if abs(number) >= 1e-4 else f"{number:.4g}"


@register.filter
def latest(metric: Any) -> str:
    """A LatestMetric row (or None) as a table cell."""
    if metric is None:
        return ""
    return metric_value(metric.value, metric.is_nan)


@register.filter
def get_item(mapping: dict, key: str) -> Any:
    return mapping.get(key) if mapping else None


@register.filter
def cell(row: Any, column: Any) -> Any:
    """A runs-table row's value for a column (metric row, param or tag value)."""
    return row.cell(column)
