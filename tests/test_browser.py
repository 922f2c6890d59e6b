"""End-to-end checks of the portal pages in real headless Chromium (Playwright).

Each test drives the pages a person would use against pytest-django's live
server, asserts on what is visible, and leaves a full-page screenshot of every
page it visited under var/screenshots/ for a human to look over.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from portal.tests.factories import PASSWORD
from tests.browser import api_get, login, rg_path, shot, ws_path

pytestmark = pytest.mark.browser


# --- Scenarios ------------------------------------------------------------------------


def test_login_and_dashboard(page: Page, live_server, cast) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "01-login")

    page.get_by_label("User name").fill("olivia")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".form-errors")).to_contain_text(
        re.compile(r"Please enter a correct .+ and password")
    )
    expect(page).to_have_url(re.compile(r"/login/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "01-login-error")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Welcome, olivia")).to_be_visible()
    main = page.locator("main")
    subscription = page.locator("section.tree-sub", has_text="Contoso")
    expect(subscription).to_have_count(1)
    expect(subscription.get_by_role("link", name="rg-main")).to_be_visible()
    expect(subscription.locator(".ws-card .name")).to_have_text(["ws-main"])
    expect(main).not_to_contain_text("Fabrikam")
    expect(main).not_to_contain_text("ws-other")
    shot(page, "01-dashboard")


def test_reader_workspace_page_and_tracking_token(page: Page, live_server, cast) -> None:
    login(page, "rita")
    page.goto(ws_path(cast))
    expect(page.get_by_role("heading", name="ws-main", exact=True)).to_be_visible()
    expect(page.locator("#tracking-uri")).to_have_value(
        re.compile(r"/resourceGroups/rg-main/workspaces/ws-main$")
    )
    expect(page.locator(".page-head .badge")).to_have_text("reader")
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    expect(page.locator("#new-token")).to_have_count(0)
    shot(page, "02-workspace-reader")

    page.get_by_role("button", name="Get a 1-hour tracking token").click()
    token_input = page.locator("#new-token")
    expect(token_input).to_have_value(re.compile(r"^mls_\S{20,}$"))
    token = token_input.input_value()
    expect(page.locator("#snippet")).to_contain_text(token)
    shot(page, "02-workspace-tracking-token")

    status, body = api_get(f"{live_server.url}/api/v1/user", token)
    assert status == 200, body
    assert body["username"] == "rita"
    assert body["token"]["workspace_id"] == str(cast.workspace.id)


def test_owner_creates_workspace(page: Page, live_server, cast) -> None:
    from portal.models import Workspace

    login(page, "olivia")
    page.goto(rg_path(cast))
    expect(page.get_by_role("heading", name="rg-main")).to_be_visible()
    shot(page, "03-resource-group")

    page.get_by_role("link", name="+ Workspace").click()
    expect(page.get_by_role("heading", name="New workspace")).to_be_visible()
    shot(page, "03-workspace-form")
    page.locator("#id_name").fill("ws-new")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/resourceGroups/rg-main/workspaces/ws-new/$"))
    expect(page.get_by_role("heading", name="ws-new", exact=True)).to_be_visible()
    expect(page.locator(".flash")).to_contain_text("Workspace “ws-new” created.")
    expect(page.locator(".page-head .badge")).to_have_text("owner")
    expect(page.get_by_role("link", name="Edit", exact=True)).to_be_visible()
    expect(page.locator("#tracking-uri")).to_have_value(re.compile(r"/workspaces/ws-new$"))
    shot(page, "03-workspace-created")

    page.goto(rg_path(cast))
    page.get_by_role("link", name="+ Workspace").click()
    page.locator("#id_name").fill("WS-NEW")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/workspaces/new/$"))
    expect(page.locator(".field .errors")).to_contain_text(
        "Workspace 'WS-NEW' already exists in this resource group."
    )
    shot(page, "03-workspace-duplicate")

    page.locator("#id_name").fill("x")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/workspaces/new/$"))
    expect(page.locator(".field .errors")).to_contain_text(
        "A workspace name has 3 to 33 letters, digits, hyphens or underscores"
    )
    shot(page, "03-workspace-invalid-name")

    names = sorted(cast.resource_group.workspaces.values_list("name", flat=True))
    assert names == ["ws-main", "ws-new"]
    assert Workspace.objects.filter(name__iexact="ws-new").count() == 1


def test_owner_grants_access(new_page: Callable[[], Page], cast) -> None:
    owner = new_page()
    login(owner, "olivia")
    owner.goto(ws_path(cast, suffix="members/"))
    expect(owner.get_by_role("heading", name="Access control")).to_be_visible()
    direct = owner.locator("table.data").first
    expect(direct).not_to_contain_text("oscar")
    shot(owner, "04-members-before")

    owner.get_by_label("User name or e-mail").fill("oscar")
    owner.get_by_label("Role", exact=True).select_option("reader")
    owner.get_by_role("button", name="Add").click()
    expect(owner.locator(".flash")).to_contain_text("oscar is now reader.")
    expect(direct.locator("tbody tr", has_text="oscar")).to_have_count(1)
    expect(owner.get_by_label("Role of oscar")).to_have_value("reader")
    shot(owner, "04-members-after")

    outsider = new_page()
    login(outsider, "oscar")
    contoso = outsider.locator("section.tree-sub", has_text="Contoso")
    expect(contoso.locator(".ws-card .name")).to_have_text(["ws-main"])
    expect(contoso.locator(".ws-card .badge")).to_have_text(["reader"])
    expect(outsider.locator("section.tree-sub", has_text="Fabrikam")).to_have_count(1)
    shot(outsider, "04-dashboard-oscar")


def test_tokens_create_and_revoke(page: Page, live_server, cast) -> None:
    login(page, "olivia")
    page.goto("/account/tokens/")
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    expect(page.locator("table.data")).to_contain_text("No tokens yet.")
    shot(page, "05-tokens-empty")

    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token")
    expect(secret).to_have_value(re.compile(r"^mls_\S{20,}$"))
    raw = secret.input_value()
    row = page.locator("table.data tbody tr", has_text="laptop")
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("active")
    expect(row.locator("td.mono")).to_have_text(f"{raw[:12]}…")
    shot(page, "05-tokens-created")
    assert api_get(f"{live_server.url}/api/v1/user", raw)[0] == 200

    page.goto("/account/tokens/")
    expect(page.locator("#new-token")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text(raw)

    dialogs: list[str] = []

    def accept(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash")).to_contain_text("Token “laptop” revoked.")
    expect(row.locator(".badge")).to_have_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
    assert dialogs == ["Revoke token laptop? Clients using it stop working."]
    shot(page, "05-tokens-revoked")

    status, body = api_get(f"{live_server.url}/api/v1/user", raw)
    assert status == 401, body


def test_outsider_gets_not_found(page: Page, cast) -> None:
    login(page, "oscar")
    response = page.goto(ws_path(cast))
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("MLflow tracking URI")
    expect(page.locator("main")).not_to_contain_text("ws-main")
    shot(page, "06-outsider-404")
