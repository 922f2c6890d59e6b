"""How the ``mlstudio`` command writes: JSON or tables on stdout, messages on stderr."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO


class Output:
    """Where a command writes: data on stdout (JSON or a table), messages on stderr."""

    def __init__(self, fmt: str, stdout: TextIO, stderr: TextIO) -> None:
        self.format = fmt
        self.stdout = stdout
        self.stderr = stderr

    def json(self, data: Any) -> None:
        """`data` as indented JSON."""
        self.stdout.write(json.dumps(data, indent=2, default=str) + "\n")

    def table(self, rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
        """`rows` in columns as wide as their widest cell, under `headers`."""
        cells = [[("" if c is None else str(c)) for c in row] for row in rows]
        widths = [len(h) for h in headers]
        for row in cells:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        for row in [list(headers), *cells]:
            line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            self.stdout.write(line.rstrip() + "\n")

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        """One `key  value` line a pair, the values aligned."""
        pairs = list(pairs)
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            if isinstance(value, dict | list):
                value = json.dumps(value, default=str) if value else ""
            self.stdout.write(f"{key.ljust(width)}  {'' if value is None else value}\n")

    def emit(
        self,
        data: Any,
        rows: Callable[[], Iterable[Sequence[Any]]] | None = None,
        headers: Sequence[str] = (),
        fields: Callable[[], Iterable[tuple[str, Any]]] | None = None,
    ) -> None:
        """JSON of `data`, or its table (rows) or its key/value listing (fields)."""
        if self.format == "json":
            self.json(data)
        elif rows is not None:
            self.table(rows(), headers)
        elif fields is not None:
            self.fields(fields())

    def record(self, data: dict[str, Any]) -> None:
        """JSON of `data`, or its key/value listing."""
        self.emit(data, fields=lambda: data.items())

    def message(self, text: str) -> None:
        """A line on stderr."""
        self.stderr.write(text + "\n")


def when(value: Any) -> str:
    """A time as `YYYY-MM-DD HH:MM:SS` UTC, from ms since the epoch or ISO-8601."""
    if value in (None, ""):
        return ""
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000, UTC)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")
