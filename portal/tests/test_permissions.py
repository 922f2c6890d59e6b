"""Every page and API endpoint, tried by each member of the permission cast: the pages'
table is here, run with every other route's by tests/test_route_access.py.

The cast (see conftest.Cast): olivia owns the subscription, carlos contributes
to the resource group, rita reads the workspace, oscar owns only another
subscription, and anonymous is not logged in. Outsiders get 404, never 403, so
that names do not leak; people who can see an object but not act on it get 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from portal import services
from portal.models import Membership
from portal.tests.api import api

CAST = ["owner", "contributor", "reader", "outsider", "anonymous"]


def sub_kw(c) -> dict:
    return {"subscription_id": c.subscription.id}


def rg_kw(c) -> dict:
    return {**sub_kw(c), "resource_group": c.resource_group.name}


def ws_kw(c) -> dict:
    return {**rg_kw(c), "workspace": c.workspace.name}


def reader_membership(c) -> dict:
    m = Membership.objects.get(user=c.reader, workspace=c.workspace)
    return {"membership_id": m.pk}


def owner_token(c) -> dict:
    token, _ = services.token_create(user=c.owner, name="owner's")
    return {"token_id": token.pk}


def failed_job(c) -> dict:
    """A failed deletion job, asked for by the owner, of a workspace in the resource group."""
    from portal.models import DeletionJob

    ws = services.workspace_create(actor=c.owner, resource_group=c.resource_group, name="doomed")
    job = services.deletion_job_request(actor=c.owner, target=ws, confirm_name="doomed")
    DeletionJob.objects.filter(pk=job.pk).update(status=DeletionJob.Status.FAILED)
    return {"job_id": job.pk}


# (name, method, url name, kwargs, form data, expected status per cast member)
# 302 from a POST means the change was accepted; 302 for anonymous is the login redirect.
# tests/test_route_access.py runs these rows, with every other route's.
PAGES: list[tuple[str, str, str, Callable, dict | None, dict[str, int]]] = [
    (
        "dashboard",
        "get",
        "dashboard",
        lambda c: {},
        None,
        dict(owner=200, contributor=200, reader=200, outsider=200, anonymous=302),
    ),
    (
        "subscription",
        "get",
        "subscription",
        sub_kw,
        None,
        dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=302),
    ),
    (
        "subscription edit form",
        "get",
        "subscription-edit",
        sub_kw,
        None,
        dict(owner=200, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "subscription edit",
        "post",
        "subscription-edit",
        sub_kw,
        {"name": "Contoso 2", "description": ""},
        dict(owner=302, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "subscription members",
        "get",
        "subscription-members",
        sub_kw,
        None,
        dict(owner=200, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "subscription members add",
        "post",
        "subscription-members",
        sub_kw,
        {"username": "oscar", "role": "reader"},
        dict(owner=302, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "resource group create form",
        "get",
        "resource-group-create",
        sub_kw,
        None,
        dict(owner=200, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "resource group create",
        "post",
        "resource-group-create",
        sub_kw,
        {"name": "rg-new", "location": "local"},
        dict(owner=302, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "resource group",
        "get",
        "resource-group",
        rg_kw,
        None,
        dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=302),
    ),
    (
        "resource group edit",
        "post",
        "resource-group-edit",
        rg_kw,
        {"tags": "team=a"},
        dict(owner=302, contributor=302, reader=403, outsider=404, anonymous=302),
    ),
    (
        "resource group members",
        "get",
        "resource-group-members",
        rg_kw,
        None,
        dict(owner=200, contributor=200, reader=403, outsider=404, anonymous=302),
    ),
    (
        "resource group members add",
        "post",
        "resource-group-members",
        rg_kw,
        {"username": "oscar", "role": "reader"},
        dict(owner=302, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "workspace create form",
        "get",
        "workspace-create",
        rg_kw,
        None,
        dict(owner=200, contributor=200, reader=403, outsider=404, anonymous=302),
    ),
    (
        "workspace create",
        "post",
        "workspace-create",
        rg_kw,
        {"name": "ws-new", "location": "local"},
        dict(owner=302, contributor=302, reader=403, outsider=404, anonymous=302),
    ),
    (
        "workspace",
        "get",
        "workspace",
        ws_kw,
        None,
        dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=302),
    ),
    (
        "workspace edit form",
        "get",
        "workspace-edit",
        ws_kw,
        None,
        dict(owner=200, contributor=200, reader=403, outsider=404, anonymous=302),
    ),
    (
        "workspace edit",
        "post",
        "workspace-edit",
        ws_kw,
        {"description": "changed", "tags": ""},
        dict(owner=302, contributor=302, reader=403, outsider=404, anonymous=302),
    ),
    (
        "workspace members",
        "get",
        "workspace-members",
        ws_kw,
        None,
        dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=302),
    ),
    (
        "workspace members add",
        "post",
        "workspace-members",
        ws_kw,
        {"username": "oscar", "role": "reader"},
        dict(owner=302, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "workspace activity",
        "get",
        "workspace-activity",
        ws_kw,
        None,
        dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=302),
    ),
    (
        "workspace tracking token",
        "post",
        "workspace-tracking-token",
        ws_kw,
        {},
        dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=302),
    ),
    (
        "workspace config.json",
        "get",
        "workspace-config",
        ws_kw,
        None,
        dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=302),
    ),
    (
        "role change",
        "post",
        "membership-change",
        reader_membership,
        {"role": "contributor"},
        dict(owner=302, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "role removal",
        "post",
        "membership-change",
        reader_membership,
        {"action": "remove"},
        dict(owner=302, contributor=403, reader=403, outsider=404, anonymous=302),
    ),
    (
        "subscription create",
        "post",
        "subscription-create",
        lambda c: {},
        {"name": "New sub"},
        dict(owner=403, contributor=403, reader=403, outsider=403, anonymous=302),
    ),
    (
        "tokens",
        "get",
        "tokens",
        lambda c: {},
        None,
        dict(owner=200, contributor=200, reader=200, outsider=200, anonymous=302),
    ),
    (
        "token create",
        "post",
        "tokens",
        lambda c: {},
        {"name": "laptop", "scope": "full", "expires_in": "2592000"},
        dict(owner=200, contributor=200, reader=200, outsider=200, anonymous=302),
    ),
    (
        "token revoke (the owner's token)",
        "post",
        "token-revoke",
        owner_token,
        {},
        dict(owner=302, contributor=404, reader=404, outsider=404, anonymous=302),
    ),
    (
        "resource group delete form",
        "get",
        "resource-group-delete",
        rg_kw,
        None,
        dict(owner=200, contributor=200, reader=403, outsider=404, anonymous=302),
    ),
    (
        "resource group delete",
        "post",
        "resource-group-delete",
        rg_kw,
        {"confirm_name": "rg-main"},
        dict(owner=302, contributor=302, reader=403, outsider=404, anonymous=302),
    ),
    (
        "workspace delete form",
        "get",
        "workspace-delete",
        ws_kw,
        None,
        dict(owner=200, contributor=200, reader=403, outsider=404, anonymous=302),
    ),
    (
        "workspace delete",
        "post",
        "workspace-delete",
        ws_kw,
        {"confirm_name": "ws-main"},
        dict(owner=302, contributor=302, reader=403, outsider=404, anonymous=302),
    ),
    (
        "deletion job",
        "get",
        "deletion-job",
        failed_job,
        None,
        dict(owner=200, contributor=200, reader=404, outsider=404, anonymous=302),
    ),
    (
        "deletion job status",
        "get",
        "deletion-job-status",
        failed_job,
        None,
        dict(owner=200, contributor=200, reader=404, outsider=404, anonymous=302),
    ),
    (
        "deletion job retry",
        "post",
        "deletion-job-retry",
        failed_job,
        {},
        dict(owner=302, contributor=302, reader=404, outsider=404, anonymous=302),
    ),
    (
        "health",
        "get",
        "healthz",
        lambda c: {},
        None,
        dict(owner=200, contributor=200, reader=200, outsider=200, anonymous=200),
    ),
]


def _client(cast, who: str) -> Client:
    client = Client()
    user = cast.user(who)
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("who", ["owner", "contributor", "reader"])
def test_dashboard_lists_what_each_can_see(cast, who):
    body = _client(cast, who).get(reverse("dashboard")).content.decode()
    assert "ws-main" in body and "Contoso" in body
    assert "Fabrikam" not in body and "ws-other" not in body


def test_outsider_dashboard_shows_only_their_own(cast):
    body = _client(cast, "outsider").get(reverse("dashboard")).content.decode()
    assert "ws-other" in body
    assert "ws-main" not in body and "Contoso" not in body


def test_outsider_gets_the_same_404_for_existing_and_missing_workspaces(cast):
    client = _client(cast, "outsider")
    real = client.get(reverse("workspace", kwargs=ws_kw(cast)))
    missing = client.get(reverse("workspace", kwargs={**rg_kw(cast), "workspace": "no-such-ws"}))
    assert real.status_code == missing.status_code == 404

    def without_csrf(body: bytes) -> str:
        text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body.decode())
        return re.sub(r'"X-CSRFToken": "[^"]+"', "", text)

    assert without_csrf(real.content) == without_csrf(missing.content)


def test_reader_page_hides_write_actions(cast):
    body = _client(cast, "reader").get(reverse("workspace", kwargs=ws_kw(cast))).content.decode()
    assert reverse("workspace-edit", kwargs=ws_kw(cast)) not in body
    owner_body = (
        _client(cast, "owner").get(reverse("workspace", kwargs=ws_kw(cast))).content.decode()
    )
    assert reverse("workspace-edit", kwargs=ws_kw(cast)) in owner_body


def test_contributor_write_actually_changes_the_workspace(cast):
    _client(cast, "contributor").post(
        reverse("workspace-edit", kwargs=ws_kw(cast)), {"description": "tuned", "tags": "team=cv"}
    )
    cast.workspace.refresh_from_db()
    assert cast.workspace.description == "tuned"
    assert cast.workspace.tags == {"team": "cv"}


def test_refused_write_changes_nothing(cast):
    _client(cast, "reader").post(
        reverse("workspace-edit", kwargs=ws_kw(cast)), {"description": "hacked"}
    )
    cast.workspace.refresh_from_db()
    assert cast.workspace.description == "Main"


def test_roles_are_inherited_and_the_strongest_wins(cast):
    from portal.selectors import role_for

    assert role_for(cast.owner, cast.workspace) == "owner"  # from the subscription
    assert role_for(cast.contributor, cast.workspace) == "contributor"  # from the resource group
    assert role_for(cast.contributor, cast.subscription) is None  # not upwards
    assert role_for(cast.reader, cast.workspace) == "reader"
    services.membership_grant(
        actor=cast.owner, scope=cast.resource_group, user=cast.reader, role="contributor"
    )
    assert role_for(cast.reader, cast.workspace) == "contributor"
    assert role_for(cast.outsider, cast.workspace) is None


def test_last_subscription_owner_cannot_be_removed(cast):
    membership = Membership.objects.get(user=cast.owner, subscription=cast.subscription)
    response = _client(cast, "owner").post(
        reverse("membership-change", kwargs={"membership_id": membership.pk}),
        {"action": "remove"},
        follow=True,
    )
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_staff_creates_subscriptions_and_owns_them(cast):
    cast.owner.is_staff = True
    cast.owner.save()
    response = _client(cast, "owner").post(reverse("subscription-create"), {"name": "Northwind"})
    assert response.status_code == 302
    from portal.models import Subscription

    sub = Subscription.objects.get(name="Northwind")
    assert Membership.objects.filter(user=cast.owner, subscription=sub, role="owner").exists()


@pytest.mark.parametrize("who", CAST)
def test_admin_console_is_staff_only(cast, who):
    response = _client(cast, who).get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_admin_console_lists_every_model_for_staff(cast, admin_client):
    for path in [
        "subscription",
        "resourcegroup",
        "workspace",
        "membership",
        "apitoken",
        "auditentry",
    ]:
        response = admin_client.get(f"/admin/portal/{path}/?q=ws")
        assert response.status_code == 200, path


# --- API -------------------------------------------------------------------------------

# Every endpoint's answer to each cast member: the access table of portal/tests/test_api.py.


@pytest.mark.parametrize("who", ["owner", "contributor", "reader", "outsider"])
def test_api_workspace_list_is_filtered(cast, who):
    names = {ws["name"] for ws in api(cast, who).get(reverse("api-workspaces")).json()["results"]}
    assert ("ws-main" in names) == (who != "outsider")
    assert ("ws-other" in names) == (who == "outsider")


def test_api_details_have_the_reference_keys(cast):
    details = api(cast, "reader").get(reverse("api-workspace", kwargs=ws_kw(cast))).json()
    for key in [
        "id",
        "name",
        "location",
        "description",
        "tags",
        "workspaceid",
        "resourceGroup",
        "subscriptionId",
        "creationTime",
        "storageAccount",
        "mlflowTrackingUri",
    ]:
        assert key in details
    assert details["mlflowTrackingUri"].endswith("/resourceGroups/rg-main/workspaces/ws-main")
    assert details["role"] == "reader"
    assert "/" not in details["storageAccount"]  # no server path leaks


def test_api_session_auth_works_for_the_browser(cast):
    client = _client(cast, "reader")
    assert client.get(reverse("api-user")).json()["username"] == "rita"


def test_login_page_and_wrong_password(db):
    from portal.tests.factories import PASSWORD, UserFactory

    UserFactory(username="ann")
    client = Client()
    assert client.get(reverse("login")).status_code == 200
    bad = client.post(reverse("login"), {"username": "ann", "password": "wrong"})
    assert bad.status_code == 200 and "correct username and password" in bad.content.decode()
    good = client.post(reverse("login"), {"username": "ann", "password": PASSWORD})
    assert good.status_code == 302 and good["Location"] == reverse("dashboard")


def test_config_json_is_what_the_sdk_reads(cast, client, tmp_path):
    from mlstudio._client.config import load_config

    client.force_login(cast.reader)
    response = client.get(reverse("workspace-config", kwargs=ws_kw(cast)))
    assert response["Content-Disposition"] == 'attachment; filename="config.json"'
    assert response.json() == {
        "subscription_id": str(cast.subscription.id),
        "resource_group": "rg-main",
        "workspace_name": "ws-main",
        "server_url": "http://testserver",
    }
    assert "token" not in response.content.decode().lower()
    # Saved in a project's .mlstudio/ folder, the SDK finds it from a subfolder.
    (tmp_path / ".mlstudio").mkdir()
    (tmp_path / ".mlstudio" / "config.json").write_bytes(response.content)
    (tmp_path / "src").mkdir()
    assert load_config(tmp_path / "src")["workspace_name"] == "ws-main"
