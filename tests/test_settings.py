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
