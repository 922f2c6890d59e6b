"""Names follow Azure-like rules and are unique (case-insensitively) within their parent."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from portal import services, validators
from portal.errors import AlreadyExists, InvalidParameter


@pytest.mark.parametrize("name", ["ws1", "my-workspace", "A_b-3", "x" * 33, "0abc"])
def test_valid_workspace_names(name):
    validators.validate_workspace_name(name)


@pytest.mark.parametrize(
    "name", ["ab", "x" * 34, "-abc", "_abc", "has space", "dots.no", "slash/no", "ünï", "", "a..b"]
)
def test_invalid_workspace_names(name):
    with pytest.raises(ValidationError):
        validators.validate_workspace_name(name)


@pytest.mark.parametrize("name", ["rg", "my.rg", "rg_(prod)", "r", "x" * 90, "grüppe"])
def test_valid_resource_group_names(name):
    validators.validate_resource_group_name(name)


@pytest.mark.parametrize("name", ["", "ends.", "x" * 91, "has space", "a/b", "a%b", "<script>"])
def test_invalid_resource_group_names(name):
    with pytest.raises(ValidationError):
        validators.validate_resource_group_name(name)


@pytest.mark.parametrize("name", ["Contoso", "Pay-As-You-Go (dev)", "Team 1.5", "x" * 64])
def test_valid_subscription_names(name):
    validators.validate_subscription_name(name)


@pytest.mark.parametrize("name", ["", " leading", "trailing ", "dot.", "x" * 65, "a;b", "a<b>"])
def test_invalid_subscription_names(name):
    with pytest.raises(ValidationError):
        validators.validate_subscription_name(name)


@pytest.mark.parametrize("location", ["local", "westeurope", "eastus2"])
def test_valid_locations(location):
    validators.validate_location(location)


@pytest.mark.parametrize("location", ["", "West Europe", "2east", "x" * 41])
def test_invalid_locations(location):
    with pytest.raises(ValidationError):
        validators.validate_location(location)


def test_tags_parse_and_limits():
    assert validators.parse_tags("team = cv\n\ncost=42") == {"team": "cv", "cost": "42"}
    with pytest.raises(ValidationError):
        validators.parse_tags("novalue")
    with pytest.raises(ValidationError):
        validators.parse_tags("a/b=1")
    with pytest.raises(ValidationError):
        validators.validate_tags({f"k{i}": "v" for i in range(51)})
    with pytest.raises(ValidationError):
        validators.validate_tags({"k": "v" * 257})


def test_services_enforce_rules_and_uniqueness(cast):
    with pytest.raises(InvalidParameter):
        services.workspace_create(actor=cast.owner, resource_group=cast.resource_group, name="no")
    with pytest.raises(AlreadyExists):
        services.workspace_create(
            actor=cast.owner, resource_group=cast.resource_group, name="WS-MAIN"
        )
    with pytest.raises(AlreadyExists):
        services.resource_group_create(
            actor=cast.owner, subscription=cast.subscription, name="RG-Main"
        )
    with pytest.raises(AlreadyExists):
        services.subscription_create(actor=cast.owner, name="contoso")
    # The same name is fine under another parent.
    rg2 = services.resource_group_create(
        actor=cast.owner, subscription=cast.subscription, name="rg-two"
    )
    assert services.workspace_create(actor=cast.owner, resource_group=rg2, name="ws-main").pk


def test_duplicate_and_invalid_names_show_on_the_form(cast):
    client = Client()
    client.force_login(cast.owner)
    url = reverse(
        "workspace-create",
        kwargs={
            "subscription_id": cast.subscription.id,
            "resource_group": "rg-main",
        },
    )
    body = client.post(url, {"name": "Ws-Main"}).content.decode()
    assert "already exists" in body
    body = client.post(url, {"name": "a b"}).content.decode()
    assert "3 to 33 letters" in body


def test_workspace_urls_are_case_insensitive(cast):
    client = Client()
    client.force_login(cast.reader)
    url = reverse(
        "workspace",
        kwargs={
            "subscription_id": cast.subscription.id,
            "resource_group": "RG-MAIN",
            "workspace": "WS-Main",
        },
    )
    assert client.get(url).status_code == 200
