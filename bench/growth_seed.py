"""Bulk seeding for the growth table (`run.py --growth`), run inside `manage.py shell`.

The search workload's seed makes each run with the mlflow client: `create_run(exp,
run_name="seed-<i>")` and one `log_batch` (metrics `acc`, `loss` at step 0, params `model`,
`lr`), ~140 runs/s. Growing an experiment to 100,000 runs that way takes 12 minutes, so
the growth table seeds its first size through the client (the same `seed` workload) and
adds every further run here, with the ORM's `bulk_create`: the same rows, with the same
deterministic values (`workloads._acc`, `_model`, `_value`), copied column by column from
a run the client made (user id, status, tags other than the run name, artifact URI shape,
the metrics' timestamp).

Before it returns, `seed` compares the first run it wrote with the client's template run:
every table that points at a run (found through the model's relations, so a table added
later is counted too), the metric points, the run's own columns, the tag/param/metric
keys. A difference fails the bench instead of measuring rows the client would not write.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.db import transaction
from workloads import _acc, _model, _value

from tracking.models import LatestMetric, MetricPoint, Param, Run, RunTag

RUN_NAME_TAG = "mlflow.runName"


def _fingerprint(run: Run) -> dict[str, Any]:
    """What a seeded run's rows look like, without what differs from run to run (ids,
    names, values, start time)."""
    counts = {}
    for rel in Run._meta.related_objects:
        if rel.one_to_many or rel.one_to_one:
            counts[rel.related_model._meta.db_table] = rel.related_model._default_manager.filter(
                **{rel.field.name: run}
            ).count()
    series = list(LatestMetric.objects.filter(run=run).order_by("key"))
    counts[MetricPoint._meta.db_table] = MetricPoint.objects.filter(series__in=series).count()
    tags = dict(RunTag.objects.filter(run=run).values_list("key", "value"))
    tags[RUN_NAME_TAG] = "<name>" if tags.get(RUN_NAME_TAG) == run.name else tags.get(RUN_NAME_TAG)
    return {
        "rows": counts,
        "run": {
            "workspace": run.workspace_id,
            "experiment": run.experiment_id,
            "user_id": run.user_id,
            "status": run.status,
            "end_time": run.end_time,
            "lifecycle_stage": run.lifecycle_stage,
            "deleted_at": run.deleted_at,
            "artifact_uri": run.artifact_uri.replace(run.run_uuid, "<uuid>"),
        },
        "tags": tags,
        "params": sorted(Param.objects.filter(run=run).values_list("key", flat=True)),
        "metrics": [(m.key, m.step, m.timestamp, m.is_nan) for m in series],
    }


def seed(template_uuid: str, start: int, stop: int, batch: int = 5000) -> dict[str, Any]:
    """Runs seed-<start> … seed-<stop - 1> in the template run's experiment, in
    transactions of `batch` runs; returns counts, seconds and the check's outcome."""
    template = Run.objects.select_related("experiment").get(run_uuid=template_uuid)
    tags = dict(RunTag.objects.filter(run=template).values_list("key", "value"))
    metric_ts = LatestMetric.objects.filter(run=template).values_list("timestamp", flat=True)[0]
    location = template.experiment.artifact_location
    started = time.perf_counter()
    first_uuid = ""
    for lo in range(start, stop, batch):
        indices = range(lo, min(stop, lo + batch))
        with transaction.atomic():
            runs = []
            for i in indices:
                run_uuid = uuid.uuid4().hex
                runs.append(
                    Run(
                        run_uuid=run_uuid,
                        workspace_id=template.workspace_id,
                        experiment_id=template.experiment_id,
                        name=f"seed-{i}",
                        user_id=template.user_id,
                        status=template.status,
                        start_time=int(time.time() * 1000),
                        lifecycle_stage=template.lifecycle_stage,
                        artifact_uri=f"{location}/{run_uuid}/artifacts",
                    )
                )
            Run.objects.bulk_create(runs)
            first_uuid = first_uuid or runs[0].run_uuid
            RunTag.objects.bulk_create(
                RunTag(run=run, key=key, value=run.name if key == RUN_NAME_TAG else value)
                for run in runs
                for key, value in tags.items()
            )
            Param.objects.bulk_create(
                p
                for i, run in zip(indices, runs, strict=True)
                for p in (
                    Param(run=run, key="model", value=_model(i)),
                    Param(run=run, key="lr", value=str(_value(i, 2))),
                )
            )
            series = LatestMetric.objects.bulk_create(
                m
                for i, run in zip(indices, runs, strict=True)
                for m in (
                    LatestMetric(run=run, key="acc", value=_acc(i), timestamp=metric_ts, step=0),
                    LatestMetric(
                        run=run, key="loss", value=1 - _acc(i), timestamp=metric_ts, step=0
                    ),
                )
            )
            MetricPoint.objects.bulk_create(
                MetricPoint(series=m, step=0, timestamp=metric_ts, value=m.value, is_nan=False)
                for m in series
            )
    seconds = time.perf_counter() - started
    expected, got = _fingerprint(template), _fingerprint(Run.objects.get(run_uuid=first_uuid))
    if expected != got:
        raise AssertionError(
            f"bulk-seeded run differs from the client's: client {expected}, bulk {got}"
        )
    return {"runs": stop - start, "seconds": seconds, "runs_per_s": (stop - start) / seconds}
