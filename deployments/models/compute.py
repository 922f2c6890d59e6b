"""Compute targets (named per workspace, one Celery queue each) and their workers."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from portal.models import Workspace

LOCAL = "local"


class ComputeTarget(models.Model):
    """A named place remote runs go to, served by the workers consuming its queue.
    `max_nodes` caps how many of its jobs run at once. Every workspace has a `local`
    one (made on first use), served by the worker `make run` starts."""

    class Kind(models.TextChoices):
        CELERY = "celery", "Celery workers"
        KUBERNETES = "kubernetes", "Kubernetes cluster"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="compute_targets"
    )
    name = models.CharField(max_length=24)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CELERY)
    description = models.CharField(max_length=500, blank=True)
    # Kubernetes targets: namespace, ingress class/host, registry … (not secret), and the
    # kubeconfig, encrypted (portal.secrets).
    config = models.JSONField(default=dict)
    secret = models.TextField(blank=True)
    max_nodes = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "workspace", Lower("name"), name="compute_target_name_unique_ci"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL

    @property
    def queue(self) -> str:
        """The Celery queue its workers consume."""
        if self.is_local:
            return settings.COMPUTE_LOCAL_QUEUE
        return f"compute-{self.pk}"


class ComputeWorker(models.Model):
    """A worker process serving a target, as its last heartbeat described it. No target:
    the studio's own compute worker, which serves every workspace's `local` target."""

    target = models.ForeignKey(
        ComputeTarget, null=True, blank=True, on_delete=models.CASCADE, related_name="workers"
    )
    hostname = models.CharField(max_length=255)
    slots = models.PositiveIntegerField(default=1)
    version = models.CharField(max_length=64, blank=True)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(fields=["target", "hostname"], name="compute_worker_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.target})"


class WorkerToken(models.Model):
    """What a compute worker authenticates with (`Bearer mlsw_…`): it may claim, report on
    and stream the jobs of one target and nothing else (no tracking, no other target).
    No target: a token for the studio's own worker, which serves every `local` target.
    Only a hash is kept; the secret is shown once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    target = models.ForeignKey(
        ComputeTarget, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_local(self) -> bool:
        return self.target_id is None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def serves(self, target: ComputeTarget | None) -> bool:
        """Whether this token's worker may work on a job of `target`."""
        if target is None:
            return False
        return target.is_local if self.is_local else target.pk == self.target_id
