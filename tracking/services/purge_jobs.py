"""The tracking app's part in deletion jobs, registered with portal in TrackingConfig.ready.

- The experiment purge is a deletion job kind of ours ("experiment"): requested here,
  run by portal's job machinery with `experiment_job_run`.
- Purging a workspace runs our purge step (runs, artifacts, models, experiments) and
  the typed-name confirmation page shows our counts.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import transaction
from django.template.defaultfilters import filesizeformat, pluralize
from django.urls import reverse

from portal import registry
from portal.errors import InvalidParameter, NotFound
from portal.models import DeletionJob, Workspace
from portal.services.deletion import (
    check_typed_name,
    require_contributor,
    workspace_deletion_job_create,
)
from portal.services.tenancy import audit_record
from tracking.artifacts import store_for
from tracking.models import Experiment, LifecycleStage, Run
from tracking.selectors.purge import EXPERIMENT_PURGE, experiment_purge_job
from tracking.services import purge

log = logging.getLogger(__name__)

# Artifact files counted for the confirmation page at most, so the page stays fast.
ARTIFACT_COUNT_LIMIT = 10_000


@transaction.atomic
def experiment_purge_request(
    *, actor: AbstractBaseUser, experiment: Experiment, confirm_name: str | None = None
) -> DeletionJob:
    """Ask for a soft-deleted experiment to be purged by a background job; returns the
    job. Needs the contributor role on its workspace; an active experiment is refused
    (INVALID_PARAMETER_VALUE). Asking again while a purge runs returns that job."""
    workspace = Workspace.objects.select_related("resource_group__subscription").get(
        pk=experiment.workspace_id
    )
    require_contributor(actor, workspace, "Workspace")
    locked = Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
    if locked is None:
        raise NotFound(f"No Experiment with id={experiment.pk} exists")
    if locked.lifecycle_stage != LifecycleStage.DELETED:
        raise InvalidParameter(
            f"Only deleted experiments can be purged; delete '{locked.name}' first."
        )
    if confirm_name is not None:
        check_typed_name(confirm_name, locked.name, "experiment")
    running = experiment_purge_job(experiment_id=locked.pk)
    if running is not None:
        return running
    job = workspace_deletion_job_create(
        actor=actor,
        workspace=workspace,
        kind=EXPERIMENT_PURGE,
        target_id=str(locked.pk),
        name=locked.name,
    )
    audit_record(actor=actor, action="purge_request", target=locked, changes={"job": str(job.pk)})
    return job


def _job_experiment(job: DeletionJob) -> Experiment | None:
    return Experiment.objects.select_related("workspace").filter(pk=int(job.target_id)).first()


def experiment_job_units(job: DeletionJob) -> int:
    experiment = _job_experiment(job)
    return purge.experiment_purge_units(experiment) if experiment else 1


def experiment_job_run(job: DeletionJob, progress: registry.Progress) -> None:
    experiment = _job_experiment(job)
    if experiment is not None:  # else a previous attempt finished the work
        purge.experiment_purge(actor=job.created_by, experiment=experiment, progress=progress)


def experiment_job_back_link(job: DeletionJob, workspace: Any) -> tuple[str, str] | None:
    """A finished purge's page leads back to the workspace's experiments."""
    if not isinstance(workspace, Workspace):
        return None
    rg = workspace.resource_group
    url = reverse(
        "experiments",
        kwargs={
            "subscription_id": rg.subscription_id,
            "resource_group": rg.name,
            "workspace": workspace.name,
        },
    )
    return url, "Back to experiments"


def deletion_rows(workspaces: list[Workspace]) -> list[registry.DeletionRow]:
    """What deleting these workspaces takes away from tracking, for the typed-name
    confirmation page: experiments, runs and stored artifact files (counted up to
    ARTIFACT_COUNT_LIMIT, so the page stays fast)."""
    ids = [ws.pk for ws in workspaces]
    files = size = 0
    complete = True
    for ws in workspaces:
        try:
            for entry in store_for(ws).walk(""):
                files += 1
                size += entry.file_size or 0
                if files >= ARTIFACT_COUNT_LIMIT:
                    complete = False
                    break
        except Exception:
            # Unreachable storage (of any backend) must not break the confirm page:
            # the count is shown as partial instead.
            log.warning("Could not count the artifacts of workspace %s", ws.pk, exc_info=True)
            complete = False
        if not complete:
            break
    experiments = Experiment.objects.filter(workspace_id__in=ids).count()
    runs = Run.objects.filter(workspace_id__in=ids).count()
    more = "" if complete else "+"
    return [
        registry.DeletionRow("Experiments", intcomma(experiments), "deleted ones included"),
        registry.DeletionRow(
            "Runs", intcomma(runs), "with their parameters, tags and metric history"
        ),
        registry.DeletionRow(
            "Stored artifacts",
            f"{intcomma(files)}{more} file{pluralize(files)}",
            filesizeformat(size) + ("" if complete else " or more (counting stopped early)"),
        ),
    ]


def tracking_purge_step(*, workspace: Workspace, progress: registry.Progress) -> None:
    """Our part of a workspace purge: runs, artifacts, models, experiments."""
    purge.workspace_tracking_purge(workspace=workspace, progress=progress)


def tracking_purge_units(workspace: Workspace) -> int:
    return purge.workspace_purge_units(workspace)


def register() -> None:
    """Called from TrackingConfig.ready()."""
    registry.register_job_kind(
        registry.JobKind(
            name=EXPERIMENT_PURGE,
            label="Experiment",
            model=DeletionJob,
            run=experiment_job_run,
            units=experiment_job_units,
            target=_job_experiment,
            back_link=experiment_job_back_link,
            done_phase="Deleted",
        )
    )
    registry.register_purge_step(
        registry.PurgeStep(
            name="tracking",
            order=100,
            run=tracking_purge_step,
            units=tracking_purge_units,
        )
    )
    registry.register_deletion_count(
        registry.DeletionCount(name="tracking", order=100, rows=deletion_rows)
    )
