"""REST API v1, tenancy half: every endpoint tried by each member of the permission cast
(through their own Bearer token, as scripts call it; the table is here, run by
tests/test_route_access.py), then what each endpoint does.

The cast (conftest.Cast): olivia owns the subscription, carlos contributes to the resource
group, rita reads the workspace, oscar owns only another subscription. Through a token,
a container above one's own grant does not exist (portal.selectors: only a browser
session sees containers "from below"), so carlos gets 404 on the subscription and rita
on the resource group.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal import services, validators
from portal.api.serializers import DeletionJobSerializer
from portal.models import ApiToken, DeletionJob, Membership, ResourceGroup, Workspace
from portal.tests.api import api, assert_error, bearer
from portal.tests.factories import PASSWORD, UserFactory
from portal.tests.test_permissions import failed_job, owner_token, rg_kw, sub_kw, ws_kw


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Throttle counters live in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


def call(client: Client, method: str, url: str, body: dict | None = None):
    if method in ("get", "delete"):
        return getattr(client, method)(url)
    return getattr(client, method)(url, body or {}, content_type="application/json")


# --- URL arguments that need something to exist first ------------------------------------


def _granted(scope_of: Callable, kw: Callable) -> Callable:
    """kwargs naming a fresh user who holds a reader grant on the scope (to be removed)."""

    def make(c) -> dict:
        user = UserFactory(username="uma")
        services.membership_grant(actor=c.owner, scope=scope_of(c), user=user, role="reader")
        return {**kw(c), "username": "uma"}

    return make


def _q(query: str) -> Callable[[str], str]:
    return lambda url: f"{url}?{query}"


ALL_200 = dict(owner=200, contributor=200, reader=200, outsider=200, anonymous=401)

# (name, method, url name, kwargs, body, query, expected status per cast member)
API: list[tuple] = [
    ("user", "get", "api-user", lambda c: {}, None, None, ALL_200),
    ("subscriptions", "get", "api-subscriptions", lambda c: {}, None, None, ALL_200),
    (
        "subscription create (staff only)",
        "post",
        "api-subscriptions",
        lambda c: {},
        {"name": "New sub"},
        None,
        dict(owner=403, contributor=403, reader=403, outsider=403, anonymous=401),
    ),
    (
        "subscription",
        "get",
        "api-subscription",
        sub_kw,
        None,
        None,
        dict(owner=200, contributor=404, reader=404, outsider=404, anonymous=401),
    ),
    (
        "subscription update",
        "patch",
        "api-subscription",
        sub_kw,
        {"description": "changed"},
        None,
        dict(owner=200, contributor=404, reader=404, outsider=404, anonymous=401),
    ),
    (
        "subscription members",
        "get",
        "api-subscription-members",
        sub_kw,
        None,
        None,
        dict(owner=200, contributor=404, reader=404, outsider=404, anonymous=401),
    ),
    (
        "subscription member grant",
        "put",
        "api-subscription-member",
        lambda c: {**sub_kw(c), "username": "oscar"},
        {"role": "reader"},
        None,
        dict(owner=200, contributor=404, reader=404, outsider=404, anonymous=401),
    ),
    (
        "subscription member revoke",
        "delete",
        "api-subscription-member",
        _granted(lambda c: c.subscription, sub_kw),
        None,
        None,
        dict(owner=204, contributor=404, reader=404, outsider=404, anonymous=401),
    ),
    (
        "resource groups",
        "get",
        "api-resource-groups",
        sub_kw,
        None,
        None,
        dict(owner=200, contributor=404, reader=404, outsider=404, anonymous=401),
    ),
    (
        "resource group create",
        "post",
        "api-resource-groups",
        sub_kw,
        {"name": "rg-new"},
        None,
        dict(owner=201, contributor=404, reader=404, outsider=404, anonymous=401),
    ),
    (
        "resource group",
        "get",
        "api-resource-group",
        rg_kw,
        None,
        None,
        dict(owner=200, contributor=200, reader=404, outsider=404, anonymous=401),
    ),
    (
        "resource group update",
        "patch",
        "api-resource-group",
        rg_kw,
        {"tags": {"team": "a"}},
        None,
        dict(owner=200, contributor=200, reader=404, outsider=404, anonymous=401),
    ),
    (
        "resource group delete",
        "delete",
        "api-resource-group",
        rg_kw,
        None,
        "confirm=rg-main",
        dict(owner=202, contributor=202, reader=404, outsider=404, anonymous=401),
    ),
    (
        "resource group members",
        "get",
        "api-resource-group-members",
        rg_kw,
        None,
        None,
        dict(owner=200, contributor=200, reader=404, outsider=404, anonymous=401),
    ),
    (
        "resource group member grant",
        "put",
        "api-resource-group-member",
        lambda c: {**rg_kw(c), "username": "oscar"},
        {"role": "reader"},
        None,
        dict(owner=200, contributor=403, reader=404, outsider=404, anonymous=401),
    ),
    (
        "resource group member revoke",
        "delete",
        "api-resource-group-member",
        _granted(lambda c: c.resource_group, rg_kw),
        None,
        None,
        dict(owner=204, contributor=403, reader=404, outsider=404, anonymous=401),
    ),
    (
        "resource group workspaces",
        "get",
        "api-resource-group-workspaces",
        rg_kw,
        None,
        None,
        dict(owner=200, contributor=200, reader=404, outsider=404, anonymous=401),
    ),
    (
        "workspace create",
        "post",
        "api-resource-group-workspaces",
        rg_kw,
        {"name": "ws-new"},
        None,
        dict(owner=201, contributor=201, reader=404, outsider=404, anonymous=401),
    ),
    ("workspaces", "get", "api-workspaces", lambda c: {}, None, None, ALL_200),
    (
        "workspace",
        "get",
        "api-workspace",
        ws_kw,
        None,
        None,
        dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=401),
    ),
    (
        "workspace update",
        "patch",
        "api-workspace",
        ws_kw,
        {"description": "changed"},
        None,
        dict(owner=200, contributor=200, reader=403, outsider=404, anonymous=401),
    ),
    (
        "workspace delete",
        "delete",
        "api-workspace",
        ws_kw,
        None,
        "confirm=ws-main",
        dict(owner=202, contributor=202, reader=403, outsider=404, anonymous=401),
    ),
    (
        "workspace members",
        "get",
        "api-workspace-members",
        ws_kw,
        None,
        None,
        dict(owner=200, contributor=200, reader=200, outsider=404, anonymous=401),
    ),
    (
        "workspace member grant",
        "put",
        "api-workspace-member",
        lambda c: {**ws_kw(c), "username": "oscar"},
        {"role": "reader"},
        None,
        dict(owner=200, contributor=403, reader=403, outsider=404, anonymous=401),
    ),
    (
        "workspace member revoke",
        "delete",
        "api-workspace-member",
        _granted(lambda c: c.workspace, ws_kw),
        None,
        None,
        dict(owner=204, contributor=403, reader=403, outsider=404, anonymous=401),
    ),
    (
        "tracking token",
        "post",
        "api-tracking-token",
        ws_kw,
        None,
        None,
        dict(owner=201, contributor=201, reader=201, outsider=404, anonymous=401),
    ),
    ("tokens", "get", "api-tokens", lambda c: {}, None, None, ALL_200),
    (
        "token create",
        "post",
        "api-tokens",
        lambda c: {},
        {"name": "ci"},
        None,
        dict(owner=201, contributor=201, reader=201, outsider=201, anonymous=401),
    ),
    (
        "token revoke (the owner's token)",
        "delete",
        "api-token",
        owner_token,
        None,
        None,
        dict(owner=204, contributor=404, reader=404, outsider=404, anonymous=401),
    ),
    (
        "deletion job",
        "get",
        "api-job",
        failed_job,
        None,
        None,
        dict(owner=200, contributor=200, reader=404, outsider=404, anonymous=401),
    ),
    (
        "deletion job retry",
        "post",
        "api-job-retry",
        failed_job,
        None,
        None,
        dict(owner=202, contributor=202, reader=404, outsider=404, anonymous=401),
    ),
]


@pytest.mark.parametrize("who", ["owner", "contributor", "reader"])
def test_session_sees_containers_from_below(cast, who):
    """In a browser session the subscription is visible to everyone inside it (role null
    when they hold none there); acting on it is 403, not 404."""
    client = Client()
    client.force_login(cast.user(who))
    body = client.get(reverse("api-subscription", kwargs=sub_kw(cast))).json()
    assert body["name"] == "Contoso"
    assert body["role"] == ("owner" if who == "owner" else None)
    if who != "owner":
        patch = client.patch(
            reverse("api-subscription", kwargs=sub_kw(cast)),
            {"description": "x"},
            content_type="application/json",
        )
        assert_error(patch, 403, "PERMISSION_DENIED")


# --- Lists and paging --------------------------------------------------------------------


def test_create_list_and_page_through_resource_groups(cast):
    client = api(cast, "owner")
    url = reverse("api-resource-groups", kwargs=sub_kw(cast))
    for name in ["rg-b", "rg-c", "rg-d", "rg-e"]:
        created = client.post(
            url, {"name": name, "location": "westus", "tags": {"k": "v"}}, "application/json"
        )
        assert created.status_code == 201, created.content
        assert created.json()["role"] == "owner" and created.json()["tags"] == {"k": "v"}
    first = client.get(url, {"page_size": 2}).json()
    assert [rg["name"] for rg in first["results"]] == ["rg-b", "rg-c"]
    assert first["previous"] is None and first["next"]
    second = client.get(first["next"]).json()
    assert [rg["name"] for rg in second["results"]] == ["rg-d", "rg-e"]
    third = client.get(second["next"]).json()
    assert [rg["name"] for rg in third["results"]] == ["rg-main"]
    assert third["next"] is None
    item = third["results"][0]
    assert set(item) == {"id", "name", "subscription_id", "location", "tags", "role", "created_at"}
    assert item["subscription_id"] == str(cast.subscription.id)


@pytest.mark.parametrize("size", ["0", "1001", "-1", "ten"])
def test_page_size_out_of_bounds_is_400(cast, size):
    response = api(cast, "owner").get(reverse("api-workspaces"), {"page_size": size})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_page_size_bounds_are_accepted(cast):
    client = api(cast, "owner")
    assert len(client.get(reverse("api-workspaces"), {"page_size": 1}).json()["results"]) == 1
    assert client.get(reverse("api-workspaces"), {"page_size": 1000}).status_code == 200


def test_bad_cursor_is_400(cast):
    response = api(cast, "owner").get(reverse("api-subscriptions"), {"cursor": "not-a-cursor"})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_workspace_list_pages_details_with_roles(cast):
    client = api(cast, "contributor")
    for name in ["ws-a1", "ws-a2"]:
        url = reverse("api-resource-group-workspaces", kwargs=rg_kw(cast))
        assert client.post(url, {"name": name}, "application/json").status_code == 201
    page = client.get(reverse("api-workspaces"), {"page_size": 2}).json()
    assert [ws["name"] for ws in page["results"]] == ["ws-a2", "ws-a1"]  # newest first
    rest = client.get(page["next"]).json()
    assert [ws["name"] for ws in rest["results"]] == ["ws-main"]
    assert {ws["role"] for ws in page["results"] + rest["results"]} == {"contributor"}
    in_rg = client.get(reverse("api-resource-group-workspaces", kwargs=rg_kw(cast))).json()
    assert [ws["name"] for ws in in_rg["results"]] == ["ws-a1", "ws-a2", "ws-main"]
    assert in_rg["results"][0]["location"] == "westeurope"  # the resource group's


def test_subscriptions_are_listed_with_roles(cast):
    names = {
        s["name"]: s["role"]
        for s in api(cast, "owner").get("/api/v1/subscriptions").json()["results"]
    }
    assert names == {"Contoso": "owner"}
    assert api(cast, "contributor").get("/api/v1/subscriptions").json()["results"] == []


# --- Changes ------------------------------------------------------------------------------


def test_staff_create_a_subscription_and_own_it(cast):
    cast.owner.is_staff = True
    cast.owner.save()
    created = api(cast, "owner").post(
        reverse("api-subscriptions"), {"name": "Tailspin", "description": "d"}, "application/json"
    )
    assert created.status_code == 201
    assert created.json()["role"] == "owner" and created.json()["description"] == "d"
    again = api(cast, "owner").post(
        reverse("api-subscriptions"), {"name": "tailspin"}, "application/json"
    )
    assert_error(again, 400, "RESOURCE_ALREADY_EXISTS")
    read_only = api(cast, "owner", scope="read").post(
        reverse("api-subscriptions"), {"name": "Other"}, "application/json"
    )
    assert_error(read_only, 403)


def test_patch_changes_only_what_is_sent(cast):
    client = api(cast, "owner")
    sub = client.patch(
        reverse("api-subscription", kwargs=sub_kw(cast)),
        {"name": "Contoso Ltd"},
        "application/json",
    ).json()
    assert sub["name"] == "Contoso Ltd"
    rg = client.patch(
        reverse("api-resource-group", kwargs=rg_kw(cast)),
        {"tags": {"team": "ml"}},
        "application/json",
    ).json()
    assert rg["tags"] == {"team": "ml"} and rg["location"] == "westeurope"
    url = reverse("api-workspace", kwargs=ws_kw(cast))
    ws = client.patch(url, {"friendly_name": "Main WS", "tags": {"a": "b"}}, "application/json")
    assert ws.status_code == 200
    body = ws.json()
    assert (body["friendlyName"], body["tags"], body["description"]) == (
        "Main WS",
        {"a": "b"},
        "Main",
    )
    assert body["role"] == "owner"


@pytest.mark.parametrize(
    ("url_name", "kwargs", "body", "field"),
    [
        ("api-resource-groups", sub_kw, {"name": "bad name!"}, "name"),
        ("api-resource-groups", sub_kw, {"name": "rg-x", "tags": {"a": 1}}, "tags"),
        ("api-resource-groups", sub_kw, {"name": "rg-x", "tags": ["a"]}, "tags"),
        ("api-resource-groups", sub_kw, {"name": "rg-x", "tags": {"a\x00": "b"}}, "tags"),
        ("api-resource-groups", sub_kw, {"name": "rg-x", "tags": {"\ud800": "b"}}, "tags"),
        ("api-resource-groups", sub_kw, {}, "name"),
        ("api-resource-group-workspaces", rg_kw, {"name": "x"}, "name"),
        ("api-resource-group-workspaces", rg_kw, {"name": "ws-x", "location": "Up"}, "location"),
        ("api-tokens", lambda c: {}, {"name": "t", "expires_in": 0}, "expires_in"),
        ("api-tokens", lambda c: {}, {"name": "t", "scope": "admin"}, "scope"),
        ("api-tokens", lambda c: {}, {"name": "t", "expires_in": 10**12}, "expires_in"),
        ("api-tokens", lambda c: {}, {"name": "t", "workspace_id": "nope"}, "workspace_id"),
    ],
)
def test_invalid_bodies_are_400_with_the_field_named(cast, url_name, kwargs, body, field):
    response = api(cast, "owner").post(
        reverse(url_name, kwargs=kwargs(cast)), body, "application/json"
    )
    assert field in assert_error(response, 400, "INVALID_PARAMETER_VALUE")["message"]


def test_a_bad_name_is_answered_with_the_naming_rule(cast):
    response = api(cast, "owner").post(
        reverse("api-resource-group-workspaces", kwargs=rg_kw(cast)),
        {"name": "bad name!"},
        "application/json",
    )
    message = assert_error(response, 400, "INVALID_PARAMETER_VALUE")["message"]
    assert message == f"name: {validators.WORKSPACE_NAME_RULE}"


def test_creating_a_taken_workspace_name_is_400(cast):
    response = api(cast, "owner").post(
        reverse("api-resource-group-workspaces", kwargs=rg_kw(cast)),
        {"name": "WS-MAIN"},
        "application/json",
    )
    assert_error(response, 400, "RESOURCE_ALREADY_EXISTS")


# --- Members ------------------------------------------------------------------------------


def test_members_lists_direct_and_inherited_grants(cast):
    client = api(cast, "owner")
    put = client.put(
        reverse("api-workspace-member", kwargs={**ws_kw(cast), "username": "oscar"}),
        {"role": "contributor"},
        "application/json",
    )
    assert put.status_code == 200
    assert put.json() | {"id": 0} == {
        "id": 0,
        "username": "oscar",
        "role": "contributor",
        "scope": "workspace",
        "inherited": False,
    }
    members = client.get(reverse("api-workspace-members", kwargs=ws_kw(cast))).json()["results"]
    seen = {(m["username"], m["role"], m["scope"], m["inherited"]) for m in members}
    assert seen == {
        ("olivia", "owner", "subscription", True),
        ("carlos", "contributor", "resource_group", True),
        ("rita", "reader", "workspace", False),
        ("oscar", "contributor", "workspace", False),
    }
    # The grant makes oscar a contributor there at once.
    assert (
        api(cast, "outsider").get(reverse("api-workspace", kwargs=ws_kw(cast))).json()["role"]
        == "contributor"
    )
    delete = client.delete(
        reverse("api-workspace-member", kwargs={**ws_kw(cast), "username": "oscar"})
    )
    assert delete.status_code == 204
    assert not Membership.objects.filter(user=cast.outsider, workspace=cast.workspace).exists()


def test_member_changes_refuse_unknown_users_and_inherited_grants(cast):
    client = api(cast, "owner")
    unknown = client.put(
        reverse("api-workspace-member", kwargs={**ws_kw(cast), "username": "nobody"}),
        {"role": "reader"},
        "application/json",
    )
    assert_error(unknown, 404)
    # carlos's grant is on the resource group, not on the workspace: nothing to remove here.
    inherited = client.delete(
        reverse("api-workspace-member", kwargs={**ws_kw(cast), "username": "carlos"})
    )
    assert_error(inherited, 404)
    bad_role = client.put(
        reverse("api-workspace-member", kwargs={**ws_kw(cast), "username": "oscar"}),
        {"role": "admin"},
        "application/json",
    )
    assert "role" in assert_error(bad_role, 400)["message"]


def test_the_last_owner_of_a_subscription_stays(cast):
    client = api(cast, "owner")
    url = reverse("api-subscription-member", kwargs={**sub_kw(cast), "username": "olivia"})
    assert_error(client.delete(url), 400, "INVALID_PARAMETER_VALUE")
    demote = client.put(url, {"role": "reader"}, "application/json")
    assert_error(demote, 400, "INVALID_PARAMETER_VALUE")
    assert Membership.objects.get(user=cast.owner, subscription=cast.subscription).role == "owner"


# --- Tokens -------------------------------------------------------------------------------


def test_token_secret_is_shown_once_and_works_until_revoked(cast):
    client = api(cast, "reader")
    created = client.post(
        reverse("api-tokens"), {"name": "laptop", "expires_in": 3600}, "application/json"
    )
    assert created.status_code == 201
    body = created.json()
    secret = body.pop("token")
    assert secret.startswith(body["prefix"])
    assert body["scope"] == "full" and body["status"] == "active" and body["workspace_id"] is None
    assert 3500 < (ApiToken.objects.get(pk=body["id"]).expires_at - timezone.now()).seconds <= 3600
    assert bearer(secret).get(reverse("api-user")).json()["token"]["name"] == "laptop"
    listed = client.get(reverse("api-tokens")).json()["results"]
    assert body["id"] in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)
    revoke = client.delete(reverse("api-token", kwargs={"token_id": body["id"]}))
    assert revoke.status_code == 204
    assert_error(bearer(secret).get(reverse("api-user")), 401, "UNAUTHENTICATED")
    after = {t["id"]: t["status"] for t in client.get(reverse("api-tokens")).json()["results"]}
    assert after[body["id"]] == "revoked"


def test_a_read_token_revokes_only_itself(cast):
    other, _ = services.token_create(user=cast.owner, name="other")
    client = api(cast, "owner", scope="read")
    response = client.delete(reverse("api-token", kwargs={"token_id": other.pk}))
    assert_error(response, 403, "PERMISSION_DENIED")
    assert ApiToken.objects.get(pk=other.pk).revoked_at is None
    itself = ApiToken.objects.get(name="test", user=cast.owner)
    assert client.delete(reverse("api-token", kwargs={"token_id": itself.pk})).status_code == 204
    assert_error(client.get(reverse("api-user")), 401, "UNAUTHENTICATED")


def test_tokens_list_only_the_callers_personal_tokens(cast):
    services.token_create(user=cast.owner, name="not yours")
    services.tracking_token_mint(user=cast.reader, workspace=cast.workspace)
    names = {t["name"] for t in api(cast, "reader").get(reverse("api-tokens")).json()["results"]}
    assert names == {"test"}


def test_a_read_token_mints_read_tokens_only(cast):
    client = api(cast, "owner", scope="read")
    inherited = client.post(reverse("api-tokens"), {"name": "child"}, "application/json")
    assert inherited.status_code == 201 and inherited.json()["scope"] == "read"
    for scope in ["write", "full"]:
        response = client.post(
            reverse("api-tokens"), {"name": "x", "scope": scope}, "application/json"
        )
        assert_error(response, 403, "PERMISSION_DENIED")


def test_a_workspace_bound_token_mints_tokens_for_its_workspace_only(cast):
    services.membership_grant(
        actor=cast.outsider, scope=cast.other_workspace, user=cast.owner, role="reader"
    )
    client = api(cast, "owner", workspace=cast.workspace)
    child = client.post(reverse("api-tokens"), {"name": "child"}, "application/json").json()
    assert child["workspace_id"] == str(cast.workspace.id)
    other = client.post(
        reverse("api-tokens"),
        {"name": "x", "workspace_id": str(cast.other_workspace.id)},
        "application/json",
    )
    # The bound token cannot see the other workspace at all.
    assert_error(other, 404)


def test_a_token_cannot_mint_one_that_outlives_it(cast):
    client = api(cast, "owner", expires_in=600)
    child = client.post(reverse("api-tokens"), {"name": "child"}, "application/json").json()
    parent = ApiToken.objects.get(user=cast.owner, name="test")
    assert ApiToken.objects.get(pk=child["id"]).expires_at == parent.expires_at
    longer = client.post(
        reverse("api-tokens"), {"name": "x", "expires_in": 7200}, "application/json"
    )
    assert_error(longer, 403)
    shorter = client.post(
        reverse("api-tokens"), {"name": "x", "expires_in": 60}, "application/json"
    )
    assert shorter.status_code == 201


def test_tracking_tokens_manage_no_tokens(cast):
    _, raw = services.tracking_token_mint(user=cast.reader, workspace=cast.workspace)
    client = bearer(raw)
    assert_error(client.post(reverse("api-tokens"), {"name": "x"}, "application/json"), 403)
    assert_error(client.get(reverse("api-tokens")), 403)
    mine, _ = services.token_create(user=cast.reader, name="personal")
    assert_error(client.delete(reverse("api-token", kwargs={"token_id": mine.pk})), 403)
    assert ApiToken.objects.get(pk=mine.pk).status == "active"


def test_a_read_token_mints_read_only_tracking_tokens(cast):
    client = api(cast, "owner", scope="read", expires_in=120)
    minted = client.post(reverse("api-tracking-token", kwargs=ws_kw(cast)))
    assert minted.status_code == 201
    token = ApiToken.objects.get(kind="tracking", user=cast.owner)
    assert token.scope == "read"
    assert token.expires_at <= ApiToken.objects.get(name="test").expires_at


# --- Login --------------------------------------------------------------------------------


def test_login_gives_a_working_personal_token(cast):
    response = Client().post(
        reverse("api-login"),
        {"username": "rita", "password": PASSWORD, "expires_in": 86400},
        "application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "id", "name", "username", "expires_at"}
    assert body["username"] == "rita" and body["name"].startswith("cli: ")
    token = ApiToken.objects.get(pk=body["id"])
    assert token.scope == "full" and token.kind == "personal"
    assert bearer(body["token"]).get(reverse("api-user")).json()["username"] == "rita"
    named = Client().post(
        reverse("api-login"),
        {"username": "rita", "password": PASSWORD, "token_name": "my laptop"},
        "application/json",
    )
    assert named.json()["name"] == "my laptop" and named.json()["expires_at"] is None


@pytest.mark.parametrize(
    "credentials",
    [{"username": "rita", "password": "wrong"}, {"username": "nobody", "password": PASSWORD}],
)
def test_login_with_bad_credentials_is_401(cast, credentials):
    response = Client().post(reverse("api-login"), credentials, "application/json")
    body = assert_error(response, 401, "UNAUTHENTICATED")
    assert body["message"] == "Wrong user name or password."
    assert not ApiToken.objects.filter(user=cast.reader).exists()


def test_login_ignores_a_bad_bearer_header_and_needs_no_csrf(cast):
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION="Bearer mls_garbage")
    response = client.post(
        reverse("api-login"), {"username": "rita", "password": PASSWORD}, "application/json"
    )
    assert response.status_code == 201


def test_login_attempts_are_throttled_per_address(cast, settings):
    settings.API_LOGIN_THROTTLE_RATE = "3/min"
    for _ in range(3):
        response = Client().post(
            reverse("api-login"), {"username": "rita", "password": "no"}, "application/json"
        )
        assert response.status_code == 401
    blocked = Client().post(
        reverse("api-login"), {"username": "rita", "password": PASSWORD}, "application/json"
    )
    assert_error(blocked, 429, "REQUEST_LIMIT_EXCEEDED")
    assert int(blocked["Retry-After"]) > 0
    # Another address has its own budget.
    elsewhere = Client(REMOTE_ADDR="10.0.0.9").post(
        reverse("api-login"), {"username": "rita", "password": PASSWORD}, "application/json"
    )
    assert elsewhere.status_code == 201


def test_each_token_has_its_own_request_budget(cast, settings):
    settings.API_THROTTLE_RATE = "3/min"
    first, second = api(cast, "reader"), api(cast, "reader")
    for _ in range(3):
        assert first.get(reverse("api-user")).status_code == 200
    limited = first.get(reverse("api-user"))
    assert_error(limited, 429, "REQUEST_LIMIT_EXCEEDED")
    assert int(limited["Retry-After"]) > 0
    assert second.get(reverse("api-user")).status_code == 200


# --- Deletion -----------------------------------------------------------------------------


def test_deleting_a_workspace_returns_a_job_and_it_is_gone_at_once(cast):
    client = api(cast, "contributor")
    url = reverse("api-workspace", kwargs=ws_kw(cast))
    response = client.delete(f"{url}?confirm=ws-main")
    assert response.status_code == 202
    job = response.json()
    assert job["kind"] == "workspace" and job["status"] == "queued" and not job["is_finished"]
    assert job["url"].endswith(reverse("api-job", kwargs={"job_id": job["id"]}))
    assert_error(client.get(url), 404)
    assert_error(api(cast, "owner").get(url), 404)
    polled = client.get(job["url"])
    assert polled.status_code == 200 and polled.json()["id"] == job["id"]
    assert polled.json()["url"] == job["url"]
    # Polling answers the whole job: every field its serializer declares.
    assert set(polled.json()) == set(DeletionJobSerializer().fields)
    # Not failed: nothing to retry.
    assert_error(client.post(reverse("api-job-retry", kwargs={"job_id": job["id"]})), 400)


def test_deleting_a_resource_group_returns_a_job(cast):
    client = api(cast, "owner")
    url = reverse("api-resource-group", kwargs=rg_kw(cast))
    response = client.delete(f"{url}?confirm=rg-main")
    assert response.status_code == 202 and response.json()["kind"] == "resource_group"
    assert_error(client.get(url), 404)
    assert_error(client.get(reverse("api-workspace", kwargs=ws_kw(cast))), 404)
    assert client.get(response.json()["url"]).json()["status"] == "queued"


@pytest.mark.parametrize("query", ["", "?confirm=", "?confirm=WS-MAIN", "?confirm=ws-mai"])
def test_deleting_without_the_exact_name_deletes_nothing(cast, query):
    client = api(cast, "owner")
    url = reverse("api-workspace", kwargs=ws_kw(cast))
    assert_error(client.delete(url + query), 400, "INVALID_PARAMETER_VALUE")
    assert client.get(url).status_code == 200
    assert Workspace.objects.get(pk=cast.workspace.pk).deletion_requested_at is None
    assert not DeletionJob.objects.exists()
    rg_url = reverse("api-resource-group", kwargs=rg_kw(cast))
    assert_error(client.delete(rg_url + "?confirm=rg"), 400)
    assert ResourceGroup.objects.get(pk=cast.resource_group.pk).deletion_requested_at is None


def test_a_read_token_cannot_delete_or_retry(cast):
    client = api(cast, "owner", scope="read")
    url = reverse("api-workspace", kwargs=ws_kw(cast))
    assert_error(client.delete(f"{url}?confirm=ws-main"), 403)
    job_kwargs = failed_job(cast)
    assert client.get(reverse("api-job", kwargs=job_kwargs)).status_code == 200
    assert_error(client.post(reverse("api-job-retry", kwargs=job_kwargs)), 403)


def test_retrying_afailed_job_queues_it_again(cast):
    job_kwargs = failed_job(cast)
    response = api(cast, "owner").post(reverse("api-job-retry", kwargs=job_kwargs))
    assert response.status_code == 202 and response.json()["status"] == "queued"


# --- One error shape ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/subscriptions/not-a-uuid",
        "/api/v1/subscriptions/not-a-uuid/resourceGroups/rg-main",
        "/api/v1/jobs/123",
        "/api/v1/tokens/xyz",
        "/api/v1/no-such-thing",
        "/api/v1/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/a%00b",
    ],
)
def test_unknown_paths_are_json_404(cast, path):
    for client in (api(cast, "owner"), Client()):
        assert_error(client.get(path), 404, "RESOURCE_DOES_NOT_EXIST")
        assert_error(client.post(path, {}, "application/json"), 404)


def test_missing_ids_are_404(cast):
    client = api(cast, "owner")
    missing = "00000000-0000-0000-0000-000000000000"
    assert_error(client.get(f"/api/v1/subscriptions/{missing}"), 404)
    assert_error(client.get(f"/api/v1/jobs/{missing}"), 404)
    assert_error(client.delete(f"/api/v1/tokens/{missing}"), 404)


def test_non_json_bodies_are_400_or_415(cast):
    client = api(cast, "owner")
    url = reverse("api-resource-groups", kwargs=sub_kw(cast))
    broken = client.post(url, "{not json", content_type="application/json")
    body = assert_error(broken, 400, "INVALID_PARAMETER_VALUE")
    assert "Traceback" not in body["message"] and "/work" not in body["message"]
    form = client.post(url, {"name": "rg-x"})  # multipart
    assert_error(form, 415, "UNSUPPORTED_MEDIA_TYPE")
    listed = client.post(url, [1, 2], content_type="application/json")
    assert_error(listed, 400)


def test_unsupported_methods_answer_in_the_error_shape(cast):
    response = api(cast, "owner").put(reverse("api-workspaces"), {}, "application/json")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


def test_workspace_details_never_show_a_server_path(cast, settings):
    details = api(cast, "owner").get(reverse("api-workspace", kwargs=ws_kw(cast))).json()
    assert details["storageAccount"] == "local"
    assert str(settings.ARTIFACT_ROOT) not in str(details)


def test_expired_token_is_401(cast):
    token, raw = services.token_create(user=cast.reader, name="old", expires_in=60)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    assert_error(bearer(raw).get(reverse("api-workspaces")), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("url_name", "kwargs"),
    [
        ("api-subscriptions", lambda c: {}),  # ordered by name
        ("api-tokens", lambda c: {}),  # by creation time
        ("api-workspace-members", ws_kw),  # by id
    ],
)
@pytest.mark.parametrize("position", [b"a\x00b", b"garbage", b"2026-13-45"])
def test_a_forged_cursor_position_is_400(cast, url_name, kwargs, position):
    import base64

    forged = base64.b64encode(b"o=0&r=0&p=" + position).decode()
    url = reverse(url_name, kwargs=kwargs(cast))
    response = api(cast, "owner").get(url, {"cursor": forged})
    if url_name == "api-subscriptions" and position != b"a\x00b":
        assert response.status_code == 200  # any text is a position in a list of names
    else:
        assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_a_bad_login_throttle_rate_refuses_to_start(tmp_path):
    from tests.test_settings import manage

    result = manage(tmp_path, "check", API_LOGIN_THROTTLE_RATE="lots")
    assert result.returncode != 0
    assert "API_LOGIN_THROTTLE_RATE must look like 10/min" in result.stderr


def test_a_lone_surrogate_in_the_body_is_a_400_not_a_500(cast):
    client = api(cast, "owner")
    body = '{"name": "x", "scope": "\\ud800"}'
    response = client.post(reverse("api-tokens"), body, content_type="application/json")
    assert "scope" in assert_error(response, 400, "INVALID_PARAMETER_VALUE")["message"]
    url = reverse("api-subscription-member", kwargs={**sub_kw(cast), "username": "rita"})
    response = client.put(url, '{"role": "\\udfff"}', content_type="application/json")
    assert_error(response, 400)


def test_an_unhandled_crash_answers_json_on_the_apis_and_a_page_elsewhere(settings):
    """Whatever escapes every handler: the APIs still answer MLflow's error shape (clients
    branch on it), pages the studio's 500 page; neither shows the trace."""
    settings.ROOT_URLCONF = "portal.tests.crash_urls"
    client = Client(raise_request_exception=False)
    api_answer = client.get("/api/v1/crash")
    assert api_answer.status_code == 500
    assert api_answer.json() == {
        "error_code": "INTERNAL_ERROR",
        "message": "Internal server error.",
    }
    page = client.get("/crash")
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    for answer in (api_answer, page):
        assert b"secret detail" not in answer.content and b"Traceback" not in answer.content
