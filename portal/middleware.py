"""Request context the services need without every call passing the request."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from portal.services import current_ip


class AuditContextMiddleware:
    """Remember the client address so audit entries can record it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        reset = current_ip.set(request.META.get("REMOTE_ADDR") or None)
        try:
            return self.get_response(request)
        finally:
            current_ip.reset(reset)
