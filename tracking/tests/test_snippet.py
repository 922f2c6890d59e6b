"""The workspace page's snippet, pasted into Python as it is, logs a run."""

from __future__ import annotations

import html
import re
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)


def test_pasted_snippet_logs_a_run(live_server, cast, settings, tmp_path):
    settings.SITE_URL = live_server.url
    client = Client()
    client.force_login(cast.contributor)
    ws = cast.workspace
    url = reverse(
        "workspace-tracking-token",
        args=[ws.resource_group.subscription_id, ws.resource_group.name, ws.name],
    )
    page = client.post(url).content.decode()
    snippet = html.unescape(re.search(r'<pre id="snippet">(.*?)</pre>', page, re.S)[1])
    assert "<your token>" not in snippet and "mls_" in snippet
    result = subprocess.run(
        [sys.executable, "-c", snippet],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    from tracking.models import LatestMetric, Run

    run = Run.objects.get(workspace=ws, experiment__name="my-experiment")
    assert run.status == "FINISHED"
    assert LatestMetric.objects.get(run=run, key="accuracy").value == 0.91
