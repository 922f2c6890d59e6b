"""What the tracking views of /api/v1 share: the workspace from the URL, query parameters
checked into clean 400s, lookups by id, and the documented error answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from mlflow.exceptions import MlflowException
from rest_framework.request import Request

from portal.api.common import ws_access
from portal.api.serializers import ErrorSerializer
from portal.errors import InvalidParameter, NotFound
from portal.models import Role, Workspace
from tracking.models import Run
from tracking.selectors import run_get

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
VIEWS = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", "all": "ALL"}

_ERRORS = {
    400: "Invalid parameter value (INVALID_PARAMETER_VALUE).",
    401: "Not authenticated (UNAUTHENTICATED).",
    403: "The role (or the token's scope) does not allow this (PERMISSION_DENIED).",
    404: "Not found, or not visible to the caller (RESOURCE_DOES_NOT_EXIST).",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Documented error answers, all with the one error shape."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=_ERRORS[code])
        for code in codes or _ERRORS
    }


VIEW_PARAM = OpenApiParameter(
    "view",
    str,
    enum=list(VIEWS),
    default="active",
    description="Which lifecycle stage to list.",
)


def workspace_for(request: Request, kwargs: dict[str, Any], *, write: bool = False) -> Workspace:
    """The workspace of the URL: 404 for outsiders, 403 when the role (or the token's
    scope) is below reader, or contributor for a write."""
    access = ws_access(
        request,
        kwargs["subscription_id"],
        kwargs["resource_group"],
        kwargs["workspace"],
        min_role=Role.CONTRIBUTOR if write else Role.READER,
    )
    return access.obj


def run_for(workspace: Workspace, run_id: str, *, for_update: bool = False) -> Run:
    # PostgreSQL refuses NUL in a text parameter with an error, not a miss.
    if "\x00" in run_id:
        raise NotFound(f"Run with id={run_id!r} not found")
    return run_get(workspace=workspace, run_id=run_id, for_update=for_update)


def positive_id(raw: str) -> int | None:
    """An experiment id as stored (a positive BIGINT), or None for text that cannot be one."""
    try:
        number = int(raw)
    except ValueError:
        return None
    return number if 0 < number <= INT64_MAX else None


def _no_nul(name: str, value: str) -> str:
    if "\x00" in value:
        raise InvalidParameter(f"{name}: NUL characters are not allowed.")
    return value


def query_text(request: Request, name: str, *, required: bool = False) -> str:
    value = request.query_params.get(name, "")
    if required and not value:
        raise InvalidParameter(f"{name}: this query parameter is required.")
    return _no_nul(name, value)


def query_list(request: Request, name: str, *, limit: int = 100) -> list[str]:
    values = [_no_nul(name, v) for v in request.query_params.getlist(name) if v != ""]
    if len(values) > limit:
        raise InvalidParameter(f"{name}: at most {limit} values.")
    return values


def query_int(
    request: Request,
    name: str,
    *,
    default: int | None = None,
    minimum: int = INT64_MIN,
    maximum: int = INT64_MAX,
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name}: must be a whole number.") from None
    if not minimum <= number <= maximum:
        raise InvalidParameter(f"{name}: must be between {minimum} and {maximum}.")
    return number


def query_view(request: Request) -> str:
    """`?view=active|deleted|all` as MLflow's view type."""
    view = VIEWS.get(request.query_params.get("view", "active"))
    if view is None:
        raise InvalidParameter(f"view: must be one of {', '.join(VIEWS)}.")
    return view


@contextmanager
def mlflow_errors() -> Iterator[None]:
    """mlflow's validators (names, tags) raise MlflowException; to this API they are bad
    input, with mlflow's message."""
    try:
        yield
    except MlflowException as exc:
        raise InvalidParameter(exc.message) from exc
