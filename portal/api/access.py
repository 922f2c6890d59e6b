"""Who is calling an /api/v1 view, and the scope it names, checked.

Views stay thin: resolve the scope with `ws_access`/`rg_access`/`sub_access` (which apply
the access rules of portal.selectors: 404 for what the caller cannot see, 403 for what
it sees but may not change), call one service or selector, serialize the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.request import Request

from portal import selectors
from portal.models import ApiToken


def request_token(request: Request) -> ApiToken | None:
    """The ML Studio token the request authenticated with (None for a browser session)."""
    return request.auth if isinstance(request.auth, ApiToken) else None


def _access(select: Callable[..., Any], request: Request, min_role: str | None, **scope: Any):
    return select(user=request.user, token=request_token(request), min_role=min_role, **scope)


def sub_access(request: Request, subscription_id: Any, min_role: str | None = None):
    return _access(
        selectors.subscription_access, request, min_role, subscription_id=subscription_id
    )


def rg_access(
    request: Request, subscription_id: Any, resource_group: str, min_role: str | None = None
):
    return _access(
        selectors.resource_group_access,
        request,
        min_role,
        subscription_id=subscription_id,
        resource_group=resource_group,
    )


def ws_access(
    request: Request,
    subscription_id: Any,
    resource_group: str,
    workspace: str,
    min_role: str | None = None,
):
    return _access(
        selectors.workspace_access,
        request,
        min_role,
        subscription_id=subscription_id,
        resource_group=resource_group,
        workspace=workspace,
    )


def job_access(request: Request, job_id: Any):
    return selectors.deletion_job_access(
        user=request.user, job_id=job_id, token=request_token(request)
    )
