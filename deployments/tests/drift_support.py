"""What the drift tests share: a web service row to monitor, baseline data, and sampled
scoring requests as the telemetry ingestion writes them."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd

from deployments.models import Image, RequestSample, WebService
from portal.models import Workspace

COLUMNS = ["age", "bmi", "bp", "region"]


def make_service(workspace: Workspace, name: str = "diabetes-svc") -> WebService:
    """A service row (no process behind it: drift reads only its samples)."""
    image, _ = Image.objects.get_or_create(
        workspace=workspace,
        name="drift-image",
        version=1,
        defaults={"model_uri": "models:/m/1", "model_name": "m", "state": "Succeeded"},
    )
    service, _ = WebService.objects.get_or_create(
        workspace=workspace,
        name=name,
        defaults={"image": image, "compute_type": "local", "state": "Healthy"},
    )
    return service


def frame(seed: int, n: int, shift: float = 0.0) -> pd.DataFrame:
    """Diabetes-like rows; `shift` moves every numeric column by that many standard
    deviations and tilts the region mix."""
    rng = np.random.default_rng(seed)
    regions = ["north", "south", "east"]
    mix = [0.5, 0.3, 0.2] if shift == 0 else [0.1, 0.2, 0.7]
    return pd.DataFrame(
        {
            "age": rng.normal(50 + 12 * shift, 12, n).round(1),
            "bmi": rng.normal(26 + 4 * shift, 4, n).round(2),
            "bp": rng.normal(95 + 14 * shift, 14, n).round(1),
            "region": rng.choice(regions, n, p=mix),
        }
    )


def csv_bytes(data: pd.DataFrame) -> bytes:
    out = io.StringIO()
    data.to_csv(out, index=False)
    return out.getvalue().encode()


def seed_samples(
    service: WebService,
    start: datetime,
    data: pd.DataFrame,
    *,
    per_request: int = 10,
    spread: timedelta = timedelta(hours=20),
    named: bool = True,
) -> int:
    """Sampled requests of `per_request` rows each, spread over `spread` from `start`."""
    chunks = [data.iloc[i : i + per_request] for i in range(0, len(data), per_request)]
    step = spread / max(len(chunks), 1)
    rows = []
    for index, chunk in enumerate(chunks):
        inputs = {"data": json.loads(chunk.to_json(orient="values"))}
        if named:
            inputs["columns"] = list(chunk.columns)
        rows.append(
            RequestSample(
                service=service,
                time=start + index * step,
                request_id=f"r{index}",
                status=200,
                latency_ms=3.0,
                inputs=inputs,
                outputs=[0.0] * len(chunk),
            )
        )
    # A failed request's inputs are no evidence of drift: never counted.
    rows.append(
        RequestSample(
            service=service,
            time=start,
            status=400,
            latency_ms=1.0,
            inputs={"columns": ["age"], "data": [[1e9]] * 50},
            error="bad input",
        )
    )
    RequestSample.objects.bulk_create(rows)
    return len(data)


class WebhookReceiver:
    """A tiny local HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self, status: int = 204) -> None:
        received: list[dict] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def drift_scope(workspace: Workspace, actor) -> dict[str, str]:
    """Real path values for the drift endpoints (tests/test_api_schema.py): a monitor on
    the workspace's first service (one made here when there is none), a registered
    dataset to create more from, and a backfill job."""
    from deployments.services import drift as svc
    from tracking.services.evaluation_datasets import (
        evaluation_dataset_create,
        evaluation_dataset_records_upsert,
    )

    service = WebService.objects.filter(workspace=workspace).first() or make_service(workspace)
    dataset = evaluation_dataset_create(
        workspace=workspace, name="drift-scope", experiments=[], actor=actor
    )
    records = [{"inputs": row} for row in frame(1, 40).to_dict(orient="records")]
    evaluation_dataset_records_upsert(
        workspace=workspace, dataset_id=dataset.dataset_id, records=records, actor=actor
    )
    monitor = svc.drift_monitor_create(
        actor=actor,
        service=service,
        name="scope-monitor",
        baseline={"kind": "dataset", "dataset_id": dataset.dataset_id},
    )
    start = datetime(2026, 11, 2, tzinfo=UTC)
    job = svc.drift_backfill_request(
        actor=actor, monitor=monitor, start=start, end=start + timedelta(days=2)
    )
    return {
        "service": service.name,
        "monitor": monitor.name,
        "drift_job_id": str(job.pk),
        "drift_dataset_id": dataset.dataset_id,
    }
