"""Helpers for the /api/v1 tracking tests: URLs of the cast's workspace, and data written
through the real services and store; clients and the error shape are in portal.tests.api."""

from __future__ import annotations

import math
from urllib.parse import urlencode

from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tracking.artifacts import artifact_uri_path, join, store_for
from tracking.models import Run
from tracking.services.runs import MetricIn, run_log_batch


def isolate(settings, tmp_path) -> None:
    """Artifact roots under tmp_path; a fresh throttle budget for every test."""
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")
    cache.clear()


def url(cast, name: str, query: dict | None = None, workspace=None, **kwargs) -> str:
    ws = workspace or cast.workspace
    kwargs.update(
        subscription_id=ws.resource_group.subscription_id,
        resource_group=ws.resource_group.name,
        workspace=ws.name,
    )
    path = reverse(name, kwargs=kwargs)
    return f"{path}?{urlencode(query, doseq=True)}" if query else path


def send(client: Client, method: str, path: str, body: dict | None = None):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, content_type="application/json")


def write_artifact(run: Run, path: str, data: bytes) -> None:
    store_for(run.workspace).write(join(artifact_uri_path(run.artifact_uri), path), [data])


def log_points(run: Run, key: str, values: list[float], start: int = 1_000) -> None:
    points = [
        MetricIn(key, 0.0 if math.isnan(v) else v, math.isnan(v), start + step, step)
        for step, v in enumerate(values)
    ]
    for offset in range(0, len(points), 1000):
        run_log_batch(run=run, metrics=points[offset : offset + 1000])


def pages(client: Client, first: str) -> list[dict]:
    """Follow `next` links from the first page; every page of results, in order."""
    got, link = [], first
    while link:
        response = client.get(link)
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        got.append(body["results"])
        link = body["next"]
    return got


def run_names(response) -> list[str]:
    """The run names of a page of runs, in order."""
    assert response.status_code == 200, response.content[:500]
    return [run["run_name"] for run in response.json()["results"]]
