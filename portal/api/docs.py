"""The API reference pages (Swagger UI, Redoc), served from our own static files.

A Content-Security-Policy keeps them to this server: the viewers' bundles name outside
hosts (Redoc's footer logo), and a self-hosted studio must not call out to them."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

# Both viewers start from a small inline script and style their elements inline; Redoc
# parses the schema in a blob: worker.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


class _SelfContained:
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        response["Content-Security-Policy"] = DOCS_CSP
        return response


class SwaggerView(_SelfContained, SpectacularSwaggerView):
    pass


class RedocView(_SelfContained, SpectacularRedocView):
    pass
