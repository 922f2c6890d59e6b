"""For machines rather than people: the health check and the 500 handler."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and compose."""
    try:
        connection.ensure_connection()
    except Exception:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


# The API prefixes: scripts and the mlflow client there read error bodies as JSON.
_API_PREFIXES = ("/api/", "/mlflow/")


def server_error(request: HttpRequest) -> HttpResponse:
    """A crash nobody handled (logged with its traceback by Django): JSON in MLflow's error
    shape on the APIs, the studio's page elsewhere; never the trace itself."""
    if request.path.startswith(_API_PREFIXES):
        return JsonResponse(
            {"error_code": "INTERNAL_ERROR", "message": "Internal server error."}, status=500
        )
    # Django's own view renders 500.html without the request's context, which may be what
    # failed (the database, the session).
    return defaults.server_error(request)
