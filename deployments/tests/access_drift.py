"""The access rows of a web service's drift-monitor endpoints (deployments/api/drift.py),
run with every other route's by tests/test_route_access.py through
deployments/tests/access.py's API list.

Readers list and read monitors, results and jobs; contributors create, change, delete
and backfill; outsiders find no workspace (404), anonymous calls are 401."""

from __future__ import annotations

from datetime import UTC, datetime

from deployments.models import DriftMonitor
from deployments.services import drift as svc
from deployments.tests.drift_support import frame, make_service
from portal.tests.test_permissions import ws_kw
from tests.access import LOGIN, Expect, Row, Scene, by_role
from tracking.models import EvaluationDataset
from tracking.services.evaluation_datasets import (
    evaluation_dataset_create,
    evaluation_dataset_records_upsert,
)

READ = by_role(200, 200, 200, 404, 401)
START = datetime(2026, 11, 2, tzinfo=UTC)


def writes(ok: int) -> Expect:
    return by_role(ok, ok, 403, 404, 401)


def _dataset_id(s: Scene) -> str:
    found = EvaluationDataset.objects.filter(workspace=s.workspace, name="drift-reference").first()
    if found is not None:
        return found.dataset_id
    dataset = evaluation_dataset_create(
        workspace=s.workspace, name="drift-reference", experiments=[], actor=s.owner
    )
    evaluation_dataset_records_upsert(
        workspace=s.workspace,
        dataset_id=dataset.dataset_id,
        records=[{"inputs": row} for row in frame(1, 50).to_dict(orient="records")],
        actor=s.owner,
    )
    return dataset.dataset_id


def _service(s: Scene) -> dict:
    make_service(s.workspace, "drift-svc")
    _dataset_id(s)
    return {**ws_kw(s), "service": "drift-svc"}


def _monitor(s: Scene) -> dict:
    kwargs = _service(s)
    service = make_service(s.workspace, "drift-svc")
    monitor = DriftMonitor.objects.filter(service=service, name="watch").first()
    if monitor is None:
        monitor = svc.drift_monitor_create(
            actor=s.owner,
            service=service,
            name="watch",
            baseline={"kind": "dataset", "dataset_id": _dataset_id(s)},
        )
    return {**kwargs, "monitor": "watch"}


def _job(s: Scene) -> dict:
    kwargs = _monitor(s)
    monitor = DriftMonitor.objects.get(service__workspace=s.workspace, name="watch")
    job = monitor.backfill_jobs.first() or svc.drift_backfill_request(
        actor=s.owner, monitor=monitor, start=START, end=START.replace(day=3)
    )
    return {**kwargs, "drift_job_id": job.pk}


def _row(label: str, name: str, method: str, expect: Expect, kwargs, **extra) -> Row:
    return Row(f"drift api: {label}", name, method, expect, kind="api", kwargs=kwargs, **extra)


API: list[Row] = [
    _row("monitors list", "api-drift-monitors", "get", READ, _service),
    _row(
        "monitor create",
        "api-drift-monitors",
        "post",
        writes(201),
        _service,
        body=lambda s: {
            "name": "new-watch",
            "baseline": {"kind": "dataset", "dataset_id": _dataset_id(s)},
        },
    ),
    _row("monitor get", "api-drift-monitor", "get", READ, _monitor),
    _row(
        "monitor update",
        "api-drift-monitor",
        "patch",
        writes(200),
        _monitor,
        body={"threshold": 0.5},
    ),
    _row("monitor delete", "api-drift-monitor", "delete", writes(204), _monitor),
    _row(
        "monitor results",
        "api-drift-monitor-results",
        "get",
        READ,
        _monitor,
        query="start=2026-11-01&end=2026-12-01",
    ),
    _row(
        "monitor backfill",
        "api-drift-monitor-backfill",
        "post",
        by_role(202, 202, 403, 404, 401),
        _monitor,
        body={"start": "2026-11-02", "end": "2026-11-04"},
    ),
    _row("monitor job", "api-drift-monitor-job", "get", READ, _job),
]


# --- The Drift tab and its forms (pages) ------------------------------------------------------

SEES = by_role(200, 200, 200, 404, LOGIN)
CHANGES = by_role(302, 302, 403, 404, LOGIN)  # a form's answer is a redirect


def _page_service(s: Scene) -> dict:
    kwargs = _service(s)
    return {**ws_kw(s), "name": kwargs["service"]}


def _page_monitor(s: Scene) -> dict:
    kwargs = _monitor(s)
    return {**ws_kw(s), "name": kwargs["service"], "monitor": kwargs["monitor"]}


def _page(label: str, name: str, method: str, expect: Expect, kwargs, **extra) -> Row:
    return Row(f"drift tab: {label}", name, method, expect, kwargs=kwargs, **extra)


PAGES: list[Row] = [
    _page(
        "monitor create",
        "service-drift-create",
        "post",
        CHANGES,
        _page_service,
        body=lambda s: {
            "name": "page-watch",
            "baseline_kind": "dataset",
            "dataset_id": _dataset_id(s),
        },
    ),
    _page(
        "backfill",
        "service-drift-backfill",
        "post",
        CHANGES,
        _page_monitor,
        body={"start": "2026-11-02", "end": "2026-11-04"},
    ),
    _page(
        "schedule", "service-drift-schedule", "post", CHANGES, _page_monitor, body={"enabled": "0"}
    ),
    _page("monitor delete", "service-drift-delete", "post", CHANGES, _page_monitor),
]
