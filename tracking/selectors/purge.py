"""Reads about purges under way."""

from __future__ import annotations

from portal.models import DeletionJob, Job

# The deletion job kind of an experiment purge (registered in TrackingConfig.ready).
EXPERIMENT_PURGE = "experiment"


def experiment_purge_job(*, experiment_id: int) -> DeletionJob | None:
    """The queued or running purge of this experiment, if any: while there is one, the
    experiment must not be restored (its files may be gone already)."""
    return DeletionJob.objects.filter(
        kind=EXPERIMENT_PURGE, target_id=str(experiment_id), status__in=Job.UNFINISHED
    ).first()
