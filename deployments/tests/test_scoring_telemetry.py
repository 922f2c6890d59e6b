"""The scoring server's telemetry and auth pieces in-process: the histogram and its
percentiles, bounded memory, the shipper against a slow or failing endpoint (a real
local HTTP server), tokens and key hashes."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time

import pytest

from deployments.scoring import telemetry as telemetry_module
from deployments.scoring.auth import authorized, hash_key, key_matches, mint_token, verify_token
from deployments.scoring.telemetry import (
    LATENCY_BUCKETS_MS,
    MAX_PENDING_SAMPLES,
    Telemetry,
    bucket_index,
    percentile_from_buckets,
)


def test_buckets_are_log_spaced_upper_bounds_with_an_overflow_bucket():
    assert list(LATENCY_BUCKETS_MS) == sorted(LATENCY_BUCKETS_MS)
    assert LATENCY_BUCKETS_MS[0] <= 1 and LATENCY_BUCKETS_MS[-1] >= 10_000
    assert bucket_index(0.1) == 0
    assert bucket_index(0.5) == 0  # an upper bound is inclusive
    assert bucket_index(0.51) == 1
    assert bucket_index(99_999) == len(LATENCY_BUCKETS_MS)  # the +inf bucket


def test_percentile_from_buckets():
    counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    assert percentile_from_buckets(counts, 50) is None
    # 100 requests between 5 and 7.5 ms: every percentile lies in that bucket.
    counts[bucket_index(6)] = 100
    p50 = percentile_from_buckets(counts, 50)
    assert 5 <= p50 <= 7.5
    assert percentile_from_buckets(counts, 99) > p50
    # 90 fast and 10 slow requests: p50 is fast, p95 is slow.
    counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    counts[bucket_index(0.8)] = 90
    counts[bucket_index(400)] = 10
    assert percentile_from_buckets(counts, 50) <= 1
    assert 300 <= percentile_from_buckets(counts, 95) <= 500
    counts[-1] = 1000  # mostly beyond the last bound: the last finite bound
    assert percentile_from_buckets(counts, 99) == LATENCY_BUCKETS_MS[-1]


def test_batch_aggregates_per_minute_and_memory_is_bounded():
    tel = Telemetry("http://127.0.0.1:9/unused", "t", 60, 1.0, 2)
    for i in range(MAX_PENDING_SAMPLES + 50):
        tel.record(200 if i % 10 else 503, 1.5, 100, 20, f"r{i}", None, [1.0, 2.0, 3.0], "", True)
    assert tel.dropped_samples == 50
    batch = tel.take_batch()
    assert tel.take_batch() is None  # taken: the next batch starts empty
    total = sum(m["requests"] for m in batch["minutes"])
    assert total == MAX_PENDING_SAMPLES + 50
    assert sum(m["server_errors"] for m in batch["minutes"]) == (MAX_PENDING_SAMPLES + 50) // 10
    for minute in batch["minutes"]:  # one, or two when a minute turned meanwhile
        assert minute["latency_buckets"][bucket_index(1.5)] == minute["requests"]
    assert len(batch["samples"]) == MAX_PENDING_SAMPLES
    assert batch["samples"][0]["outputs"] == [1.0, 2.0]  # capped at sample_max_rows
    json.dumps(batch)


class _Endpoint:
    """A local HTTP endpoint that answers `status` after `delay` seconds."""

    def __init__(self, status: int, delay: float = 0.0):
        self.hits = 0
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.hits += 1
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/telemetry"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_failing_endpoint_drops_the_batch_after_bounded_retries(monkeypatch, caplog):
    monkeypatch.setattr(telemetry_module, "RETRY_BACKOFF_S", 0.01)
    endpoint = _Endpoint(500)
    try:
        tel = Telemetry(endpoint.url, "t", 60, 1.0, 10)
        tel.record(200, 1.0, 10, 10)
        with caplog.at_level(logging.WARNING, logger="mlstudio_scoring"):
            assert tel.flush() is False  # logged, not raised
        assert endpoint.hits == telemetry_module.SEND_ATTEMPTS
        assert "dropped" in caplog.text
        assert tel.take_batch() is None  # nothing kept: memory stays bounded
    finally:
        endpoint.close()
    rejected = _Endpoint(401)  # a wrong token: no retry
    try:
        tel = Telemetry(rejected.url, "t", 60, 1.0, 10)
        tel.record(200, 1.0, 10, 10)
        assert tel.flush() is False
        assert rejected.hits == 1
    finally:
        rejected.close()
    unreachable = Telemetry("http://127.0.0.1:9/nothing-listens", "t", 60, 1.0, 10)
    unreachable.record(200, 1.0, 10, 10)
    assert unreachable.flush() is False


def test_a_slow_endpoint_never_slows_the_request_path():
    endpoint = _Endpoint(204, delay=1.5)
    tel = Telemetry(endpoint.url, "t", 0.2, 1.0, 10)
    tel.start()
    try:
        tel.record(200, 1.0, 10, 10)
        time.sleep(0.4)  # the shipper is now waiting on the slow endpoint
        worst = 0.0
        for _ in range(2000):
            started = time.perf_counter()
            tel.record(200, 1.0, 10, 10, "r", None, [1.0], "", True)
            worst = max(worst, time.perf_counter() - started)
        assert worst < 0.05
        assert endpoint.hits >= 1
    finally:
        tel.stop(flush=False)
        endpoint.close()


def test_keys_and_tokens():
    hashes = [hash_key("primary"), hash_key("secondary")]
    assert key_matches("primary", hashes) and key_matches("secondary", hashes)
    assert not key_matches("other", hashes) and not key_matches("primary", [])
    token, expires = mint_token("secret", "svc", 60)
    assert expires > time.time() + 50
    assert verify_token("secret", "svc", token)
    assert not verify_token("secret", "other", token)
    assert not verify_token("other-secret", "svc", token)
    assert not verify_token("", "svc", token)
    assert not verify_token("secret", "svc", token + "x")
    assert not verify_token("secret", "svc", "not-a-token")
    past, _ = mint_token("secret", "svc", -1)
    assert not verify_token("secret", "svc", past)
    assert authorized(f"Bearer {token}", hashes, "secret", "svc")
    assert authorized("bearer primary", hashes, "secret", "svc")
    assert not authorized(None, hashes, "secret", "svc")
    assert not authorized("Basic primary", hashes, "secret", "svc")
    assert not authorized("Bearer ", hashes, "secret", "svc")


@pytest.mark.parametrize("rate, expected", [(0.0, 0), (1.0, 500)])
def test_sample_rate(rate, expected):
    tel = Telemetry(None, None, 60, rate, 10)
    assert sum(tel.should_sample() for _ in range(500)) == expected


def test_a_large_batch_goes_as_several_bodies_under_the_limit():
    tel = Telemetry(None, None, 60, 1.0, 100)
    rows = [[float(i)] * 10 for i in range(100)]
    huge = [[1.0] * 1000] * 100  # a sample over half the limit, even capped at 100 rows

    def rendered(data: list) -> object:
        return lambda n: {"columns": None, "data": data[:n]}

    for i in range(40):
        tel.record(200, 2.0, 1000, 100, f"r{i}", rendered(rows), [1.0] * 100, "", True)
    tel.record(200, 2.0, 1000, 100, "huge", rendered(huge), None, "", True)
    batch = tel.take_batch()
    limit = 64 * 1024
    bodies = telemetry_module.split_batch(batch, limit)
    assert len(bodies) > 1
    decoded = [json.loads(body) for body, _, _ in bodies]
    assert all(len(body) <= limit for body, _, _ in bodies)
    assert decoded[0]["minutes"] == batch["minutes"]
    assert all(d["minutes"] == [] for d in decoded[1:])  # counted once
    samples = [s for d in decoded for s in d["samples"]]
    assert [s["request_id"] for s in samples] == [f"r{i}" for i in range(40)] + ["huge"]
    assert samples[-1]["inputs"] is None and samples[-1]["latency_ms"] == 2.0
    assert samples[0]["inputs"]["data"] == rows
