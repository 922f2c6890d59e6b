"""API tokens: hashed, expiring, revocable, scoped to a workspace and capped by scope."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal import selectors, services
from portal.models import ApiToken, AuditEntry


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_token_is_stored_hashed_and_authenticates(cast):
    token, raw = services.token_create(user=cast.reader, name="laptop")
    assert raw.startswith("mls_") and len(raw) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw not in (stored.key_hash, stored.prefix) and stored.prefix == raw[:12]
    assert bearer(raw).get(reverse("api-user")).json()["username"] == "rita"


def test_expired_token_is_refused(cast):
    token, raw = services.token_create(user=cast.reader, name="short", expires_in=60)
    assert bearer(raw).get(reverse("api-user")).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(raw).get(reverse("api-user"))
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert ApiToken.objects.get(pk=token.pk).status == "expired"


def test_revoked_token_is_refused_and_audited(cast):
    token, raw = services.token_create(user=cast.reader, name="ci")
    services.token_revoke(actor=cast.reader, token=token)
    assert bearer(raw).get(reverse("api-user")).status_code == 401
    assert AuditEntry.objects.filter(action="revoke", target_id=str(token.pk)).exists()


def test_revoking_through_the_page(cast):
    token, raw = services.token_create(user=cast.reader, name="ci")
    client = Client()
    client.force_login(cast.reader)
    assert client.post(reverse("token-revoke", kwargs={"token_id": token.pk})).status_code == 302
    assert bearer(raw).get(reverse("api-user")).status_code == 401


def test_someone_elses_token_cannot_be_revoked(cast):
    token, raw = services.token_create(user=cast.reader, name="mine")
    client = Client()
    client.force_login(cast.outsider)
    assert client.post(reverse("token-revoke", kwargs={"token_id": token.pk})).status_code == 404
    assert bearer(raw).get(reverse("api-user")).status_code == 200


def test_token_of_a_deactivated_user_is_refused(cast):
    _, raw = services.token_create(user=cast.reader, name="x")
    cast.reader.is_active = False
    cast.reader.save()
    assert bearer(raw).get(reverse("api-user")).status_code == 401


@pytest.mark.parametrize("raw", ["", "garbage", "mls_" + "a" * 43, "Basic abc"])
def test_malformed_or_unknown_tokens_are_refused(db, raw):
    response = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get(reverse("api-user"))
    assert response.status_code == 401


def test_last_used_is_recorded(cast):
    token, raw = services.token_create(user=cast.reader, name="x")
    assert token.last_used_at is None
    bearer(raw).get(reverse("api-user"))
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_workspace_scoped_token_sees_only_its_workspace(cast):
    services.membership_grant(
        actor=cast.outsider, scope=cast.other_workspace, user=cast.owner, role="reader"
    )
    _, raw = services.token_create(user=cast.owner, name="scoped", workspace=cast.workspace)
    client = bearer(raw)
    names = [ws["name"] for ws in client.get(reverse("api-workspaces")).json()["results"]]
    assert names == ["ws-main"]
    other = cast.other_workspace
    url = reverse(
        "api-workspace",
        kwargs={
            "subscription_id": other.resource_group.subscription_id,
            "resource_group": other.resource_group.name,
            "workspace": other.name,
        },
    )
    assert client.get(url).status_code == 404


def test_token_for_a_workspace_the_user_cannot_see_is_refused(cast):
    from portal.errors import NotFound

    with pytest.raises(NotFound):
        services.token_create(user=cast.outsider, name="x", workspace=cast.workspace)


def test_scope_caps_the_role(cast):
    read, _ = services.token_create(user=cast.owner, name="r", scope="read")
    write, _ = services.token_create(user=cast.owner, name="w", scope="write")
    full, _ = services.token_create(user=cast.owner, name="f", scope="full")
    assert selectors.role_for(cast.owner, cast.workspace, read) == "reader"
    assert selectors.role_for(cast.owner, cast.workspace, write) == "contributor"
    assert selectors.role_for(cast.owner, cast.workspace, full) == "owner"
    # A cap never raises a weaker role.
    read_r, _ = services.token_create(user=cast.reader, name="w", scope="write")
    assert selectors.role_for(cast.reader, cast.workspace, read_r) == "reader"


def test_tracking_token_is_short_lived_and_workspace_bound(cast, settings):
    token, _ = services.tracking_token_mint(user=cast.reader, workspace=cast.workspace)
    lifetime = (token.expires_at - timezone.now()).total_seconds()
    assert settings.TRACKING_TOKEN_LIFETIME - 5 < lifetime <= settings.TRACKING_TOKEN_LIFETIME
    assert token.workspace_id == cast.workspace.id and token.scope == "write"


def test_tracking_token_minted_over_the_api_cannot_mint_more(cast):
    _, raw = services.token_create(user=cast.reader, name="personal")
    url = reverse(
        "api-tracking-token",
        kwargs={
            "subscription_id": cast.subscription.id,
            "resource_group": "rg-main",
            "workspace": "ws-main",
        },
    )
    minted = bearer(raw).post(url, {}, content_type="application/json").json()
    assert minted["token"].startswith("mls_")
    assert minted["tracking_uri"].endswith("/workspaces/ws-main")
    assert bearer(minted["token"]).get(reverse("api-user")).json()["username"] == "rita"
    again = bearer(minted["token"]).post(url, {}, content_type="application/json")
    assert again.status_code == 403


def test_purge_removes_only_long_expired_tracking_tokens(cast):
    from portal.tasks import purge_expired_tokens

    old, _ = services.tracking_token_mint(user=cast.reader, workspace=cast.workspace)
    fresh, _ = services.tracking_token_mint(user=cast.reader, workspace=cast.workspace)
    personal, _ = services.token_create(user=cast.reader, name="p", expires_in=10)
    past = timezone.now() - timedelta(days=2)
    ApiToken.objects.filter(pk__in=[old.pk, personal.pk]).update(expires_at=past)
    assert purge_expired_tokens() == 1
    assert set(ApiToken.objects.values_list("pk", flat=True)) >= {fresh.pk, personal.pk}
    assert not ApiToken.objects.filter(pk=old.pk).exists()


def test_tokens_page_shows_the_secret_once(cast):
    client = Client()
    client.force_login(cast.reader)
    response = client.post(
        reverse("tokens"), {"name": "laptop", "scope": "full", "expires_in": "604800"}
    )
    body = response.content.decode()
    token = ApiToken.objects.get(user=cast.reader, name="laptop")
    assert token.prefix in body and 'id="new-token"' in body
    assert 'id="new-token"' not in client.get(reverse("tokens")).content.decode()
    assert 6 * 86400 < (token.expires_at - timezone.now()).total_seconds() <= 7 * 86400
