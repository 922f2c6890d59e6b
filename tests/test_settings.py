"""Configuration from the environment: embedded defaults, production checks."""

import os
import secrets
import subprocess
import sys

import pytest

from conftest import ROOT


def manage(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DATABASE_URL",
            "REDIS_URL",
            "CELERY_BROKER_URL",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    clean.update(DATA_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "studio.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://studio.example.com",
}


def test_check_deploy_reports_nothing_with_production_variables(tmp_path):
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(64),
        **PRODUCTION,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_secret_key_refuses_to_start(tmp_path):
    result = manage(tmp_path, "check", **PRODUCTION)
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_production_without_allowed_hosts_refuses_to_start(tmp_path):
    result = manage(tmp_path, "check", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(64))
    assert "ALLOWED_HOSTS is required" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must be"),
        ({"ARTIFACT_ROOT": "ftp://host/x"}, "ARTIFACT_ROOT must be"),
        ({"TRACKING_TOKEN_LIFETIME": "soon"}, "TRACKING_TOKEN_LIFETIME must be an integer"),
        ({"SITE_URL": "studio.example.com"}, "SITE_URL must start with"),
    ],
)
def test_bad_values_raise_improperly_configured(tmp_path, env, message):
    result = manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_development_generates_and_keeps_a_secret_key(tmp_path):
    assert manage(tmp_path, "check").returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert manage(tmp_path, "check").returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_embedded_defaults(tmp_path):
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.ARTIFACT_ROOT,"
        " getattr(s, 'CELERY_TASK_ALWAYS_EAGER', False))"
    )
    result = manage(tmp_path, "shell", "-c", code)
    engine, broker, artifacts, eager = result.stdout.strip().splitlines()[-1].split()
    assert engine.endswith("sqlite3") and broker == "filesystem://" and eager == "False"
    assert artifacts == str(tmp_path / "artifacts")


def _print_settings(tmp_path, *names: str, **env: str) -> list[str]:
    """The values of settings as a process started with this environment has them."""
    code = "from django.conf import settings as s;" + ";".join(
        f"print('setting:' + str(s.{name}))" for name in names
    )
    result = manage(tmp_path, "shell", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return [line.removeprefix("setting:") for line in lines if line.startswith("setting:")]


@pytest.mark.parametrize(
    "root",
    [
        "https://acct.blob.core.windows.net/artifacts",
        "https://acct.blob.core.windows.net/artifacts/studio/prefix",
        "http://127.0.0.1:10000/devstoreaccount1/artifacts",
        "http://devstoreaccount1.blob.localhost:10000/artifacts/",
    ],
)
def test_artifact_root_accepts_blob_container_urls(tmp_path, root):
    assert _print_settings(tmp_path, "ARTIFACT_ROOT", ARTIFACT_ROOT=root) == [root.rstrip("/")]


def test_artifact_root_file_url_and_relative_folder(tmp_path):
    target = tmp_path / "store"
    assert _print_settings(tmp_path, "ARTIFACT_ROOT", ARTIFACT_ROOT=f"file://{target}") == [
        str(target)
    ]
    assert _print_settings(tmp_path, "ARTIFACT_ROOT", ARTIFACT_ROOT="var/x") == [
        str(ROOT / "var" / "x")
    ]


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("https://acct.blob.core.windows.net", "names a container"),
        ("https://acct.blob.core.windows.net/", "names a container"),
        ("http://127.0.0.1:10000/devstoreaccount1", "names a container"),
        ("https:///container", "with a host"),
        ("https://user:secret@acct.blob.core.windows.net/c", "with a host"),
        ("s3://bucket/prefix", "ARTIFACT_ROOT must be a local folder or an http(s)://"),
    ],
)
def test_artifact_root_refuses_bad_blob_urls(tmp_path, root, message):
    result = manage(tmp_path, "check", ARTIFACT_ROOT=root)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_plain_http_blob_root_is_for_development_only(tmp_path):
    production = {**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(64)}
    result = manage(
        tmp_path, "check", ARTIFACT_ROOT="http://storage.example.com/acct/c", **production
    )
    assert result.returncode != 0
    assert "must be an https:// Blob URL in production" in result.stderr
    azurite = "http://127.0.0.1:10000/devstoreaccount1/artifacts"
    assert manage(tmp_path, "check", ARTIFACT_ROOT=azurite, **production).returncode == 0


def test_artifact_storage_settings_from_the_environment(tmp_path):
    conn = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k;EndpointSuffix=x"
    assert _print_settings(
        tmp_path,
        "AZURE_STORAGE_CONNECTION_STRING",
        "ARTIFACT_MAX_UPLOAD_BYTES",
        AZURE_STORAGE_CONNECTION_STRING="",
        ARTIFACT_MAX_UPLOAD_BYTES="",
    ) == ["", str(5 * 1024**3)]
    assert _print_settings(
        tmp_path,
        "AZURE_STORAGE_CONNECTION_STRING",
        "ARTIFACT_MAX_UPLOAD_BYTES",
        AZURE_STORAGE_CONNECTION_STRING=conn,
        ARTIFACT_MAX_UPLOAD_BYTES="1048576",
    ) == [conn, "1048576"]
    result = manage(tmp_path, "check", ARTIFACT_MAX_UPLOAD_BYTES="lots")
    assert "ARTIFACT_MAX_UPLOAD_BYTES must be an integer" in result.stderr


def test_plotly_js_is_the_committed_partial_bundle():
    """The pages load static/vendor/plotly/plotly-partial.min.js (scripts/build_plotly.sh
    builds it with the trace types they draw), not the installed plotly package's full
    4.8 MB bundle, which is not collected either."""
    from pathlib import Path

    from django.conf import settings
    from django.contrib.staticfiles import finders

    found = finders.find("vendor/plotly/plotly-partial.min.js")
    assert found and Path(found).is_relative_to(settings.BASE_DIR / "static")
    banner = Path(found).read_text()[:200]
    assert banner.startswith("/*! plotly.js v") and "partial: scatter, bar, parcoords" in banner
    assert Path(found).stat().st_size < 2_000_000
    assert finders.find("vendor/plotly/plotly.min.js") is None
