"""Web service telemetry: the scoring server's batches over HTTP (its own aggregator and
shipper against a live studio), the set-based rollup upsert (counts and buckets summed,
the maximum kept) on whichever database the tests run on, percentiles read from summed
buckets, the token and body checks, the metrics API, and the retention sweep."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments import selectors_monitoring as monitoring
from deployments.models import RequestMinute, RequestSample, WebService
from deployments.scoring.telemetry import LATENCY_BUCKETS_MS, N_BUCKETS, Telemetry
from deployments.services.monitoring import MAX_SAMPLES, telemetry_ingest, telemetry_parse
from deployments.tests.monitoring_support import (
    DIABETES_COLUMNS,
    buckets_for,
    iso,
    make_service,
    minute_entry,
    telemetry_body,
)
from portal.errors import NotFound

URL = "/api/v1/service-telemetry"


def post(client: Client, token: str | None, body, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers, **extra)


def this_minute():
    return timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)


def stored(service) -> list[RequestMinute]:
    return list(RequestMinute.objects.filter(service=service).order_by("minute"))


# --- The scoring server's own shipper against a live studio ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_scoring_servers_batches_land_as_rollups_and_samples(live_server, cast):
    service, token = make_service(cast)
    shipper = Telemetry(url=live_server.url + URL, token=token, sample_rate=1.0)
    latencies = [0.4, 0.9, 1.7, 2.5, 4.0, 6.0, 9.0, 12.0, 45.0, 220.0, 3000.0, 20000.0]
    statuses = [200] * 9 + [400, 401, 503]
    for i, (latency, status) in enumerate(zip(latencies, statuses, strict=True)):
        row = [0.01 * i] * len(DIABETES_COLUMNS)
        shipper.record(
            status,
            latency,
            bytes_in=150 + i,
            bytes_out=20,
            request_id=f"req-{i}",
            inputs=lambda max_rows, row=row: {
                "columns": DIABETES_COLUMNS,
                "data": [row][:max_rows],
            },
            outputs=[100.0 + i] if status == 200 else None,
            error="" if status == 200 else "bad input",
            sample=True,
        )
    assert shipper.flush() is True  # 204 from the studio
    # A second batch: more of the same minute(s) adds to what is stored.
    for latency in (3.0, 3.0, 80.0):
        shipper.record(200, latency, bytes_in=100, bytes_out=10)
    assert shipper.flush() is True

    rows = stored(service)
    assert 1 <= len(rows) <= 3  # the batches may straddle a minute boundary
    every = [*latencies, 3.0, 3.0, 80.0]
    assert sum(r.requests for r in rows) == len(every)
    assert sum(r.errors for r in rows) == 3 and sum(r.server_errors for r in rows) == 1
    assert sum(r.bytes_in for r in rows) == sum(150 + i for i in range(12)) + 300
    assert max(r.latency_max_ms for r in rows) == 20000.0
    assert sum(r.latency_sum_ms for r in rows) == pytest.approx(sum(every))
    summed = [sum(r.latency_buckets[i] for r in rows) for i in range(N_BUCKETS)]
    assert summed == buckets_for(every)
    assert summed[-1] == 1  # 20 s is past the last bound: the +inf bucket

    samples = list(RequestSample.objects.filter(service=service).order_by("request_id"))
    assert len(samples) == 12
    first = next(s for s in samples if s.request_id == "req-1")
    assert first.status == 200 and first.latency_ms == pytest.approx(0.9)
    assert first.inputs == {"columns": DIABETES_COLUMNS, "data": [[0.01] * 10]}
    assert first.outputs == [101.0]
    failed = next(s for s in samples if s.request_id == "req-11")
    assert failed.status == 503 and failed.error == "bad input" and failed.outputs is None


@pytest.mark.django_db(transaction=True)
def test_a_wrong_token_is_refused_by_the_live_studio(live_server, cast):
    service, _ = make_service(cast)
    shipper = Telemetry(url=live_server.url + URL, token="not-the-token")
    shipper.record(200, 3.0, 10, 10)
    assert shipper.flush() is False  # 401: dropped, not retried
    assert not RequestMinute.objects.filter(service=service).exists()


# --- The upsert -----------------------------------------------------------------------------


def test_reports_of_one_minute_are_summed_and_the_maximum_kept(cast):
    service, token = make_service(cast)
    other, other_token = make_service(cast, name="other-service")
    client = Client()
    minute = this_minute()
    first = minute_entry(minute, [1.0, 2.0, 8.0], errors=1)
    second = minute_entry(minute, [4.0, 600.0], errors=2, server_errors=1)
    later = minute_entry(minute + timedelta(minutes=1), [3.0])
    # Two reports of one minute in one batch, then one more in a later batch.
    assert post(client, token, {"minutes": [first, later, first]}).status_code == 204
    assert post(client, token, {"minutes": [second]}).status_code == 204
    assert post(client, other_token, {"minutes": [second]}).status_code == 204

    rows = stored(service)
    assert [r.minute for r in rows] == [minute, minute + timedelta(minutes=1)]
    row = rows[0]
    assert (row.requests, row.errors, row.server_errors) == (8, 4, 1)
    assert row.latency_sum_ms == pytest.approx(2 * 11.0 + 604.0)
    assert row.latency_max_ms == 600.0
    assert row.latency_buckets == buckets_for([1.0, 2.0, 8.0] * 2 + [4.0, 600.0])
    assert (row.bytes_in, row.bytes_out) == (180 * 8, 24 * 8)
    assert rows[1].requests == 1 and rows[1].latency_buckets == buckets_for([3.0])
    # The other service's minute is its own.
    assert [(r.requests, r.latency_max_ms) for r in stored(other)] == [(2, 600.0)]


def test_a_smaller_maximum_later_keeps_the_larger(cast):
    service, token = make_service(cast)
    client = Client()
    minute = this_minute()
    post(client, token, {"minutes": [minute_entry(minute, [900.0])]})
    post(client, token, {"minutes": [minute_entry(minute, [2.0])]})
    (row,) = stored(service)
    assert row.latency_max_ms == 900.0 and row.requests == 2


def test_many_minutes_in_one_batch(cast):
    service, token = make_service(cast)
    start = this_minute() - timedelta(hours=12)
    minutes = [minute_entry(start + timedelta(minutes=i), [5.0] * (i % 3 + 1)) for i in range(700)]
    assert post(Client(), token, {"minutes": minutes, "samples": []}).status_code == 204
    assert RequestMinute.objects.filter(service=service).count() == 700
    total = RequestMinute.objects.filter(service=service).aggregate(n=Sum("requests"))["n"]
    assert total == sum(i % 3 + 1 for i in range(700))


# --- Percentiles ------------------------------------------------------------------------------


def test_percentiles_come_from_the_summed_buckets(cast):
    """90 requests in the (5, 7.5] ms bucket and 10 in (100, 150], spread over two
    minutes and two batches: p50 = 5 + 2.5 × 50/90, p95 = 100 + 50 × 5/10,
    p99 = 100 + 50 × 9/10 (linear inside the bucket the rank falls in)."""
    assert LATENCY_BUCKETS_MS[4:6] == (5, 7.5) and LATENCY_BUCKETS_MS[12:14] == (100, 150)
    service, token = make_service(cast)
    client = Client()
    minute = this_minute()
    post(client, token, {"minutes": [minute_entry(minute, [6.0] * 60 + [120.0] * 4)]})
    post(
        client,
        token,
        {"minutes": [minute_entry(minute + timedelta(minutes=1), [7.0] * 30 + [140.0] * 6)]},
    )
    start, end = minute - timedelta(minutes=30), minute + timedelta(minutes=30)
    totals = monitoring.service_totals(service=service, start=start, end=end)
    assert totals["requests"] == 100
    assert totals["latency_p50_ms"] == pytest.approx(5 + 2.5 * 50 / 90, abs=1e-3)
    assert totals["latency_p95_ms"] == pytest.approx(125.0)
    assert totals["latency_p99_ms"] == pytest.approx(145.0)
    assert totals["latency_max_ms"] == 140.0
    assert totals["latency_avg_ms"] == pytest.approx((360 + 480 + 210 + 840) / 100)

    # Per minute, each minute's own buckets.
    data = monitoring.service_metrics(
        service=service, start=start, end=end, bucket=timedelta(minutes=1)
    )
    series = data["series"]
    at = series["time"].index(iso(minute))
    assert series["requests"][at : at + 2] == [64, 36]
    assert series["p95_ms"][at] == pytest.approx(100 + 50 * (60.8 - 60) / 4)
    assert series["p50_ms"][at + 1] == pytest.approx(5 + 2.5 * 18 / 30)
    # Empty minutes are zeros with no percentile, so a chart shows the gap.
    assert series["requests"][0] == 0 and series["p50_ms"][0] is None
    assert len(series["time"]) == 60 and data["bucket_seconds"] == 60


def test_long_windows_are_read_in_coarser_buckets(cast):
    service, token = make_service(cast)
    minute = this_minute() - timedelta(days=2)  # in a bucket that has ended
    entries = [minute_entry(minute - timedelta(minutes=i), [10.0, 10.0]) for i in range(10)]
    post(Client(), token, {"minutes": entries})
    end = timezone.now()
    data = monitoring.service_metrics(service=service, start=end - timedelta(days=7), end=end)
    assert data["bucket_seconds"] == 30 * 60
    assert 336 <= len(data["series"]["time"]) <= 337
    assert sum(data["series"]["requests"]) == 20 == data["totals"]["requests"]
    # requests_per_minute is the bucket's average rate.
    busiest = max(data["series"]["requests"])
    at = data["series"]["requests"].index(busiest)
    assert data["series"]["requests_per_minute"][at] == pytest.approx(busiest / 30, abs=1e-3)


def test_the_bucket_under_way_shows_its_rate_so_far(cast):
    """Ten requests 2 minutes into a 30-minute bucket are 5 a minute, not 1/3."""
    service, token = make_service(cast)
    now = timezone.now()
    data = monitoring.service_metrics(
        service=service, start=now - timedelta(days=7), end=now, bucket=timedelta(minutes=30)
    )
    bucket_start = datetime.fromisoformat(data["series"]["time"][-1])
    elapsed = (now - bucket_start).total_seconds() / 60
    post(Client(), token, {"minutes": [minute_entry(bucket_start, [1.0] * 10)]})
    data = monitoring.service_metrics(
        service=service, start=now - timedelta(days=7), end=now, bucket=timedelta(minutes=30)
    )
    assert data["series"]["requests"][-1] == 10
    expected = 10 / max(elapsed, monitoring.IN_PROGRESS_FLOOR.total_seconds() / 60)
    assert data["series"]["requests_per_minute"][-1] == pytest.approx(expected, rel=0.02)


# --- What is refused ------------------------------------------------------------------------


def test_a_missing_or_wrong_token_is_401(cast):
    _, token = make_service(cast)
    client = Client()
    body = {"minutes": [minute_entry(this_minute(), [1.0])]}
    for bad in (None, "wrong", token + "x", ""):
        response = post(client, bad, body)
        assert response.status_code == 401, bad
        assert response.json()["error_code"] == "UNAUTHENTICATED"
        assert token not in response.content.decode()
    # A user's session is not a telemetry token.
    client.force_login(cast.owner)
    assert post(client, None, body).status_code == 401
    assert not RequestMinute.objects.exists()


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"not json", "JSON object"),
        (b'{"minutes": [{"minute": NaN}]}', "JSON object"),
        ([1, 2], "body"),
        ({"minutes": {}}, "lists"),
        ({"minutes": [{"minute": "yesterday"}]}, "minutes[0]"),
        ({"minutes": [{"requests": -1}]}, "minutes[0].requests"),
        ({"minutes": [{"requests": 1.5}]}, "minutes[0].requests"),
        ({"minutes": [{"requests": 1, "errors": 2}]}, "errors"),
        ({"minutes": [{"latency_buckets": [1, 2]}]}, "latency_buckets"),
        ({"minutes": [{"latency_max_ms": "slow"}]}, "latency_max_ms"),
        ({"minutes": [{"minute": "2999-01-01T00:00:00Z"}]}, "future"),
        ({"minutes": [{"minute": "0001-01-01T00:00:00+14:00"}]}, "minutes[0].minute"),
        ({"minutes": [{"minute": "1999-12-31T00:00:00Z"}]}, "before 2000"),
        ({"minutes": [{"latency_sum_ms": 1e300}]}, "latency_sum_ms"),
        ({"minutes": [{"requests": 10**12, "latency_buckets": [0] * N_BUCKETS}]}, "requests"),
        ({"samples": [{"status": 99}]}, "samples[0].status"),
        ({"samples": [{"status": 200, "latency_ms": 1, "time": "x"}]}, "samples[0].time"),
        ({"samples": [{"inputs": {"columns": "age", "data": []}}]}, "columns"),
        ({"samples": [{}] * (MAX_SAMPLES + 1)}, "at most"),
    ],
)
def test_a_bad_body_is_400_naming_the_field(cast, body, names):
    _, token = make_service(cast)
    if isinstance(body, dict):  # fill in the rest, so only the named part is wrong
        full = minute_entry(this_minute(), [1.0])
        body = {
            "minutes": [{**full, **m} for m in body.get("minutes", [])]
            if isinstance(body.get("minutes"), list)
            else body.get("minutes", []),
            "samples": [
                {"time": iso(this_minute()), "status": 200, "latency_ms": 1.0, **s}
                for s in body.get("samples", [])
            ],
        }
    response = post(Client(), token, body)
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert names in answer["message"] and len(answer["message"]) < 200
    assert not RequestMinute.objects.exists() and not RequestSample.objects.exists()


def test_nul_characters_are_dropped_and_deep_nesting_refused(cast):
    """PostgreSQL's jsonb and text refuse NUL; a sample carrying one is kept without it."""
    service, token = make_service(cast)
    sample = {
        "time": iso(this_minute()),
        "status": 400,
        "latency_ms": 1.0,
        "request_id": "id\u0000x",
        "error": "bad\u0000 input",
        "inputs": {"columns": ["a\u0000"], "data": [["x\u0000y"]]},
        "outputs": {"k\u0000": ["v\u0000"]},
    }
    assert "\\u0000" in json.dumps(sample)  # sent as JSON escapes
    assert post(Client(), token, {"samples": [sample]}).status_code == 204
    stored_sample = RequestSample.objects.get(service=service)
    assert (stored_sample.request_id, stored_sample.error) == ("idx", "bad input")
    assert stored_sample.inputs == {"columns": ["a"], "data": [["xy"]]}
    assert stored_sample.outputs == {"k": ["v"]}

    deep: list = []
    for _ in range(40):
        deep = [deep]
    response = post(Client(), token, {"samples": [{**sample, "outputs": deep}]})
    assert response.status_code == 400 and "nested deeper" in response.json()["message"]


def test_a_body_past_the_limit_is_413(cast, settings):
    settings.MONITORING_TELEMETRY_MAX_BYTES = 64 * 1024
    _, token = make_service(cast)
    sample = {
        "time": iso(this_minute()),
        "status": 200,
        "latency_ms": 1.0,
        "inputs": {"columns": ["x"], "data": [["y" * 1000]] * 80},
    }
    response = post(Client(), token, {"samples": [sample]})
    assert response.status_code == 413
    assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_minutes_and_samples_past_retention_are_dropped(cast, settings):
    settings.MONITORING_RETENTION_DAYS = 3
    settings.MONITORING_SAMPLE_RETENTION_DAYS = 1
    service, token = make_service(cast)
    old = timezone.now() - timedelta(days=4)
    older_sample = timezone.now() - timedelta(days=2)
    body = {
        "minutes": [minute_entry(old, [1.0]), minute_entry(this_minute(), [1.0])],
        "samples": [
            {"time": iso(older_sample), "status": 200, "latency_ms": 1.0},
            {"time": iso(this_minute()), "status": 200, "latency_ms": 1.0},
        ],
    }
    assert post(Client(), token, body).status_code == 204
    assert [r.minute for r in stored(service)] == [this_minute()]
    assert RequestSample.objects.filter(service=service).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_for_a_service_deleted_meanwhile_is_404(cast):
    """Its delete job removed the row between the token check and the write."""
    service, _ = make_service(cast)
    batch = telemetry_parse(
        {
            "minutes": [minute_entry(this_minute(), [1.0])],
            "samples": [telemetry_body()["samples"][0]],
        }
    )
    WebService.objects.filter(pk=service.pk).delete()
    with pytest.raises(NotFound):
        telemetry_ingest(service=service, batch=batch)
    assert not RequestMinute.objects.exists() and not RequestSample.objects.exists()


# --- Retention ------------------------------------------------------------------------------


def test_the_beat_task_deletes_rows_past_retention(cast, settings):
    from deployments import tasks

    settings.MONITORING_RETENTION_DAYS = 90
    settings.MONITORING_SAMPLE_RETENTION_DAYS = 30
    assert settings.CELERY_BEAT_SCHEDULE["monitoring-retention"]["task"] == (
        "deployments.tasks.monitoring_retention"
    )
    service, _ = make_service(cast)
    now = timezone.now().replace(second=0, microsecond=0)
    for days in (1, 29, 31, 89, 91, 200):
        moment = now - timedelta(days=days)
        RequestMinute.objects.create(
            service=service, minute=moment, requests=1, latency_buckets=[0] * N_BUCKETS
        )
        RequestSample.objects.create(service=service, time=moment, status=200, latency_ms=1.0)
    result = tasks.monitoring_retention.apply().get()
    assert result == {"minutes": 2, "samples": 4}
    kept = {(now - m).days for m in RequestMinute.objects.values_list("minute", flat=True)}
    assert kept == {1, 29, 31, 89}
    kept = {(now - t).days for t in RequestSample.objects.values_list("time", flat=True)}
    assert kept == {1, 29}


# --- The metrics API ------------------------------------------------------------------------


def metrics_url(cast, name: str) -> str:
    return reverse(
        "api-service-metrics",
        kwargs={
            "subscription_id": cast.subscription.id,
            "resource_group": cast.resource_group.name,
            "workspace": cast.workspace.name,
            "service": name,
        },
    )


def test_the_metrics_api_answers_series_and_totals(cast):
    service, token = make_service(cast)
    minute = this_minute()
    post(Client(), token, {"minutes": [minute_entry(minute, [2.0, 2.0, 9.0], errors=1)]})
    client = Client()
    client.force_login(cast.reader)
    answer = client.get(metrics_url(cast, service.name), {"range": "1h"})
    assert answer.status_code == 200
    data = answer.json()
    assert data["service"] == service.name and data["bucket_seconds"] == 60
    assert data["totals"]["requests"] == 3
    assert data["totals"]["error_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert set(data["series"]) >= {"time", "requests_per_minute", "p50_ms", "p95_ms", "p99_ms"}
    assert sum(data["series"]["requests"]) == 3

    start, end = iso(minute - timedelta(minutes=2)), iso(minute + timedelta(minutes=2))
    window = client.get(metrics_url(cast, service.name), {"start": start, "end": end}).json()
    assert len(window["series"]["time"]) == 4 and window["totals"]["requests"] == 3
    epoch = client.get(
        metrics_url(cast, service.name),
        {"start": int((minute + timedelta(minutes=1)).timestamp())},
    ).json()
    assert epoch["totals"]["requests"] == 0

    for query, message in (
        ({"range": "2y"}, "range"),
        ({"start": end, "end": start}, "before"),
        ({"start": "soon"}, "start"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "at most"),
    ):
        bad = client.get(metrics_url(cast, service.name), query)
        assert bad.status_code == 400 and message in bad.json()["message"], query
    assert client.get(metrics_url(cast, "no-such-service")).status_code == 404


@pytest.mark.parametrize(("who", "expected"), [("owner", 200), ("reader", 200), ("outsider", 404)])
def test_who_may_read_metrics(cast, who, expected):
    service, _ = make_service(cast)
    client = Client()
    client.force_login(cast.user(who))
    assert client.get(metrics_url(cast, service.name)).status_code == expected
    assert Client().get(metrics_url(cast, service.name)).status_code == 401
