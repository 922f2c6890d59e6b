"""The API reference in real Chromium: Swagger UI and Redoc draw every operation from
our own server alone (a self-hosted studio may have no way out, and must not leak who
reads its docs to other hosts)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.browser import shot

pytestmark = pytest.mark.browser


def _requests_to_other_hosts(page: Page, live_server) -> list[str]:
    """Every request to a host other than the live server that the browser did not block
    itself (Redoc's bundle names a logo on its CDN; our Content-Security-Policy stops it
    before it leaves)."""
    ours = urlparse(live_server.url).netloc
    elsewhere: list[str] = []

    def leaving(request) -> bool:
        url = urlparse(request.url)
        return url.scheme in ("http", "https") and url.netloc != ours

    def finished(request) -> None:
        if leaving(request):
            elsewhere.append(request.url)

    def failed(request) -> None:
        if leaving(request) and "csp" not in (request.failure or "").lower():
            elsewhere.append(f"{request.url} ({request.failure})")

    page.on("requestfinished", finished)
    page.on("requestfailed", failed)
    return elsewhere


def test_swagger_ui_lists_every_operation_from_our_own_files(page: Page, live_server) -> None:
    elsewhere = _requests_to_other_hosts(page, live_server)
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ML Studio API")
    operations = page.locator(".swagger-ui .opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 50
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/login")).to_be_visible()
    shot(page, "api-docs-swagger")
    assert elsewhere == []


def test_redoc_renders_the_reference_without_fonts_or_logos_from_elsewhere(
    page: Page, live_server
) -> None:
    elsewhere = _requests_to_other_hosts(page, live_server)
    page.goto("/api/redoc/")
    # Redoc parses and lays out the whole document before its first heading: on a busy
    # two-core machine that has taken past the default 10 s.
    expect(page.get_by_role("heading", name="ML Studio API").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("List experiments").first).to_be_attached()
    # Its first screen: Redoc lays every operation out on one page, which grows with the
    # API; a full-page shot of it outlasted the timeout once remote runs were added.
    shot(page, "api-docs-redoc", full_page=False)
    assert elsewhere == []
