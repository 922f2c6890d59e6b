"""config.json search, write_config, the credential chain and the stored login file —
the parts that need no server."""

from __future__ import annotations

import json
import stat

import pytest

from mlstudio import (
    ConfigurationError,
    DefaultAuthentication,
    EnvironmentAuthentication,
    StoredLoginAuthentication,
    TokenAuthentication,
)
from mlstudio._client.config import find_config
from mlstudio.auth import credentials_path, forget_login, resolve_auth, save_login, stored_login
from mlstudio.exceptions import AuthenticationError

SERVER = "http://studio.example:8000"


def write(path, **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"workspace_name": path.parent.name, **extra}))


def test_config_search_order_cwd_then_mlstudio_folder_then_parents(sdk_env):
    deep = sdk_env / "project" / "notebooks"
    deep.mkdir(parents=True)
    with pytest.raises(ConfigurationError, match=r"No config.json found"):
        find_config(deep)

    write(sdk_env / "config.json")  # a grandparent's plain file
    assert find_config(deep) == sdk_env / "config.json"
    write(sdk_env / "project" / ".mlstudio" / "config.json")  # a parent's .mlstudio/ file
    assert find_config(deep) == sdk_env / "project" / ".mlstudio" / "config.json"
    write(deep / ".mlstudio" / "config.json")  # the folder's own .mlstudio/ file
    assert find_config(deep) == deep / ".mlstudio" / "config.json"
    write(deep / "config.json")  # the folder's own plain file comes first
    assert find_config(deep) == deep / "config.json"
    # Default start: the current folder. A file path is taken as it is.
    assert find_config() == sdk_env / "config.json"
    assert find_config(sdk_env / "project" / ".mlstudio" / "config.json").parent.name == ".mlstudio"
    # Another file name.
    write(sdk_env / "project" / "staging.json")
    assert find_config(deep, "staging.json") == sdk_env / "project" / "staging.json"


def test_from_config_reports_a_bad_file(sdk_env):
    from mlstudio import Workspace

    (sdk_env / "config.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="Cannot read"):
        Workspace.from_config()
    (sdk_env / "config.json").write_text(json.dumps({"workspace_name": "w"}))
    with pytest.raises(ConfigurationError, match="lacks subscription_id, resource_group"):
        Workspace.from_config()
    (sdk_env / "config.json").write_text(
        json.dumps(
            {
                "workspace_name": "w",
                "resource_group": "g",
                "subscription_id": "00000000-0000-0000-0000-000000000000",
            }
        )
    )
    with pytest.raises(ConfigurationError, match="MLSTUDIO_SERVER_URL"):
        Workspace.from_config()


def test_stored_login_file_is_private_and_per_server(sdk_env, monkeypatch):
    path = save_login(SERVER + "/", "mls_first", username="carlos")
    assert path == credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    save_login("https://other.example", "mls_other", username="rita")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stored_login(SERVER) == {"token": "mls_first", "username": "carlos"}
    assert StoredLoginAuthentication().get_token(SERVER) == "mls_first"
    assert forget_login(SERVER)["token"] == "mls_first"
    with pytest.raises(AuthenticationError, match="mlstudio login --server"):
        StoredLoginAuthentication().get_token(SERVER)
    assert stored_login("https://other.example")["token"] == "mls_other"


def test_default_chain_environment_then_stored_login(sdk_env, monkeypatch):
    chain = DefaultAuthentication()
    with pytest.raises(AuthenticationError, match="MLSTUDIO_TOKEN"):
        chain.get_token(SERVER)
    save_login(SERVER, "mls_stored")
    assert chain.get_authentication_header(SERVER) == {"Authorization": "Bearer mls_stored"}
    monkeypatch.setenv("MLSTUDIO_TOKEN", "mls_env")
    assert chain.get_token(SERVER) == "mls_env"
    assert isinstance(chain.source(SERVER), EnvironmentAuthentication)
    # An explicit credential is used as it is; a plain string is a token.
    assert resolve_auth("mls_explicit").get_token(SERVER) == "mls_explicit"
    explicit = TokenAuthentication("mls_x")
    assert resolve_auth(explicit) is explicit
    assert isinstance(resolve_auth(None), DefaultAuthentication)
