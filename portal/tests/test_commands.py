"""The headless set-up commands used by CI, scripts and tests."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from portal.models import Membership, ResourceGroup, Subscription, Workspace
from portal.tests.factories import UserFactory


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def test_create_workspace_creates_the_missing_levels_and_prints_the_tracking_uri(db):
    user = UserFactory(username="ada")
    lines = run("create_workspace", "Research", "rg-ml", "ws-ml", "--owner", "ada")
    ws = Workspace.objects.get(name="ws-ml")
    sub = Subscription.objects.get(name="Research")
    assert lines[-1] == (
        f"http://127.0.0.1:8000/mlflow/v1.0/subscriptions/{sub.id}/resourceGroups/rg-ml/workspaces/ws-ml"
    )
    assert Membership.objects.filter(user=user, workspace=ws, role="owner").exists()
    # Running it again creates nothing new and prints the same URI.
    assert run("create_workspace", "research", "RG-ML", "ws-ml", "--owner", "ada")[-1] == lines[-1]
    assert (
        Subscription.objects.count()
        == ResourceGroup.objects.count()
        == Workspace.objects.count()
        == 1
    )


def test_create_workspace_adds_to_existing_parents(db):
    UserFactory(username="ada")
    run("create_workspace", "Research", "rg-ml", "ws-one", "--owner", "ada")
    run(
        "create_workspace",
        "Research",
        "rg-ml",
        "ws-two",
        "--owner",
        "ada",
        "--base-url",
        "https://ml.example.com",
    )
    assert ResourceGroup.objects.count() == 1 and Workspace.objects.count() == 2


def test_create_workspace_refuses_bad_input(db):
    UserFactory(username="ada")
    with pytest.raises(CommandError, match="No user"):
        run("create_workspace", "S", "rg", "ws-ok", "--owner", "nobody")
    with pytest.raises(CommandError, match="3 to 33"):
        run("create_workspace", "S", "rg", "x", "--owner", "ada")
    assert not Workspace.objects.exists()
    assert not Subscription.objects.exists()  # all or nothing


def test_create_token_prints_a_working_token(cast):
    raw = run("create_token", "rita")[-1]
    assert raw.startswith("mls_")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(reverse("api-user")).json()["username"] == "rita"


def test_create_token_for_a_workspace_with_expiry(cast):
    raw = run(
        "create_token", "olivia", "--workspace", "Contoso/rg-main/ws-main", "--expires-in", "3600"
    )[-1]
    me = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get(reverse("api-user")).json()
    assert me["token"]["workspace_id"] == str(cast.workspace.id)
    assert me["token"]["expires_at"] is not None
    by_id = run("create_token", "olivia", "--workspace", str(cast.workspace.id))[-1]
    assert by_id.startswith("mls_")


def test_create_token_refuses_bad_input(cast):
    with pytest.raises(CommandError, match="No user"):
        run("create_token", "nobody")
    with pytest.raises(CommandError, match="No workspace"):
        run("create_token", "olivia", "--workspace", "Contoso/rg-main/missing")
    with pytest.raises(CommandError, match="not found"):
        run("create_token", "oscar", "--workspace", "Contoso/rg-main/ws-main")
    with pytest.raises(CommandError, match="positive"):
        run("create_token", "olivia", "--expires-in", "-5")


def test_ensure_admin_creates_one_administrator(db, monkeypatch):
    monkeypatch.setenv("MLSTUDIO_ADMIN_USER", "root")
    monkeypatch.delenv("MLSTUDIO_ADMIN_PASSWORD", raising=False)
    lines = run("ensure_admin")
    password = lines[-1].split(":", 1)[1].strip()
    client = Client()
    assert client.login(username="root", password=password)
    assert "exists" in run("ensure_admin")[-1]
