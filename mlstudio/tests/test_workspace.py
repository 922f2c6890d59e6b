"""Workspaces through the SDK against a live server: find, create, details, errors."""

from __future__ import annotations

import json
import uuid

import pytest

from mlstudio import (
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    ResourceGroup,
    TokenAuthentication,
    UserErrorException,
    ValidationError,
    Workspace,
    WorkspaceNotFound,
)
from mlstudio.exceptions import ResourceGroupNotFound

DETAIL_KEYS = {
    "id",
    "name",
    "workspaceid",
    "location",
    "description",
    "friendlyName",
    "tags",
    "subscriptionId",
    "subscriptionName",
    "resourceGroup",
    "creationTime",
    "storageAccount",
    "mlflowTrackingUri",
}


def test_constructor_get_details_and_write_config_round_trip(studio, sdk_env):
    ws = studio.workspace("reader")
    details = ws.get_details()
    assert details.keys() >= DETAIL_KEYS
    assert details["name"] == "ws-main" and details["resourceGroup"] == "rg-main"
    assert details["subscriptionId"] == studio.subscription_id
    assert details["description"] == "Main"
    assert details["mlflowTrackingUri"].startswith(studio.url + "/mlflow/v1.0/subscriptions/")
    assert details["storageAccount"] == "local"
    assert details["role"] == "reader"
    assert ws.location == details["location"] and ws.workspace_id == details["workspaceid"]

    written = ws.write_config()
    assert written == sdk_env / ".mlstudio" / "config.json"
    assert json.loads(written.read_text()) == {
        "subscription_id": studio.subscription_id,
        "resource_group": "rg-main",
        "workspace_name": "ws-main",
        "server_url": studio.url,
    }
    nested = sdk_env / "a" / "b"
    nested.mkdir(parents=True)
    again = Workspace.from_config(nested, auth=studio.auth("reader"))
    assert again == ws and again.get_details()["workspaceid"] == ws.workspace_id
    # write_config(path, file_name) and from_config(path, _file_name) agree.
    other = ws.write_config(sdk_env / "elsewhere", "dev.json")
    assert other == sdk_env / "elsewhere" / ".mlstudio" / "dev.json"
    assert Workspace.from_config(other, auth=studio.auth("reader")) == ws


def test_from_config_uses_the_environment_token_and_server(studio, sdk_env, monkeypatch):
    config = {
        "subscription_id": studio.subscription_id,
        "resource_group": "rg-main",
        "workspace_name": "ws-main",
    }
    (sdk_env / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("MLSTUDIO_SERVER_URL", studio.url + "/")
    with pytest.raises(AuthenticationError, match="No credentials"):
        Workspace.from_config()
    monkeypatch.setenv("MLSTUDIO_TOKEN", studio.tokens["reader"])
    assert Workspace.from_config().name == "ws-main"


def test_get_by_name_alone_or_with_its_scope(studio):
    from portal import services

    auth = studio.auth("owner")
    ws = Workspace.get("ws-main", auth=auth, server_url=studio.url)
    assert (ws.subscription_id, ws.resource_group) == (studio.subscription_id, "rg-main")
    assert Workspace.get("ws-main", studio.subscription_id, "rg-main", auth, studio.url) == ws
    # A second workspace of that name elsewhere: the name alone is ambiguous.
    rg2 = services.resource_group_create(
        actor=studio.cast.owner, subscription=studio.cast.subscription, name="rg-two"
    )
    services.workspace_create(actor=studio.cast.owner, resource_group=rg2, name="ws-main")
    with pytest.raises(UserErrorException, match="2 workspaces are named 'ws-main'"):
        Workspace.get("ws-main", auth=auth, server_url=studio.url)
    assert Workspace.get("ws-main", resource_group="rg-two", auth=auth, server_url=studio.url)
    listed = Workspace.list(auth=auth, server_url=studio.url)
    assert sorted(w.resource_group for w in listed["ws-main"]) == ["rg-main", "rg-two"]
    in_group = Workspace.list(studio.subscription_id, "rg-two", auth=auth, server_url=studio.url)
    assert list(in_group) == ["ws-main"]
    # The outsider sees neither.
    with pytest.raises(WorkspaceNotFound):
        Workspace.get("ws-main", auth=studio.auth("outsider"), server_url=studio.url)


def test_create_with_its_resource_group_and_exist_ok(studio):
    auth = studio.auth("owner")
    ws = Workspace.create(
        "ws-new",
        studio.subscription_id,
        "rg-new",
        location="northeurope",
        description="Fresh",
        tags={"team": "vision"},
        auth=auth,
        server_url=studio.url,
    )
    details = ws.get_details()
    assert details["resourceGroup"] == "rg-new" and details["location"] == "northeurope"
    assert details["description"] == "Fresh" and details["tags"] == {"team": "vision"}
    assert (
        ResourceGroup(studio.subscription_id, "rg-new", auth, studio.url).get_details()["name"]
        == "rg-new"
    )
    with pytest.raises(ConflictError) as caught:
        Workspace.create(
            "ws-new", studio.subscription_id, "rg-new", auth=auth, server_url=studio.url
        )
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert caught.value.status_code == 400
    again = Workspace.create(
        "ws-new", studio.subscription_id, "rg-new", exist_ok=True, auth=auth, server_url=studio.url
    )
    assert again == ws
    with pytest.raises(ResourceGroupNotFound):
        Workspace.create(
            "ws-x",
            studio.subscription_id,
            "rg-missing",
            create_resource_group=False,
            auth=auth,
            server_url=studio.url,
        )


def test_clear_exceptions_for_auth_permission_missing_and_bad_names(studio):
    url, sub = studio.url, studio.subscription_id
    with pytest.raises(AuthenticationError) as caught:
        Workspace(sub, "rg-main", "ws-main", auth=TokenAuthentication("mls_wrong"), server_url=url)
    assert caught.value.status_code == 401 and caught.value.error_code == "UNAUTHENTICATED"
    assert "invalid" in str(caught.value)

    # The reader sees the workspace but may not delete it.
    with pytest.raises(AuthorizationError) as caught:
        studio.workspace("reader").delete()
    assert caught.value.status_code == 403 and caught.value.error_code == "PERMISSION_DENIED"
    assert isinstance(caught.value, PermissionError)

    with pytest.raises(WorkspaceNotFound) as caught:
        Workspace(sub, "rg-main", "ws-nope", auth=studio.auth(), server_url=url)
    assert caught.value.status_code == 404
    assert isinstance(caught.value, LookupError)
    # Outsiders are told "not found", not "forbidden".
    with pytest.raises(WorkspaceNotFound):
        Workspace(sub, "rg-main", "ws-main", auth=studio.auth("outsider"), server_url=url)

    for bad in ["has space", "x" * 300, "ünï/code", "-dash-first"]:
        with pytest.raises(ValidationError) as caught:
            Workspace.create(bad, sub, "rg-main", auth=studio.auth(), server_url=url)
        assert caught.value.status_code == 400, bad
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(ValidationError, match="UUID"):
        Workspace("not-a-uuid", "rg-main", "ws-main", auth=studio.auth(), server_url=url)
    with pytest.raises(WorkspaceNotFound):
        Workspace(str(uuid.uuid4()), "rg-main", "ws-main", auth=studio.auth(), server_url=url)
