"""Pieces every /api/v1 view shares: who is calling, paging, throttling, scope lookups.

Views stay thin: resolve the scope with `ws_access`/`rg_access`/`sub_access` (which apply
the access rules of portal.selectors: 404 for what the caller cannot see, 403 for what
it sees but may not change), call one service or selector, serialize the answer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, pagination, serializers, throttling
from rest_framework.request import Request
from rest_framework.response import Response

from portal import selectors, services
from portal.api.serializers import DeletionJobSerializer
from portal.errors import InvalidParameter
from portal.models import ApiToken, DeletionJob


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


# --- Deletion jobs ------------------------------------------------------------------------


def job_response(request: Request, job: DeletionJob, *, status: int = 200) -> Response:
    """A deletion job as the API shows it (its `url` absolute, for polling)."""
    return Response(DeletionJobSerializer(job, context={"request": request}).data, status=status)


def deletion_requested(
    request: Request, target: Any, *, confirm_name: str | None = None
) -> Response:
    """Ask for `target` (a workspace or a resource group) to be deleted for good in the
    background: 202 with the job to poll."""
    job = services.deletion_job_request(
        actor=request.user, target=target, confirm_name=confirm_name
    )
    return job_response(request, job, status=202)


# --- Paging -----------------------------------------------------------------------------


def _bad_cursor() -> InvalidParameter:
    return InvalidParameter("cursor: not a cursor this API returned.")


class CursorPagination(pagination.CursorPagination):
    """Opaque `?cursor=` links, stable under inserts; `?page_size=` up to API_MAX_PAGE_SIZE.

    Views set `ordering` to a unique field (or a tuple ending with one)."""

    page_size_query_param = "page_size"
    ordering = "-created_at"

    # Set per request from get_page_size (DRF assigns it), which reads API_PAGE_SIZE at
    # request time so tests may change the setting.
    page_size: int | None = None

    @property
    def max_page_size(self) -> int:
        return settings.API_MAX_PAGE_SIZE

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        """The same words for `cursor` and `page_size` as the hand-paged lists."""
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": CURSOR_DESCRIPTION,
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": PAGE_SIZE_DESCRIPTION,
                "schema": {"type": "integer"},
            },
        ]

    def get_page_size(self, request: Request) -> int:
        # DRF quietly ignores a bad ?page_size=; the contract answers 400, as the
        # hand-paged views do.
        return page_size(request)

    def paginate_queryset(self, queryset, request: Request, view: Any = None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError) as exc:
            # A forged position the ordering field cannot take (a date, a number): the
            # caller's mistake, not a server error.
            if getattr(self, "cursor", None) is None or self.cursor.position is None:
                raise
            raise _bad_cursor() from exc

    def decode_cursor(self, request: Request):
        raw = request.query_params.get(self.cursor_query_param)
        if raw:
            # DRF reads text that decodes to nothing as the first page.
            try:
                decoded = base64.b64decode(raw, validate=True)
            except ValueError:  # binascii.Error, or text that is not ASCII
                raise _bad_cursor() from None
            if not decoded:
                raise _bad_cursor()
        # DRF answers a cursor it cannot read with 404, as if the list were gone.
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise _bad_cursor() from exc
        # A forged position with a NUL would reach PostgreSQL, which cannot compare it.
        if cursor is not None and cursor.position is not None and "\x00" in cursor.position:
            raise _bad_cursor()
        return cursor


class NewestFirst(CursorPagination):
    ordering = ("-created_at", "id")


PAGE_SIZE_DESCRIPTION = (
    f"Items per page, 1–{settings.API_MAX_PAGE_SIZE} (default {settings.API_PAGE_SIZE}). "
    "Example: `50`."
)
CURSOR_DESCRIPTION = (
    "Where the page starts. Leave it out for the first page; for the next one, follow the "
    "`next` URL of the answer, which carries it (for example "
    "`…/runs?page_size=50&cursor=eyJ0b2tlbiI6ICJNVEF3In0`). Cursors are opaque: do not "
    "build or change one (400)."
)
PAGE_SIZE_PARAM = OpenApiParameter(
    "page_size",
    int,
    description=PAGE_SIZE_DESCRIPTION,
    required=False,
)
CURSOR_PARAM = OpenApiParameter(
    "cursor",
    str,
    description=CURSOR_DESCRIPTION,
    required=False,
)


def encode_cursor(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def decode_cursor(raw: str | None) -> dict[str, Any]:
    """A cursor made by encode_cursor, or {} for none; anything else is a clear 400."""
    if not raw:
        return {}
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise _bad_cursor() from exc
    if not isinstance(data, dict):
        raise _bad_cursor()
    return data


def page_size(request: Request, maximum: int | None = None) -> int:
    """`?page_size=` checked against the limits (API_MAX_PAGE_SIZE unless the view allows
    `maximum`), for views that page by hand."""
    maximum = maximum or settings.API_MAX_PAGE_SIZE
    raw = request.query_params.get("page_size")
    if raw in (None, ""):
        return settings.API_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError as exc:
        raise InvalidParameter("page_size: must be a whole number.") from exc
    if not 1 <= size <= maximum:
        raise InvalidParameter(f"page_size: must be between 1 and {maximum}.")
    return size


def next_link(request: Request, cursor: dict[str, Any] | None) -> str | None:
    """The URL of the next page for a hand-paged view (same query, new cursor)."""
    if cursor is None:
        return None
    query = {k: v for k, v in request.query_params.lists() if k != "cursor"}
    query["cursor"] = [encode_cursor(cursor)]
    return request.build_absolute_uri(request.path) + "?" + urlencode(query, doseq=True)


def paged_response(results: Sequence[Any], request: Request, cursor: dict | None) -> Response:
    """The same page shape as CursorPagination, for views that page by hand."""
    return Response({"next": next_link(request, cursor), "previous": None, "results": results})


def paged_serializer(name: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    """A schema component for a page of `item` (next, previous, results)."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )()


# --- Throttling -------------------------------------------------------------------------


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """API_THROTTLE_RATE requests per token: each token has its own budget, so one busy
    script does not starve the others of the same user. Browser sessions count per user,
    anonymous calls per client address."""

    scope = "token"

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATE or None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = request_token(request)
        if token is not None:
            ident = f"t:{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u:{request.user.pk}"
        else:
            ident = f"a:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginRateThrottle(throttling.SimpleRateThrottle):
    """API_LOGIN_THROTTLE_RATE password attempts per client address at POST login, so
    passwords cannot be guessed at the speed of the general API budget."""

    scope = "login"

    def get_rate(self) -> str | None:
        return settings.API_LOGIN_THROTTLE_RATE or None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
