"""What the deployments views of /api/v1 share: the URL's workspace with the role the
call needs, and who may not change anything here.

A tracking token (portal's TokenKind.TRACKING: the short-lived MLFLOW_TRACKING_TOKEN a
remote run's script is given) reads what its user may read, as it does in the tracking
API, but changes nothing here: a script must not submit jobs, register environments,
upload snapshots or change compute targets with its own token. Reads are allowed because
the same token already reads every run, log and artifact of the workspace."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from portal.api.access import request_token
from portal.errors import NotFound, PermissionDenied
from portal.models import TokenKind, Workspace
from tracking.api import common as tracking_common


def workspace_for(request: Request, kwargs: dict[str, Any], *, write: bool = False) -> Workspace:
    """The URL's workspace: 404 for outsiders, 403 below reader (contributor for a
    write), and 403 for a write with a tracking token."""
    workspace = tracking_common.workspace_for(request, kwargs, write=write)
    token = request_token(request)
    if write and token is not None and token.kind == TokenKind.TRACKING:
        raise PermissionDenied(
            "A tracking token (a run's MLFLOW_TRACKING_TOKEN) cannot change compute targets, "
            "environments, snapshots or remote runs; use a personal token."
        )
    return workspace


def path_name(value: str, what: str) -> str:
    """A name from the URL: one with a NUL names nothing (and PostgreSQL would refuse
    to compare it)."""
    if "\x00" in value:
        raise NotFound(f"No {what} with that name in this workspace.")
    return value
