"""The MLflow REST protocol, per workspace: routing, authentication, access, errors.

Every workspace's tracking URI is
`/mlflow/v1.0/subscriptions/<id>/resourceGroups/<rg>/workspaces/<ws>`; the client
appends `/api/2.0/mlflow/...` (and `/api/2.0/mlflow-artifacts/...`, `/api/3.0/...`).
As `mlflow server` does, every handler is served under `/ajax-api/` as well (its UI
calls that prefix), a few legacy ones only there, and `version` and `get-artifact` at
the root of the URI. One Django view receives all of it, resolves the workspace and
the caller's role once, and hands a `Call` to the handler registered for (method,
path) with `route`: one table, whatever the prefix.

Handlers stay thin: read arguments off the `Call`, call a service or selector,
return a dict (sent as JSON) or an HttpResponse (streams, artifacts).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from django.contrib.auth import authenticate
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import invalid_value, missing_value

from portal.access_cache import cached_access
from portal.errors import InvalidParameter, PermissionDenied, StudioError, Unauthenticated
from portal.models import ApiToken, Role, Workspace, role_at_least
from portal.selectors import Access, workspace_access
from portal.services import token_authenticate

log = logging.getLogger(__name__)

Handler = Callable[["Call"], "dict | HttpResponse"]


# Where a route is served, below the tracking URI: the prefixes `mlflow server` puts
# its handlers under ("" is the URI itself).
API = ("api", "ajax-api")  # every protocol endpoint
AJAX_ONLY = ("ajax-api",)  # the legacy endpoints its UI calls (get-history-bulk, ...)
ROOT = ("",)  # version, get-artifact


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # below its prefix: "2.0/mlflow/runs/create"
    handler: Handler
    write: bool
    raw: bool
    prefixes: tuple[str, ...] = API

    @property
    def paths(self) -> list[str]:
        """Where it is served, below the tracking URI: "api/2.0/mlflow/runs/create", ..."""
        return [f"{prefix}/{self.pattern}" if prefix else self.pattern for prefix in self.prefixes]


# Keyed by the whole path below the tracking URI, once per prefix: one Route each.
_STATIC: dict[tuple[str, str], Route] = {}
_DYNAMIC: list[tuple[re.Pattern[str], Route]] = []
_PARAM = re.compile(r"<(?:(path):)?(\w+)>")


def route(
    method: str,
    pattern: str,
    *,
    write: bool = False,
    raw: bool = False,
    prefixes: tuple[str, ...] = API,
):
    """Register a handler for `<prefix>/<pattern>` under each of `prefixes`, e.g.
    ("POST", "2.0/mlflow/runs/create") for `api/...` and `ajax-api/...`.

    `write` routes need the contributor role; the rest need reader. `raw` handlers
    read the request body themselves (artifact uploads stream it)."""

    def register(handler: Handler) -> Handler:
        entry = Route(method, pattern, handler, write, raw, prefixes)
        for path in entry.paths:
            if "<" not in path:
                _STATIC[(method, path)] = entry
            else:
                _DYNAMIC.append((_compile(path), entry))
        return handler

    return register


def _compile(path: str) -> re.Pattern[str]:
    """A path with <name> (one segment) and <path:name> (the rest) as a regex; the
    text between them is literal (the dot of "2.0" too)."""
    regex, end = "", 0
    for m in _PARAM.finditer(path):
        regex += re.escape(path[end : m.start()])
        regex += f"(?P<{m[2]}>.+)" if m[1] else f"(?P<{m[2]}>[^/]+)"
        end = m.end()
    return re.compile(f"^{regex}{re.escape(path[end:])}$")


def routes() -> list[Route]:
    """Every registered route, once whatever its prefixes (once its module is imported:
    see tracking.mlflow.urls)."""
    entries = [*_STATIC.values(), *(entry for _, entry in _DYNAMIC)]
    return list({id(entry): entry for entry in entries}.values())


def _resolve(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, path arguments, whether the path exists under another method), for a
    path below the tracking URI, prefix included."""
    found = _STATIC.get((method, path))
    if found:
        return found, {}, True
    other_method = any(p == path for (_, p) in _STATIC)
    for regex, entry in _DYNAMIC:
        match = regex.match(path)
        if match:
            if entry.method == method:
                return entry, match.groupdict(), True
            other_method = True
    return None, {}, other_method


# --- Arguments -----------------------------------------------------------------


@dataclass
class Call:
    """One protocol request, resolved: who, where, with what arguments."""

    request: HttpRequest
    workspace: Workspace
    user: Any
    token: ApiToken | None
    role: str
    data: dict[str, Any]
    args: dict[str, str] = field(default_factory=dict)
    query: bool = False  # the arguments came from the query string, not a JSON body

    @property
    def username(self) -> str:
        return self.user.get_username() if self.user.is_authenticated else ""

    def _scalar(self, name: str, *, required: bool = False) -> Any:
        """The argument's single value (GET arguments may repeat), None when absent."""
        value = self.data.get(name)
        if isinstance(value, list) and self.query:
            value = value[0] if value else None
        if value is None or value == "":
            if required:
                raise missing(name)
            return None
        return value

    def str(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self._scalar(name, required=required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise invalid_type(name, value)
        return value

    def int(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        value = self._scalar(name, required=required)
        return default if value is None else as_int(value, name)

    def bool(self, name: str, default: bool = False) -> bool:
        value = self._scalar(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and self.query:
            if value.lower() not in ("true", "false"):
                raise InvalidParameter(  # mlflow server's words for a GET argument
                    f"Invalid boolean value: {value}, must be 'true' or 'false'."
                )
            return value.lower() == "true"
        raise invalid_type(name, value)

    def list(self, name: str) -> list[Any]:
        """A repeated argument: a JSON array, or a query argument given once or more."""
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            if not self.query:
                raise invalid_type(name, value)
            value = [value]
        return value

    def str_list(self, name: str) -> list[str]:
        values = self.list(name)
        if not all(isinstance(value, str) for value in values):
            raise invalid_type(name, values)
        return values

    def dicts(self, name: str) -> list[dict[str, Any]]:
        values = self.list(name)
        if not all(isinstance(value, dict) for value in values):
            raise invalid_type(name, self.data.get(name))
        return values


# mlflow server's words for a request that does not fit its schema
# (`_validate_param_against_schema` in mlflow/server/handlers.py): clients and people
# match on them.
SEE_API_DOCS = " See the API docs for more information about request parameters."


def invalid_type(name: str, value: Any) -> InvalidParameter:
    """A value of the wrong type: "Invalid value 31 for parameter 'run_id' supplied:  Hint:
    Value was of type 'int'. See the API docs …", as mlflow server words it."""
    hint = f" Hint: Value was of type '{type(value).__name__}'."
    return InvalidParameter(invalid_value(name, value, hint) + SEE_API_DOCS)


def missing(name: str) -> InvalidParameter:
    return InvalidParameter(missing_value(name) + SEE_API_DOCS)


def as_int(value: Any, name: str) -> int:
    """An int64 from JSON: protobuf's JSON writes them as numbers or as strings."""
    if isinstance(value, bool):
        raise invalid_type(name, value)
    if isinstance(value, int):
        result = value
    elif (isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip())) or (
        isinstance(value, float) and value.is_integer()
    ):
        result = int(value)
    else:
        raise invalid_type(name, value)
    if not -(2**63) <= result < 2**63:
        raise invalid_type(name, value)
    return result


_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def as_float(value: Any, name: str) -> float:
    """A double from JSON; protobuf's JSON writes NaN and ±inf as strings."""
    if isinstance(value, bool):
        raise invalid_type(name, value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value in _FLOAT_WORDS:
            return _FLOAT_WORDS[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise invalid_type(name, value)


# --- Authentication ------------------------------------------------------------------


def _authenticate(request: HttpRequest) -> tuple[Any, ApiToken | None]:
    """Bearer token (MLFLOW_TRACKING_TOKEN), Basic (MLFLOW_TRACKING_USERNAME/PASSWORD,
    where the password may be a token), or the browser session."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and value:
        token = token_authenticate(value)
        if token is None:
            raise Unauthenticated("The token is invalid, expired or revoked.")
        return token.user, token
    if scheme == "basic" and value:
        try:
            username, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Unauthenticated("Malformed Basic credentials.") from None
        if password.startswith("mls_"):
            token = token_authenticate(password)
            if token is None or token.user.get_username() != username:
                raise Unauthenticated("The token is invalid, expired or revoked.")
            return token.user, token
        user = authenticate(request, username=username, password=password)
        if user is None:
            raise Unauthenticated("Invalid username or password.")
        return user, None
    if header:
        raise Unauthenticated("Unsupported Authorization header; use a Bearer token.")
    if request.user.is_authenticated:
        return request.user, None
    raise Unauthenticated(
        "Authentication required: set MLFLOW_TRACKING_TOKEN to an ML Studio token."
    )


def _resolve_access(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str
) -> tuple[Any, ApiToken | None, Access]:
    """Who calls and their role on the workspace, remembered for a few seconds per
    token by portal's access cache (the MLflow client sends many small requests)."""

    def decide() -> tuple[Any, ApiToken | None, Access]:
        user, token = _authenticate(request)
        access = workspace_access(
            user=user,
            subscription_id=subscription_id,
            resource_group=resource_group,
            workspace=workspace,
            min_role=Role.READER,
            token=token,
        )
        return user, token, access

    scope = (subscription_id, resource_group.lower(), workspace.lower())
    return cached_access(request.META.get("HTTP_AUTHORIZATION", ""), scope, decide)


# --- Responses ----------------------------------------------------------------------


def page(name: str, items: list[Any], next_page_token: str | None) -> dict[str, Any]:
    """A search answer: the items under `name`, and the token when more remain."""
    payload: dict[str, Any] = {name: items}
    if next_page_token:
        payload["next_page_token"] = next_page_token
    return payload


def json_response(payload: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")


def error_response(code: str, message: str, status: int) -> HttpResponse:
    response = json_response({"error_code": code, "message": message}, status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="mlstudio"'
    return response


def _parse_body(request: HttpRequest) -> dict[str, Any]:
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    body = request.body  # raises RequestDataTooBig past DATA_UPLOAD_MAX_MEMORY_SIZE
    if not body.strip():
        return {}
    if content_type != "application/json":
        raise InvalidParameter("Bad request: Content-Type must be application/json.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidParameter("Bad request: the body is not valid JSON.") from None
    if isinstance(data, str):  # some older clients double-encode
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise InvalidParameter("Bad request: the body is not a JSON object.") from None
    if not isinstance(data, dict):
        raise InvalidParameter("Bad request: the body must be a JSON object.")
    return data


# Query strings may name more values than Django's form limit (1,000 fields): a client
# asking get-history-bulk-interval for 1,000 run ids must get the handler's own refusal
# ("...at most 100 run_ids"), as from mlflow server, not a server error.
QUERY_MAX_FIELDS = 10_000


def _query_dict(request: HttpRequest) -> dict[str, Any]:
    try:
        pairs = parse_qsl(
            request.META.get("QUERY_STRING", ""),
            keep_blank_values=True,
            max_num_fields=QUERY_MAX_FIELDS,
        )
    except ValueError:
        raise InvalidParameter(
            f"Bad request: the query string has more than {QUERY_MAX_FIELDS} parameters."
        ) from None
    lists: dict[str, list[str]] = {}
    for key, value in pairs:
        lists.setdefault(key, []).append(value)
    return {key: values if len(values) > 1 else values[0] for key, values in lists.items()}


@csrf_exempt
def dispatch(
    request: HttpRequest, subscription_id, resource_group: str, workspace: str, rest: str
) -> HttpResponse:
    """The single entry point of a workspace's MLflow protocol."""
    try:
        entry, args, path_known = _resolve(request.method, rest)
        if entry is None:
            if path_known:
                return error_response(
                    "ENDPOINT_NOT_FOUND", f"Method {request.method} is not allowed here.", 405
                )
            raise _endpoint_not_found(request.method, rest)
        user, token, access = _resolve_access(request, subscription_id, resource_group, workspace)
        if entry.write and not role_at_least(access.role, Role.CONTRIBUTOR):
            raise PermissionDenied("This needs the contributor role on the workspace.")
        if entry.raw or request.method in ("GET", "HEAD"):
            data = _query_dict(request)
        else:
            data = _parse_body(request)
        query = entry.raw or request.method in ("GET", "HEAD")
        call = Call(request, access.obj, user, token, access.role, data, args, query)
        result = entry.handler(call)
        return result if isinstance(result, HttpResponseBase) else json_response(result)
    except StudioError as exc:
        return error_response(exc.code, exc.message, exc.http_status)
    except MlflowException as exc:
        return error_response(exc.error_code, exc.message, exc.get_http_status_code())
    except RequestDataTooBig:
        return error_response(
            "REQUEST_LIMIT_EXCEEDED", "The request body is larger than this server accepts.", 413
        )
    except Exception:
        log.exception("MLflow protocol request failed: %s %s", request.method, rest)
        return error_response("INTERNAL_ERROR", "The server failed to handle this request.", 500)


class EndpointNotFound(StudioError):
    code = "ENDPOINT_NOT_FOUND"
    http_status = 404


def _endpoint_not_found(method: str, rest: str) -> EndpointNotFound:
    return EndpointNotFound(f"No MLflow endpoint {method} /{rest} on this server.")
