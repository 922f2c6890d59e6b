"""How tracking values are written in answers, shared by selectors and both APIs."""

from __future__ import annotations

import math


def json_float(value: float | None, is_nan: bool = False) -> float | str | None:
    """A double as protobuf's JSON writes it: NaN and ±inf as strings."""
    if is_nan:
        return "NaN"
    if value is None:
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if math.isnan(value):
        return "NaN"
    return value
