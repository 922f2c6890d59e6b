"""The compute worker's Celery app: one task, `deployments.run_remote_job`, the name the
studio's job machinery sends remote runs under (on the target's queue).

Delivery is at least once (acks late, a message requeued when its worker dies); the
studio's claim makes a duplicate a no-op. A full target (`Busy`) or an unreachable
studio puts the message back with a countdown."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from deployments.worker.client import Busy, StudioError, StudioRefused
from deployments.worker.execute import Runner

log = logging.getLogger(__name__)

TASK = "deployments.run_remote_job"
UNREACHABLE_RETRY_SECONDS = 15

_runner: Runner | None = None


def make_app(
    *, broker_url: str, queue: str, transport_options: dict[str, Any] | None = None
) -> Celery:
    app = Celery("mlstudio-worker", broker=broker_url, set_as_current=True)
    app.conf.update(
        task_default_queue=queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options=transport_options or {},
        worker_send_task_events=False,
    )

    @app.task(name=TASK, bind=True, max_retries=None, acks_late=True)
    def run_remote_job(self, model_label: str, job_id: str) -> str:
        assert _runner is not None, "the worker's runner is set before it consumes"
        try:
            return _runner.run(job_id)
        except Busy as exc:
            raise self.retry(countdown=max(1.0, exc.retry_after)) from None
        except StudioRefused as exc:
            # Not this worker's to run (another target's, or gone): drop the message.
            log.warning("job %s refused by the studio: %s; message dropped", job_id, exc)
            return "refused"
        except StudioError as exc:
            log.warning("job %s: %s; retrying in %s s", job_id, exc, UNREACHABLE_RETRY_SECONDS)
            raise self.retry(countdown=UNREACHABLE_RETRY_SECONDS) from None

    return app


def set_runner(runner: Runner) -> None:
    global _runner
    _runner = runner
