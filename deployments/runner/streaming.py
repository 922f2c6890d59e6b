"""Deliver a pipe's output line by line as it comes, from a reader thread.

Decisions: each complete line is delivered with its newline as soon as it is read; a
partial line (a progress bar redrawn with `\\r`, a prompt) is delivered as it is after
`idle_flush` seconds without a newline, and a line longer than `max_line` characters in
pieces, so a caller never waits on output that has arrived. Bytes are decoded as UTF-8
incrementally (a character split across reads stays whole; invalid bytes become U+FFFD).
A callback that raises is logged once and not called again; the pipe keeps being drained,
so the script never blocks on a full pipe. The callback runs on the reader thread: one
that blocks (a slow database write per line) holds the script up once the pipe's 64 KiB
fill, so a caller that stores lines should buffer them and write in batches.
"""

from __future__ import annotations

import codecs
import logging
import os
import select
import threading
import time
from collections.abc import Callable

__all__ = ["OutputPump"]

logger = logging.getLogger(__name__)


class OutputPump(threading.Thread):
    def __init__(
        self,
        fd: int,
        on_output: Callable[[str], None] | None,
        *,
        idle_flush: float = 1.0,
        max_line: int = 64 * 1024,
    ):
        super().__init__(name="runner-output", daemon=True)
        self.fd = fd
        self.on_output = on_output
        self.idle_flush = idle_flush
        self.max_line = max_line
        self.bytes_read = 0
        self._failed = False

    def _emit(self, text: str) -> None:
        if self.on_output is None or self._failed or not text:
            return
        try:
            self.on_output(text)
        except Exception:
            self._failed = True
            logger.exception("the output callback failed; further output is not delivered")

    def run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        buf = ""
        pending_since = 0.0
        while True:
            timeout = None
            if buf:
                timeout = max(0.0, pending_since + self.idle_flush - time.monotonic())
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                self._emit(buf)
                buf = ""
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            self.bytes_read += len(data)
            had_partial = bool(buf)
            buf += decoder.decode(data)
            *lines, buf = buf.split("\n")
            for line in lines:
                self._emit(line + "\n")
            while len(buf) > self.max_line:
                self._emit(buf[: self.max_line])
                buf = buf[self.max_line :]
            if buf and (lines or not had_partial):
                pending_since = time.monotonic()
        self._emit(buf + decoder.decode(b"", final=True))
