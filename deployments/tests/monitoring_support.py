"""What the monitoring and service-page tests share: a web service row with a telemetry
token (as deploying one leaves it, without starting a scoring server: these tests are
about what the studio does with telemetry), and telemetry made by the scoring server's
own aggregator (deployments.scoring.telemetry.Telemetry)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from deployments.models import Image, RequestMinute, RequestSample, WebService
from deployments.scoring.telemetry import N_BUCKETS, bucket_index
from deployments.services.monitoring import telemetry_token_hash
from portal.secrets import encrypt, new_key

DIABETES_COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
DIABETES_SIGNATURE = {
    "inputs": '[{"type": "double", "name": "age", "required": true}, '
    + ", ".join(
        f'{{"type": "double", "name": "{c}", "required": true}}' for c in DIABETES_COLUMNS[1:]
    )
    + "]",
    "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]',
}


def make_image(cast, name: str = "sklearn-image", version: int = 1, **fields) -> Image:
    fields.setdefault("state", Image.State.SUCCEEDED)
    return Image.objects.create(
        workspace=cast.workspace,
        name=name,
        version=version,
        model_uri="runs:/0123456789abcdef0123456789abcdef/model",
        model_name="sklearn-model",
        model_version=version,
        signature=DIABETES_SIGNATURE,
        python_version="3.11",
        requirements=["mlflow==3.1.0", "scikit-learn==1.5.2"],
        created_by=cast.owner,
        **fields,
    )


def make_service(cast, name: str = "diabetes-model-1", image: Image | None = None, **fields):
    """(service, its telemetry token)."""
    token = new_key()
    if image is None:
        image = Image.objects.filter(workspace=cast.workspace).first() or make_image(cast)
    fields.setdefault("state", WebService.State.HEALTHY)
    fields.setdefault("scoring_uri", "http://127.0.0.1:32001/score")
    fields.setdefault("swagger_uri", "http://127.0.0.1:32001/swagger.json")
    service = WebService.objects.create(
        workspace=cast.workspace,
        name=name,
        image=image,
        compute_type=fields.pop("compute_type", WebService.ComputeType.ACI),
        config=fields.pop("config", {"cpu_cores": 1, "memory_gb": 1}),
        description=fields.pop("description", "Diabetes model"),
        tags=fields.pop("tags", {"method": "sklearn"}),
        primary_key=encrypt("primary-" + new_key(8)),
        secondary_key=encrypt("secondary-" + new_key(8)),
        telemetry_token=encrypt(token),
        telemetry_token_hash=telemetry_token_hash(token),
        created_by=cast.owner,
        **fields,
    )
    return service, token


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def buckets_for(latencies: list[float]) -> list[int]:
    counts = [0] * N_BUCKETS
    for latency in latencies:
        counts[bucket_index(latency)] += 1
    return counts


def minute_entry(minute: datetime, latencies: list[float], errors: int = 0, server_errors: int = 0):
    """One minute as a scoring server reports it."""
    return {
        "minute": iso(minute.replace(second=0, microsecond=0)),
        "requests": len(latencies),
        "errors": errors,
        "server_errors": server_errors,
        "latency_sum_ms": round(sum(latencies), 3),
        "latency_max_ms": max(latencies) if latencies else 0.0,
        "latency_buckets": buckets_for(latencies),
        "bytes_in": 180 * len(latencies),
        "bytes_out": 24 * len(latencies),
    }


def seed_traffic(service: WebService, *, minutes: int = 180, seed: int = 7) -> None:
    """A few hours of believable traffic written as rollups and samples (for pages and
    screenshots): a daily-ish wave of requests, a latency tail, a burst of errors."""
    rng = random.Random(seed)
    moment = timezone.now()
    now = moment.replace(second=0, microsecond=0)
    rows, samples = [], []
    for i in range(minutes + 1):  # the last one is the minute under way, in part
        minute = now - timedelta(minutes=minutes - i)
        base = 40 + 25 * ((i % 60) / 60) + rng.randint(0, 12)
        if i == minutes:
            base *= (moment - now).total_seconds() / 60
        latencies = [rng.lognormvariate(1.3, 0.5) for _ in range(int(base))]
        if 60 <= i % 240 < 70:  # a slow spell now and then
            latencies = [latency * 3 for latency in latencies]
        errors = rng.randint(0, 1) + (9 if 120 <= i < 126 else 0)
        errors = min(errors, len(latencies))
        entry = minute_entry(minute, latencies, errors, min(errors, 1 if errors > 3 else 0))
        rows.append(
            RequestMinute(
                service=service,
                minute=minute,
                **{k: v for k, v in entry.items() if k != "minute"},
            )
        )
        if minutes - 12 <= i < minutes:
            for j in range(2):
                row = [round(rng.gauss(0, 0.05), 4) for _ in DIABETES_COLUMNS]
                status = 400 if len(samples) % 5 == 3 else 200
                samples.append(
                    RequestSample(
                        service=service,
                        time=minute + timedelta(seconds=10 + 20 * j),
                        request_id=f"{rng.getrandbits(64):016x}",
                        status=status,
                        latency_ms=round(latencies[j], 2),
                        bytes_in=182,
                        bytes_out=22 if status == 200 else 96,
                        inputs={"columns": DIABETES_COLUMNS, "data": [row]},
                        outputs=[round(rng.uniform(50, 300), 2)] if status == 200 else None,
                        error="" if status == 200 else "Column 'bmi' must be a number.",
                    )
                )
    RequestMinute.objects.bulk_create(rows)
    RequestSample.objects.bulk_create(samples)


def telemetry_token_for(workspace, name: str) -> str:
    """A new telemetry token for the workspace's service `name` (the old one stops)."""
    token = new_key()
    WebService.objects.filter(workspace=workspace, name=name).update(
        telemetry_token=encrypt(token), telemetry_token_hash=telemetry_token_hash(token)
    )
    return token


def telemetry_body() -> dict:
    """A batch as a scoring server sends it: two minutes and a sample."""
    now = timezone.now() - timedelta(minutes=2)
    return {
        "minutes": [minute_entry(now, [2.0, 3.5, 40.0], errors=1), minute_entry(now, [1.0])],
        "samples": [
            {
                "time": iso(now),
                "request_id": "0123456789abcdef",
                "status": 200,
                "latency_ms": 2.0,
                "bytes_in": 180,
                "bytes_out": 20,
                "inputs": {"columns": DIABETES_COLUMNS, "data": [[0.0] * 10]},
                "outputs": [152.1],
                "error": "",
            }
        ],
    }
