"""The access rows of the deployments pages, run with every other route's by
tests/test_route_access.py (tests/access.py says how rows are read).

Readers see the Job tab, compute targets and environments; contributors create and
delete targets and cancel remote runs; an outsider finds no workspace (404). What a
row names is made by its kwargs before each call, so every member meets a job that is
still queued, a target that can still be deleted. Pages that make what every workspace
has on first sight (the `local` target, the curated environments) find it made already.
"""

from __future__ import annotations

from portal.tests.test_permissions import ws_kw
from tests.access import LOGIN, Row, Scene, by_role

SEES = by_role(200, 200, 200, 404, LOGIN)
CHANGES = by_role(302, 302, 403, 404, LOGIN)  # a form's answer is a redirect
# A target's name the access rows make and delete.
DOOMED = "doomed-target"


def _made_on_sight(s: Scene) -> None:
    from deployments.services.compute import compute_target_local
    from deployments.services.environments import curated_environments, environment_get

    compute_target_local(workspace=s.workspace)
    for name in curated_environments():
        environment_get(workspace=s.workspace, name=name)


def _workspace(s: Scene) -> dict:
    _made_on_sight(s)
    return ws_kw(s)


def _remote_run(s: Scene) -> dict:
    """A queued remote run of the scene's workspace, new for each call."""
    from deployments.tests.factories import submit

    job = submit(s.cast, actor=s.owner)
    return {**ws_kw(s), "run_id": job.run.run_uuid}


def _target(name: str):
    def kwargs(s: Scene) -> dict:
        _made_on_sight(s)
        return {**ws_kw(s), "name": name}

    return kwargs


def _doomed(s: Scene) -> dict:
    from deployments.services.compute import compute_target_create

    compute_target_create(actor=s.owner, workspace=s.workspace, name=DOOMED)
    return {**ws_kw(s), "name": DOOMED}


def _environment(s: Scene) -> dict:
    _made_on_sight(s)
    return {**ws_kw(s), "name": "mlstudio-minimal"}


def _page(label: str, name: str, method: str, expect, kwargs=_workspace, **extra) -> Row:
    return Row(label, name, method, expect, kwargs=kwargs, **extra)


PAGES: list[Row] = [
    _page("run, job tab", "run", "get", SEES, _remote_run, query="tab=job"),
    _page("remote run stage", "remote-job-status", "get", SEES, _remote_run),
    _page("remote run log", "remote-job-log", "get", SEES, _remote_run, query="offset=0"),
    _page("remote run snapshot files", "remote-job-files", "get", SEES, _remote_run),
    _page("remote run cancel", "remote-job-cancel", "post", CHANGES, _remote_run),
    _page("compute targets", "compute", "get", SEES),
    _page(
        "compute target create",
        "compute",
        "post",
        CHANGES,
        body={"name": "cpu-cluster", "max_nodes": "2", "description": "CPUs"},
    ),
    _page("compute target", "compute-target", "get", SEES, _target("local")),
    _page("compute target delete", "compute-delete", "post", CHANGES, _doomed),
    _page("environments", "environments", "get", SEES),
    _page("environment", "environment", "get", SEES, _environment),
    _page(
        "environment version",
        "environment-version",
        "get",
        SEES,
        lambda s: {**_environment(s), "version": 1},
    ),
]

# Images and web services pages: their rows live next to their tests.
from deployments.tests.access_monitoring import PAGES as MONITORING_PAGES  # noqa: E402

PAGES.extend(MONITORING_PAGES)

# The Drift tab's forms: their rows live next to their tests.
from deployments.tests.access_drift import PAGES as DRIFT_PAGES  # noqa: E402

PAGES.extend(DRIFT_PAGES)
