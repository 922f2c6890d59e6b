"""The Celery application shared by web processes (producers) and workers."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("mlstudio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Seconds between sweeps for jobs whose heartbeat went stale (see portal.services.jobs);
# a job counts as stale after its kind's stale_after, not after this.
JOB_RECOVERY_INTERVAL = 60.0


@app.on_after_configure.connect
def _schedule(sender: Celery, **kwargs) -> None:
    # Added here rather than in settings' CELERY_BEAT_SCHEDULE, next to the tasks it
    # drives; beat merges both.
    sender.add_periodic_task(
        JOB_RECOVERY_INTERVAL,
        sender.signature("portal.tasks.jobs_recover"),
        name="recover-stale-jobs",
    )
