"""Per-request telemetry: per-minute rollups and sampled requests, shipped in batches.

`record()` is on the request path and only adds to counters under a lock (and keeps
references to a sampled request's parsed rows and predictions); everything that costs —
turning samples into JSON, the HTTP POST — happens in the shipper thread. Each batch holds
what was recorded since the previous one: the studio adds a batch's minute entries to the
rows it has (a minute may arrive in several batches). Memory is bounded: at most
MAX_PENDING_MINUTES minute entries and MAX_PENDING_SAMPLES samples wait; a batch that
cannot be sent after SEND_ATTEMPTS tries is dropped and logged.
"""

from __future__ import annotations

import bisect
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("mlstudio_scoring")

# Upper bounds of the latency histogram's buckets in ms, log-spaced; a last bucket (+inf)
# follows, so a histogram has len(LATENCY_BUCKETS_MS) + 1 counts. The studio sums them over
# a window and reads percentiles with percentile_from_buckets.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000,
    5000, 10000,
)  # fmt: skip
N_BUCKETS = len(LATENCY_BUCKETS_MS) + 1

MAX_PENDING_MINUTES = 120
MAX_PENDING_SAMPLES = 1000
MAX_ERROR_CHARS = 200
SEND_ATTEMPTS = 3
SEND_TIMEOUT_S = 10
RETRY_BACKOFF_S = 0.5  # doubled after each failed attempt
# One POST's body at most (the studio refuses more than MONITORING_TELEMETRY_MAX_BYTES,
# 4 MiB by default): a larger batch goes as several, the minutes in the first; a sample
# larger than half of it goes without its inputs and outputs.
MAX_BODY_BYTES = 1024 * 1024


def bucket_index(latency_ms: float) -> int:
    """The bucket a latency falls in: the first whose upper bound is ≥ it."""
    return bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)


def percentile_from_buckets(buckets: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) of a histogram over LATENCY_BUCKETS_MS, in ms.

    Linear within the bucket the rank falls in (from the previous bound, 0 for the first);
    a rank in the +inf bucket answers the last finite bound. None for an empty histogram."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = min(max(q, 0.0), 100.0) / 100.0 * total
    seen = 0.0
    for i, count in enumerate(buckets):
        if count <= 0:
            continue
        if seen + count >= rank:
            if i >= len(LATENCY_BUCKETS_MS):
                return float(LATENCY_BUCKETS_MS[-1])
            lower = LATENCY_BUCKETS_MS[i - 1] if i > 0 else 0.0
            upper = LATENCY_BUCKETS_MS[i]
            fraction = (rank - seen) / count
            return float(lower + (upper - lower) * fraction)
        seen += count
    return float(LATENCY_BUCKETS_MS[-1])


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MinuteCounts:
    """A minute's (or any bucket's) request figures: counts, sizes, latency sum, max and
    histogram. The scoring server counts into it; the studio sums rollups into it."""

    __slots__ = (
        "bin",
        "bout",
        "buckets",
        "errors",
        "lat_max",
        "lat_sum",
        "requests",
        "server_errors",
    )

    def __init__(self) -> None:
        self.requests = self.errors = self.server_errors = self.bin = self.bout = 0
        self.lat_sum = self.lat_max = 0.0
        self.buckets = [0] * N_BUCKETS

    def as_dict(self, minute: int) -> dict:
        return {
            "minute": datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:00Z"),
            "requests": self.requests,
            "errors": self.errors,
            "server_errors": self.server_errors,
            "latency_sum_ms": round(self.lat_sum, 3),
            "latency_max_ms": round(self.lat_max, 3),
            "latency_buckets": list(self.buckets),
            "bytes_in": self.bin,
            "bytes_out": self.bout,
        }


# A sample as recorded: (time, request_id, status, latency_ms, bytes_in, bytes_out,
# inputs (a callable made at request time that renders {"columns","data"} later, or None),
# outputs (the raw predictions or None), error).
_Sample = tuple[float, str, int, float, int, int, Callable[[int], Any] | None, Any, str]


class Telemetry:
    """The in-memory aggregate and its shipper thread."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        interval_s: float = 5.0,
        sample_rate: float = 1.0,
        sample_max_rows: int = 100,
    ):
        self._lock = threading.Lock()
        self._minutes: dict[int, MinuteCounts] = {}
        self._samples: list[_Sample] = []
        self.dropped_samples = 0
        self.configure(url, token, interval_s, sample_rate, sample_max_rows)
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def configure(
        self,
        url: str | None,
        token: str | None,
        interval_s: float,
        sample_rate: float,
        sample_max_rows: int,
    ) -> None:
        """Take a (re)loaded config's telemetry settings."""
        if url and not url.lower().startswith(("http://", "https://")):
            log.warning("telemetry_url is not http(s); telemetry is off")
            url = None
        self.url, self.token = url, token
        self.interval_s = max(0.2, float(interval_s))
        self.sample_rate = sample_rate
        self.sample_max_rows = sample_max_rows

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    # --- the request path -------------------------------------------------------------

    def should_sample(self) -> bool:
        rate = self.sample_rate
        return rate >= 1.0 or (rate > 0.0 and random.random() < rate)  # noqa: S311 - not a secret

    def record(
        self,
        status: int,
        latency_ms: float,
        bytes_in: int,
        bytes_out: int,
        request_id: str = "",
        inputs: Callable[[int], Any] | None = None,
        outputs: Any = None,
        error: str = "",
        sample: bool = False,
    ) -> None:
        now = time.time()
        minute = int(now // 60)
        with self._lock:
            entry = self._minutes.get(minute)
            if entry is None:
                if len(self._minutes) >= MAX_PENDING_MINUTES:  # the studio is unreachable
                    self._minutes.pop(min(self._minutes))
                entry = self._minutes[minute] = MinuteCounts()
            entry.requests += 1
            if status >= 400:
                entry.errors += 1
                if status >= 500:
                    entry.server_errors += 1
            entry.lat_sum += latency_ms
            if latency_ms > entry.lat_max:
                entry.lat_max = latency_ms
            entry.buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
            entry.bin += bytes_in
            entry.bout += bytes_out
            if sample:
                if len(self._samples) < MAX_PENDING_SAMPLES:
                    self._samples.append(
                        (now, request_id, status, latency_ms, bytes_in, bytes_out, inputs,
                         outputs, error[:MAX_ERROR_CHARS])
                    )  # fmt: skip
                else:
                    self.dropped_samples += 1

    # --- the shipper --------------------------------------------------------------------

    def take_batch(self) -> dict | None:
        """What was recorded since the last batch, as the body to POST (None: nothing)."""
        with self._lock:
            minutes, self._minutes = self._minutes, {}
            samples, self._samples = self._samples, []
        if not minutes and not samples:
            return None
        return {
            "minutes": [minutes[m].as_dict(m) for m in sorted(minutes)],
            "samples": [self._render(s) for s in samples],
        }

    def _render(self, sample: _Sample) -> dict:
        when, request_id, status, latency, bytes_in, bytes_out, inputs, outputs, error = sample
        rendered_inputs = rendered_outputs = None
        try:
            rendered_inputs = inputs(self.sample_max_rows) if inputs is not None else None
            rendered_outputs = (
                jsonable_rows(outputs, self.sample_max_rows) if outputs is not None else None
            )
        except Exception as exc:  # a sample is best effort; the counts still go
            log.debug("sample not rendered: %s", exc)
        return {
            "time": _iso(when),
            "request_id": request_id,
            "status": status,
            "latency_ms": round(latency, 3),
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "inputs": rendered_inputs,
            "outputs": rendered_outputs,
            "error": error,
        }

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="telemetry-shipper", daemon=True)
            self._thread.start()

    def stop(self, flush: bool = True) -> None:
        """Stop the shipper; with `flush`, send what is pending first (on shutdown)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=SEND_TIMEOUT_S * SEND_ATTEMPTS + 5)
            self._thread = None
        if flush:
            self.flush()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval_s)
            if self._stop:
                break
            self.flush()

    def flush(self) -> bool:
        """Send one batch now; True when sent (or nothing to send)."""
        if not self.url:
            self.take_batch()  # nowhere to send: keep memory flat
            return True
        try:
            batch = self.take_batch()
        except Exception:  # never let the shipper die
            log.exception("telemetry batch could not be built")
            return False
        if batch is None:
            return True
        sent = True
        for body, minutes, samples in split_batch(batch):
            sent = self._send(body, minutes, samples) and sent
        return sent

    def _send(self, body: bytes, minutes: int, samples: int) -> bool:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(SEND_ATTEMPTS):
            # The URL is checked to be http(s) in configure().
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as response:  # noqa: S310
                    response.read()
                return True
            except urllib.error.HTTPError as exc:
                if 400 <= exc.code < 500 and exc.code != 429:  # retrying will not help
                    log.warning("telemetry batch rejected: HTTP %s; dropped", exc.code)
                    return False
                problem = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                problem = str(exc) or type(exc).__name__
            if attempt + 1 < SEND_ATTEMPTS and not self._stop:
                time.sleep(RETRY_BACKOFF_S * 2**attempt)
        log.warning(
            "telemetry batch not sent after %d attempts (%s); dropped %d minutes, %d samples",
            SEND_ATTEMPTS,
            problem,
            minutes,
            samples,
        )
        return False


def split_batch(batch: dict, limit: int | None = None) -> list[tuple[bytes, int, int]]:
    """The batch as POST bodies of at most `limit` bytes: (body, minutes, samples) each."""
    limit = limit or MAX_BODY_BYTES
    minutes = batch["minutes"]
    encoded = []
    for sample in batch["samples"]:
        data = dumps(sample)
        if len(data) > limit // 2:  # keep the request's figures, not its rows
            data = dumps({**sample, "inputs": None, "outputs": None})
        encoded.append(data)
    bodies: list[tuple[bytes, int, int]] = []
    head, chunk, size = dumps(minutes), [], 0
    for data in encoded:
        if chunk and len(head) + size + len(data) + 32 > limit:
            bodies.append((_body(head, chunk), len(minutes) if not bodies else 0, len(chunk)))
            head, chunk, size = b"[]", [], 0
        chunk.append(data)
        size += len(data) + 1
    if chunk or not bodies:
        bodies.append((_body(head, chunk), len(minutes) if not bodies else 0, len(chunk)))
    return bodies


def _body(minutes: bytes, samples: list[bytes]) -> bytes:
    return b'{"minutes":' + minutes + b',"samples":[' + b",".join(samples) + b"]}"


def jsonable_rows(value: Any, max_rows: int) -> Any:
    """Predictions (numpy array, pandas object, list) as JSON-able rows, at most max_rows."""
    if hasattr(value, "iloc"):  # pandas
        value = value.iloc[:max_rows]
        if hasattr(value, "columns"):
            return value.to_dict(orient="records")
        return value.tolist()
    if hasattr(value, "tolist"):  # numpy
        return value[:max_rows].tolist()
    if isinstance(value, list | tuple):
        return list(value[:max_rows])
    if isinstance(value, dict):
        return {k: jsonable_rows(v, max_rows) for k, v in value.items()}
    return value


try:  # orjson when installed: faster, and it knows numpy
    import orjson

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=_default)

except ImportError:  # pragma: no cover - orjson ships with the studio
    import json

    def dumps(value: Any) -> bytes:
        return json.dumps(value, default=_default, allow_nan=True).encode()


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    return str(value)
