"""Compute workers: their tokens (`mlsw_…`, bound to one target, or to every `local`
target for the studio's own worker) and their heartbeats.

A worker token is not a user's token: it authenticates the worker endpoints of
/api/v1/compute only, and there only for the jobs of the targets it serves. Only the
sha256 of the secret is stored (256 random bits: nothing to brute-force)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from deployments.models import ComputeTarget, ComputeWorker, WorkerToken
from portal.errors import InvalidParameter, NotFound
from portal.services import audit_record

TOKEN_PREFIX = "mlsw_"  # noqa: S105 (a marker, not a secret)
# Marking every request used would write every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def worker_token_create(
    *, actor: AbstractBaseUser | None, target: ComputeTarget | None, name: str
) -> tuple[WorkerToken, str]:
    """A token for the workers of `target` (None: the studio's own worker, serving every
    workspace's `local` target — made by `runstudio`, never through the API). The plain
    secret is returned once."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidParameter("name: a worker token needs a name of 1 to 100 characters.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = WorkerToken.objects.create(
        target=target, name=name, prefix=raw[:12], key_hash=_hash(raw), created_by=actor
    )
    if target is not None:
        audit_record(actor=actor, action="create", target=token, changes={"compute": target.name})
    return token, raw


@transaction.atomic
def worker_token_revoke(*, actor: AbstractBaseUser | None, token: WorkerToken) -> WorkerToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        if token.target_id is not None:
            audit_record(actor=actor, action="revoke", target=token)
    return token


def worker_token_authenticate(raw: str) -> WorkerToken | None:
    """The active worker token for a presented secret, or None. Marks it used."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        WorkerToken.objects.select_related("target__workspace__resource_group")
        .filter(key_hash=_hash(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        WorkerToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def worker_token_get(*, target: ComputeTarget, token_id) -> WorkerToken:
    token = WorkerToken.objects.filter(target=target, pk=token_id).first()
    if token is None:
        raise NotFound(f"No worker token {token_id} for compute target '{target.name}'.")
    return token


def compute_worker_heartbeat(
    *, token: WorkerToken, hostname: str, slots: int = 1, version: str = ""
) -> dict:
    """A worker says it is alive: listed with its target (or with every `local` target
    for the studio's own worker) while its heartbeats keep coming."""
    if not isinstance(hostname, str) or not hostname or len(hostname) > 255:
        raise InvalidParameter("hostname must be 1 to 255 characters.")
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= 1024:
        raise InvalidParameter("slots must be a whole number from 1 to 1024.")
    if not isinstance(version, str):
        raise InvalidParameter("version must be a string.")
    now = timezone.now()
    worker, _ = ComputeWorker.objects.update_or_create(
        target_id=token.target_id,
        hostname=hostname,
        defaults={"slots": slots, "version": version[:64], "last_seen": now},
    )
    return {"hostname": worker.hostname, "last_seen": now.isoformat()}


# Variables of the studio's process that its compute worker does not get: it needs only
# the broker and the studio's URL. Nor DJANGO_* ones: with DJANGO_SETTINGS_MODULE set (as
# manage.py sets it) Celery's Django fix-up loads the studio's settings in the worker, which
# fail without SECRET_KEY when DEBUG is off.
SERVER_VARIABLES = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DATA_DIR", "ARTIFACT_ROOT")
SERVER_PREFIXES = ("CELERY_", "AZURE_", "DJANGO_")


def studio_worker_process(*, studio_url: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The "studio_processes" hook (called by `runstudio`): the compute worker serving
    every workspace's `local` target, with a new worker token of its own (earlier ones of
    the studio's are revoked), consuming COMPUTE_LOCAL_QUEUE."""
    WorkerToken.objects.filter(target__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    _, raw = worker_token_create(actor=None, target=None, name="the studio's compute worker")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in SERVER_VARIABLES and not key.startswith(SERVER_PREFIXES)
    }
    env["MLSTUDIO_WORKER_TOKEN"] = raw
    argv = [
        sys.executable,
        "-m",
        "deployments.worker",
        "--studio",
        studio_url,
        "--broker",
        settings.CELERY_BROKER_URL,
        "--broker-options",
        json.dumps(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})),
        "--slots",
        str(settings.COMPUTE_LOCAL_SLOTS),
        "--hide",
        str(settings.DATA_DIR),
    ]
    return {"compute": (argv, env)}
