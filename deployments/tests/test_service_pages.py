"""The images and web services pages with Django's client: what each page shows to each
member (readers never a key), the Monitoring tab's totals and recent requests, the keys
fragment, key regeneration, the typed-name delete, an image's build state polled while
it builds and its build context. Who may call each route is the permission cast's
(deployments/tests/access_monitoring.py); here: content, escaping, bounded queries."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from deployments.models import DeploymentJob, Image, ImageBuildJob, RequestMinute, WebService
from deployments.services import images as image_svc
from deployments.tests.monitoring_support import (
    DIABETES_COLUMNS,
    make_image,
    make_service,
    minute_entry,
    seed_traffic,
)
from deployments.tests.test_pages import XSS, client_for, ws_kw
from portal.secrets import decrypt
from portal.services import jobs as portal_jobs
from tracking.artifacts import store_for


@pytest.fixture(autouse=True)
def _no_messages(monkeypatch) -> None:
    """Deleting a service or building an image sends nothing to a broker."""
    monkeypatch.setattr(portal_jobs, "job_enqueue", lambda job, countdown=None: None)


def page(cast, who: str, route: str, query: str = "", **kwargs) -> str:
    response = client_for(cast, who).get(reverse(route, kwargs={**ws_kw(cast), **kwargs}) + query)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def keys_of(service: WebService) -> tuple[str, str]:
    service.refresh_from_db()
    return decrypt(service.primary_key), decrypt(service.secondary_key)


# --- The services list ----------------------------------------------------------------------


def test_the_list_shows_each_service_with_its_last_hour_of_requests(cast):
    busy, _ = make_service(cast, name="diabetes-model-1")
    make_service(
        cast,
        name="churn-model",
        state=WebService.State.TRANSITIONING,
        scoring_uri="",
        compute_type=WebService.ComputeType.LOCAL,
    )
    now = timezone.now().replace(second=0, microsecond=0)
    for minutes_ago, n in ((5, 7), (30, 11), (59, 2), (61, 100), (600, 1000)):
        RequestMinute.objects.create(
            service=busy,
            minute=now - timedelta(minutes=minutes_ago),
            requests=n,
            latency_buckets=minute_entry(now, [1.0] * n)["latency_buckets"],
        )
    html = page(cast, "reader", "services")
    rows = {
        name: row for name, row in re.findall(r'<tr data-service="([^"]+)">(.*?)</tr>', html, re.S)
    }
    assert list(rows) == ["churn-model", "diabetes-model-1"]
    busy_row = rows["diabetes-model-1"]
    assert 'class="badge succeeded"' in busy_row and "Healthy" in busy_row
    assert "ACI (local runtime)" in busy_row and "sklearn-image:1" in busy_row
    assert "http://127.0.0.1:32001/score" in busy_row
    assert re.search(r'<td class="num">20</td>', busy_row)  # 7 + 11 + 2, not the older
    idle_row = rows["churn-model"]
    assert "Transitioning" in idle_row and "not yet" in idle_row
    assert re.search(r'<td class="num">0</td>', idle_row)
    assert 'href="' + reverse("service", kwargs={**ws_kw(cast), "name": "churn-model"}) in html
    # The sidebar links both pages.
    assert ">Web services</a>" in html and ">Images</a>" in html


def test_an_empty_workspace_says_how_to_deploy(cast):
    html = page(cast, "reader", "services")
    assert "No web services yet" in html and "deploy_from_image" in html


def test_the_list_makes_a_bounded_number_of_queries(cast, django_assert_max_num_queries):
    for i in range(6):
        make_service(cast, name=f"svc-{i}")
    client = client_for(cast, "reader")
    url = reverse("services", kwargs=ws_kw(cast))
    client.get(url)
    with django_assert_max_num_queries(12):
        assert client.get(url).status_code == 200


# --- A service: overview, keys --------------------------------------------------------------


def test_readers_see_the_service_and_a_curl_but_never_a_key(cast):
    service, token = make_service(cast, description="Diabetes model", tags={"method": "sklearn"})
    primary, secondary = keys_of(service)
    html = page(cast, "reader", "service", name=service.name)
    assert "http://127.0.0.1:32001/score" in html and "swagger.json" in html
    assert "curl -X POST http://127.0.0.1:32001/score" in html
    assert "Authorization: Bearer &lt;primary key&gt;" in html
    # A neutral row with one value per signature column.
    assert "{&quot;data&quot;: [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]}" in html
    assert "<code>bmi</code>" in html and "method" in html and "cpu_cores" in html
    for secret in (primary, secondary, token, service.primary_key):
        assert secret not in html
    assert "Show keys" not in html and "Regenerate" not in html and "Delete service" not in html


def test_the_curl_scores_a_row_like_the_newest_sampled_request(cast):
    service, _ = make_service(cast)
    service.request_samples.create(
        time=timezone.now(),
        status=200,
        latency_ms=2.0,
        inputs={
            "columns": DIABETES_COLUMNS,
            "data": [[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]],
        },
    )
    html = page(cast, "reader", "service", name=service.name)
    assert "[[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]]" in html


def test_contributors_show_the_keys_on_request(cast):
    service, token = make_service(cast)
    primary, secondary = keys_of(service)
    html = page(cast, "contributor", "service", name=service.name)
    assert "Show keys" in html and primary not in html
    keys_url = reverse("service-keys", kwargs={**ws_kw(cast), "name": service.name})
    assert f'hx-post="{keys_url}"' in html
    response = client_for(cast, "contributor").post(keys_url)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    fragment = response.content.decode()
    assert primary in fragment and secondary in fragment and token not in fragment
    assert client_for(cast, "reader").post(keys_url).status_code == 403
    assert client_for(cast, "contributor").get(keys_url).status_code == 405


def test_regenerating_a_key_replaces_only_that_key(cast):
    service, _ = make_service(cast)
    primary, secondary = keys_of(service)
    url = reverse("service-regen-key", kwargs={**ws_kw(cast), "name": service.name})
    client = client_for(cast, "contributor")
    response = client.post(url, {"key": "Secondary"}, follow=True)
    assert response.status_code == 200
    assert "secondary key of “diabetes-model-1” was regenerated" in response.content.decode()
    new_primary, new_secondary = keys_of(service)
    assert new_primary == primary and new_secondary not in ("", secondary)
    response = client.post(url, {"key": "Tertiary"}, follow=True)
    assert "Choose the Primary or the Secondary key." in response.content.decode()
    assert keys_of(service) == (new_primary, new_secondary)


def test_deleting_asks_for_the_name(cast):
    service, _ = make_service(cast)
    url = reverse("service-delete", kwargs={**ws_kw(cast), "name": service.name})
    client = client_for(cast, "contributor")
    html = client.get(url).content.decode()
    assert 'type <strong class="mono">diabetes-model-1</strong>' in html
    for typed, message in (
        ("", "Type the service name to confirm."),
        ("diabetes", "does not match"),
    ):
        response = client.post(url, {"confirm_name": typed})
        assert response.status_code == 400 and message in response.content.decode()
    assert not DeploymentJob.objects.filter(service=service).exists()
    response = client.post(url, {"confirm_name": "diabetes-model-1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("services", kwargs=ws_kw(cast))
    job = DeploymentJob.objects.get(service=service)
    assert job.operation == DeploymentJob.Operation.DELETE


def test_what_users_typed_is_shown_as_text(cast):
    service, _ = make_service(cast, description=XSS, tags={"k": XSS}, config={"note": XSS})
    service.request_samples.create(
        time=timezone.now(), status=400, latency_ms=1.0, error=XSS, request_id="x"
    )
    for tab in ("overview", "monitoring"):
        html = page(cast, "owner", "service", f"?tab={tab}", name=service.name)
        assert XSS not in html and "&lt;script&gt;" in html
    assert XSS not in page(cast, "owner", "services")


# --- A service: the other tabs --------------------------------------------------------------


def test_the_monitoring_tab_shows_totals_recent_requests_and_the_charts_source(cast):
    service, _ = make_service(cast)
    seed_traffic(service, minutes=90)
    html = page(cast, "reader", "service", "?tab=monitoring", name=service.name)
    metrics_url = reverse("api-service-metrics", kwargs={**ws_kw(cast), "service": service.name})
    assert f'data-metrics-url="{metrics_url}"' in html
    for chart in ("requests", "latency", "errors"):
        assert f'data-chart="{chart}"' in html
    assert "vendor/plotly/plotly-partial.min.js" in html and "js/service.js" in html
    for label in ("1h", "24h", "7d"):
        assert f'data-range="{label}"' in html
    # The last hour's totals, from the rollups.
    start = (timezone.now() - timedelta(hours=1)).replace(second=0, microsecond=0)
    hour = RequestMinute.objects.filter(service=service, minute__gte=start)
    total = sum(hour.values_list("requests", flat=True))
    assert re.search(rf'data-total="requests">{total:,}<', html)
    assert re.search(r'data-total="latency_p95_ms">[\d.]+ ms<', html)
    # The recent requests: 24 samples, newest first, with an input preview.
    rows = re.findall(r"<tr>\s*<td class=\"nowrap mono small\">(.*?)</td>", html)
    assert len(rows) == 24 and rows == sorted(rows, reverse=True)
    assert "1 row: [" in html and "Column &#x27;bmi&#x27; must be a number." in html
    # No chart data in the page: the charts ask the API.
    assert '"p95_ms"' not in html


def test_the_logs_tab_shows_the_service_logs(cast):
    service, _ = make_service(cast)
    html = page(cast, "reader", "service", "?tab=logs", name=service.name)
    assert 'class="log-pane service-log"' in html
    assert "Traceback" not in html


def test_an_unknown_tab_is_the_overview_and_drift_has_a_place(cast):
    service, _ = make_service(cast)
    html = page(cast, "reader", "service", "?tab=nope", name=service.name)
    assert 'aria-current="page">Overview' in html
    html = page(cast, "reader", "service", "?tab=drift", name=service.name)
    assert 'aria-current="page">Drift' in html


def test_an_unknown_service_is_404(cast):
    client = client_for(cast, "owner")
    url = reverse("service", kwargs={**ws_kw(cast), "name": "nope"})
    assert client.get(url).status_code == 404


# --- Images ---------------------------------------------------------------------------------


def test_the_images_list_shows_state_progress_and_model(cast):
    make_image(cast, "sklearn-image", 1)
    building = make_image(cast, "sklearn-image", 2, state=Image.State.RUNNING)
    job = ImageBuildJob.objects.create(
        kind=image_svc.KIND,
        label="build",
        image=building,
        workspace=cast.workspace,
        status="running",
        phase="Building the Python environment",
        progress_done=3,
        progress_total=5,
    )
    make_image(cast, "broken", 1, state=Image.State.FAILED, error="no model", description=XSS)
    html = page(cast, "reader", "images")
    rows = dict(re.findall(r'<tr data-image="([^"]+)">(.*?)</tr>', html, re.S))
    assert list(rows) == ["broken:1", "sklearn-image:2", "sklearn-image:1"]
    assert 'aria-valuenow="60"' in rows["sklearn-image:2"] and "Building" in rows["sklearn-image:2"]
    assert job.phase in rows["sklearn-image:2"]
    assert "progressbar" not in rows["sklearn-image:1"] and "Succeeded" in rows["sklearn-image:1"]
    assert "sklearn-model:1" in rows["sklearn-image:1"] and "Failed" in rows["broken:1"]
    assert XSS not in html


def test_a_building_image_polls_its_state_until_it_is_built(cast):
    image = make_image(cast, state=Image.State.RUNNING, build_log="== Copying the model\n")
    ImageBuildJob.objects.create(
        kind=image_svc.KIND,
        label="build",
        image=image,
        workspace=cast.workspace,
        status="running",
        phase="Copying the model",
        progress_done=1,
        progress_total=5,
    )
    kw = {"name": image.name, "version": image.version}
    status_url = reverse("image-status", kwargs={**ws_kw(cast), **kw})
    html = page(cast, "reader", "image", **kw)
    assert f'hx-get="{status_url}"' in html and 'aria-valuenow="20"' in html
    assert "== Copying the model" in html and "Download build context" not in html
    Image.objects.filter(pk=image.pk).update(
        state=Image.State.SUCCEEDED, build_log="== Copying the model\n== Done\n"
    )
    fragment = page(cast, "reader", "image-status", **kw)
    assert fragment.startswith('<section id="image-status"') and "hx-get" not in fragment
    assert "Succeeded" in fragment and "== Done" in fragment and "progressbar" not in fragment


def test_the_build_context_downloads(cast):
    image = make_image(cast)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Dockerfile", "FROM python:3.11-slim\n")
    store_for(cast.workspace).write(image_svc.context_path(image), [buffer.getvalue()])
    Image.objects.filter(pk=image.pk).update(
        context_uri=f"mlflow-artifacts:/{image_svc.context_path(image)}"
    )
    kw = {"name": image.name, "version": image.version}
    html = page(cast, "reader", "image", **kw)
    context_url = reverse("image-context", kwargs={**ws_kw(cast), **kw})
    assert f'href="{context_url}"' in html
    response = client_for(cast, "reader").get(context_url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert zipfile.ZipFile(io.BytesIO(body)).read("Dockerfile").startswith(b"FROM")
    assert "sklearn-image-1-context.zip" in response["Content-Disposition"]
    assert client_for(cast, "outsider").get(context_url).status_code == 404


def test_an_image_name_goes_to_its_newest_version(cast):
    make_image(cast, "sklearn-image", 1)
    make_image(cast, "sklearn-image", 2)
    service, _ = make_service(cast, image=Image.objects.get(name="sklearn-image", version=1))
    response = client_for(cast, "reader").get(
        reverse("image-latest", kwargs={**ws_kw(cast), "name": "sklearn-image"})
    )
    assert response["Location"].endswith("/images/sklearn-image/2/")
    html = page(cast, "reader", "image", name="sklearn-image", version=1)
    assert ">v2</a>" in html and service.name in html
