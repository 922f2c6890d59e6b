"""The script's output on its way to the run's log: collected from the sandbox's reader
thread without blocking it, sent in batches (every `interval` seconds, or sooner when
`max_batch` bytes are waiting), each append naming the byte offset it starts at so a
retried batch is not written twice. A line reaches the studio within about `interval`
seconds of being printed."""

from __future__ import annotations

import logging
import threading

from deployments.worker.client import StudioClient, StudioError, StudioRefused

log = logging.getLogger(__name__)

MAX_APPEND = 512 * 1024  # characters a batch carries (the studio takes 1 MiB of bytes)


class LogShipper(threading.Thread):
    def __init__(
        self,
        client: StudioClient,
        job_id: str,
        offset: int,
        *,
        interval: float = 0.5,
        max_buffer: int = 8 * 1024 * 1024,
    ):
        super().__init__(name=f"log-{job_id[:8]}", daemon=True)
        self.client = client
        self.job_id = job_id
        self.offset = offset
        self.interval = interval
        self.max_buffer = max_buffer
        self._parts: list[str] = []
        self._size = 0
        self._dropped = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._broken = False
        self.tail_lines: list[str] = []

    def write(self, text: str) -> None:
        """Called per line from the sandbox's reader thread: never blocks on the network."""
        if not text:
            return
        with self._lock:
            if self._size + len(text) > self.max_buffer:
                self._dropped += len(text)  # the studio is far behind: drop, say so later
                return
            self._parts.append(text)
            self._size += len(text)
            self.tail_lines = (self.tail_lines + text.splitlines())[-40:]
        if self._size >= MAX_APPEND:
            self._wake.set()

    def tail(self, lines: int = 20) -> str:
        with self._lock:
            return "\n".join(self.tail_lines[-lines:])

    def run(self) -> None:
        while not self._halt.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self._send()
        self._send()

    def close(self) -> None:
        """Send what is left and stop."""
        self._halt.set()
        self._wake.set()
        self.join(timeout=60)

    def _take(self) -> str:
        with self._lock:
            if self._dropped:
                self._parts.append(
                    f"\n[mlstudio] {self._dropped} characters of output were dropped: "
                    "the studio could not keep up.\n"
                )
                self._dropped = 0
            text = "".join(self._parts)
            self._parts = []
            self._size = 0
            return text

    def _send(self) -> None:
        text = self._take()
        while text and not self._broken:
            batch, text = text[:MAX_APPEND], text[MAX_APPEND:]
            try:
                self.offset = self.client.append_log(self.job_id, self.offset, batch)
            except StudioRefused as exc:
                # The log is full, or the job is gone: the script carries on unlogged.
                log.warning("job %s: the studio refused its log: %s", self.job_id, exc)
                self._broken = True
            except StudioError as exc:
                log.warning("job %s: log batch not sent: %s", self.job_id, exc)
                with self._lock:  # try again with the next batch
                    self._parts.insert(0, batch + text)
                    self._size += len(batch) + len(text)
                return
