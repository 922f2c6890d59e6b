"""MLflow protocol: what the server says of itself."""

from __future__ import annotations

from django.http import HttpResponse
from mlflow.version import VERSION

from tracking.mlflow.protocol import ROOT, Call, route


@route("GET", "version", prefixes=ROOT)
def version(call: Call) -> HttpResponse:
    """The version of mlflow whose protocol this server speaks, as plain text, as `mlflow
    server` answers: the client reads it to decide what it may call (it logs spans
    only to a server of 3.4 or later)."""
    return HttpResponse(VERSION, content_type="text/plain; charset=utf-8")
