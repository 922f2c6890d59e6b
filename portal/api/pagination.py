"""Paging of /api/v1 lists: DRF's cursor pagination, strict about what it is given, and
the same page shape and cursors for the views that page by hand."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, pagination, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from portal.errors import InvalidParameter


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
