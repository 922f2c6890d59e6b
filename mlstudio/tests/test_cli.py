"""The `mlstudio` command, run in-process through mlstudio.cli.main: output formats, stored
logins and the exit codes scripts rely on."""

from __future__ import annotations

import json

from mlstudio.auth import credentials_path, stored_login


def test_login_stores_a_token_and_later_commands_use_it(studio, cli):
    from portal.models import ApiToken
    from portal.tests.factories import PASSWORD

    bad = cli("login", "--server", studio.url, "-u", "carlos", "--password-stdin", stdin="nope\n")
    assert bad.code == 3
    assert bad.err == "mlstudio: error: Wrong user name or password.\n"
    assert not credentials_path().exists()

    ok = cli(
        "login",
        "--server",
        studio.url + "/",
        "-u",
        "carlos",
        "--password-stdin",
        "--token-name",
        "laptop",
        "-o",
        "json",
        stdin=PASSWORD + "\n",
    )
    assert ok.code == 0, ok.err
    assert ok.json["username"] == "carlos" and ok.json["name"] == "laptop"
    assert "token" not in ok.json  # the secret is stored, never printed
    assert f"Logged in to {studio.url} as carlos." in ok.err
    stored = stored_login(studio.url)
    assert stored["token"].startswith("mls_") and stored["username"] == "carlos"
    minted = ApiToken.objects.get(name="laptop")
    assert minted.user == studio.cast.contributor
    # A stored credential expires (90 days unless --expires-in says otherwise).
    lifetime = (minted.expires_at - minted.created_at).total_seconds()
    assert abs(lifetime - 90 * 24 * 3600) < 60

    # No --server: the only stored login's server.
    listed = cli("workspace", "list")
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    assert lines[0].split() == ["NAME", "RESOURCE", "GROUP", "SUBSCRIPTION", "LOCATION", "ROLE"]
    assert lines[1].split() == ["ws-main", "rg-main", "Contoso", "westeurope", "contributor"]
    as_json = cli("workspace", "list", "--output", "json")
    assert [w["name"] for w in as_json.json] == ["ws-main"]
    assert cli("--output", "json", "workspace", "list").json == as_json.json

    # logout revokes the token on the server and forgets it here.
    assert cli("logout").code == 0
    assert stored_login(studio.url) is None
    assert ApiToken.objects.get(name="laptop").revoked_at is not None
    assert cli("workspace", "list", "--server", studio.url).code == 3


def test_login_with_a_pasted_token(studio, cli):
    result = cli("login", "--server", studio.url, "--token", studio.tokens["reader"])
    assert result.code == 0, result.err
    assert stored_login(studio.url)["username"] == "rita"
    assert cli("login", "--server", studio.url, "--token", "mls_nope").code == 3


def test_workspace_commands(logged_in, cli, sdk_env, monkeypatch):
    from portal.models import DeletionJob

    sub = logged_in.subscription_id
    shown = cli("workspace", "show", "ws-main", "-o", "json")
    assert shown.code == 0 and shown.json["resourceGroup"] == "rg-main"
    table = cli("workspace", "show", "ws-main", "-g", "rg-main", "-s", sub)
    assert "mlflowTrackingUri" in table.out and "westeurope" in table.out
    missing = cli("workspace", "show", "ws-nope")
    assert missing.code == 4 and missing.err.startswith("mlstudio: error: No workspace named")
    # From config.json.
    (sdk_env / "config.json").write_text(
        json.dumps(
            {"subscription_id": sub, "resource_group": "rg-main", "workspace_name": "ws-main"}
        )
    )
    assert cli("workspace", "show", "-o", "json").json["name"] == "ws-main"

    created = cli("workspace", "create", "ws-cli", "-s", sub, "-g", "rg-main", "-o", "json")
    assert created.code == 0, created.err
    assert created.json["name"] == "ws-cli" and created.json["role"] == "contributor"
    again = cli("workspace", "create", "ws-cli", "-s", sub, "-g", "rg-main")
    assert again.code == 5 and "exists" in again.err
    assert cli("workspace", "create", "ws-cli", "-s", sub, "-g", "rg-main", "--exist-ok").code == 0
    bad = cli("workspace", "create", "bad name", "-s", sub, "-g", "rg-main")
    assert bad.code == 5 and bad.err.count("\n") == 1
    not_uuid = cli("workspace", "create", "ws-x", "-s", "contoso", "-g", "rg-main")
    assert not_uuid.code == 5 and "UUID" in not_uuid.err

    # Deleting asks to type the name; a wrong one deletes nothing.
    refused = cli("workspace", "delete", "ws-cli", "-g", "rg-main", "-s", sub, stdin="ws-cl\n")
    assert refused.code == 5 and "nothing was deleted" in refused.err
    assert cli("workspace", "show", "ws-cli").code == 0
    # The reader may not delete ($MLSTUDIO_TOKEN wins over the stored login).
    monkeypatch.setenv("MLSTUDIO_TOKEN", logged_in.tokens["reader"])
    forbidden = cli("workspace", "delete", "ws-main", "-g", "rg-main", "-s", sub, "--yes")
    assert forbidden.code == 3 and "mlstudio: error:" in forbidden.err
    assert not DeletionJob.objects.exists()


def test_experiment_and_run_commands(logged_in, cli, monkeypatch):
    import mlflow

    ws = logged_in.workspace("contributor")
    mlflow.set_tracking_uri(ws.get_mlflow_tracking_uri())
    mlflow.set_experiment("cli-exp")
    with mlflow.start_run(run_name="one") as first:
        mlflow.log_metric("alpha", 0.03)
        mlflow.log_param("lr", "0.1")
    with mlflow.start_run(run_name="two") as second:
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    flags = ["-w", "ws-main"]

    experiments = cli("experiment", "list", *flags)
    assert experiments.code == 0, experiments.err
    assert experiments.out.splitlines()[0].split() == ["ID", "NAME", "STATE", "CREATED", "(UTC)"]
    assert "cli-exp" in experiments.out
    as_json = cli("experiment", "list", *flags, "-o", "json", "--search", "CLI")
    assert [e["name"] for e in as_json.json] == ["cli-exp"]

    runs = cli("run", "list", "--experiment", "cli-exp", *flags)
    assert runs.code == 0, runs.err
    rows = [line.split() for line in runs.out.splitlines()]
    assert rows[0][:3] == ["RUN", "ID", "NAME"]
    assert [row[0] for row in rows[1:]] == [second.info.run_id, first.info.run_id]
    assert rows[1][1:3] == ["two", "Completed"] and rows[1][-1] == "carlos"
    assert len(cli("run", "list", "-e", "cli-exp", *flags, "--max", "1", "-o", "json").json) == 1
    assert cli("run", "list", "-e", "nope", *flags).code == 4

    shown = cli("run", "show", first.info.run_id, *flags, "-o", "json")
    assert shown.code == 0, shown.err
    assert shown.json["metrics"] == {"alpha": 0.03}
    assert shown.json["properties"] == {"lr": "0.1"} and shown.json["status"] == "Completed"
    assert shown.json["experimentName"] == "cli-exp"
    table = cli("run", "show", second.info.run_id, *flags)
    assert "loss" in table.out and "[1.0, 0.5, 0.3333333333333333]" in table.out

    deleted = cli("run", "delete", first.info.run_id, *flags, "-o", "json")
    assert deleted.code == 0 and deleted.json["lifecycle_stage"] == "deleted"
    remaining = cli("run", "list", "-e", "cli-exp", *flags, "-o", "json").json
    assert [r["run_id"] for r in remaining] == [second.info.run_id]
    assert cli("run", "show", "f" * 32, *flags).code == 4


def test_token_create(logged_in, cli):
    from portal.models import ApiToken

    made = cli(
        "token",
        "create",
        "ci",
        "--scope",
        "read",
        "--expires-in",
        "3600",
        "-w",
        "ws-main",
        "-o",
        "json",
    )
    assert made.code == 0, made.err
    assert made.json["token"].startswith("mls_") and made.json["scope"] == "read"
    token = ApiToken.objects.get(name="ci")
    assert str(token.workspace_id) == made.json["workspace_id"] and token.expires_at
    table = cli("token", "create", "plain")
    assert table.code == 0
    assert table.out.strip().splitlines()[-1].startswith("mls_")
    assert "shown once" in table.err
    assert cli("token", "create", "x", "--scope", "root").code == 2


def test_usage_errors_exit_2(sdk_env, cli):
    assert cli().code == 2
    assert cli("workspace").code == 2
    no_arg = cli("run", "show")
    assert no_arg.code == 2 and "mlstudio: error:" in no_arg.err
    no_server = cli("workspace", "list")
    assert no_server.code == 2 and "No server" in no_server.err
    no_config = cli("experiment", "list", "--server", "http://127.0.0.1:9")
    assert no_config.code == 2 and "config.json" in no_config.err
    assert cli("--version").code == 0
