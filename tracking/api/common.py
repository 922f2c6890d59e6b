"""What the tracking views of /api/v1 share: the workspace, experiment or run of the URL
(access checked), query parameters checked into clean 400s, and the documented error
answers. The services they call write the audit entries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from mlflow.exceptions import MlflowException
from rest_framework.request import Request

from portal.api.access import ws_access
from portal.api.schema import error_responses
from portal.errors import InvalidParameter
from portal.models import Role, Workspace
from tracking.models import Experiment, Run
from tracking.selectors import experiment_get, run_get
from tracking.selectors.tables import VIEWS

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Documented error answers (400, 401, 403 and 404 when none are named), all with
    the one error shape of portal.api.schema."""
    return error_responses(*(codes or (400, 401, 403, 404)))


VIEW_PARAM = OpenApiParameter(
    "view",
    str,
    enum=list(VIEWS),
    default="active",
    description="Which to list: `active` (the default), `deleted` (soft-deleted, still "
    "restorable) or `all`.",
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


def run_for(
    request: Request,
    kwargs: dict[str, Any],
    run_id: str,
    *,
    write: bool = False,
    for_update: bool = False,
) -> Run:
    """The URL's run, after workspace_for's access checks; `run.workspace` is the URL's
    workspace, already loaded."""
    workspace = workspace_for(request, kwargs, write=write)
    run = run_get(workspace=workspace, run_id=run_id, for_update=for_update)
    run.workspace = workspace
    return run


def experiment_for(
    request: Request, kwargs: dict[str, Any], experiment_id: str, *, write: bool = False
) -> Experiment:
    """The URL's experiment, after workspace_for's access checks."""
    workspace = workspace_for(request, kwargs, write=write)
    return experiment_get(workspace=workspace, experiment_id=experiment_id)


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
