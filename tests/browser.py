"""Shared pieces of the browser tests: Chromium launch, login, screenshots, paths.

The fixtures (`browser`, `new_page`, `page`) live in the root conftest so every
app's tests can drive real headless Chromium the same way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect

from conftest import ROOT
from portal.tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "var" / "screenshots"
TIMEOUT_MS = 10_000

expect.set_options(timeout=TIMEOUT_MS)


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def login(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Welcome, {username}")).to_be_visible()


def rg_path(cast) -> str:
    return f"/subscriptions/{cast.subscription.id}/resourceGroups/{cast.resource_group.name}/"


def ws_path(cast, workspace: str = "ws-main", suffix: str = "") -> str:
    return f"{rg_path(cast)}workspaces/{workspace}/{suffix}"


def api_get(url: str, token: str) -> tuple[int, dict]:
    """GET a JSON endpoint with a bearer token, bypassing any proxy settings."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
