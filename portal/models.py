"""Tenancy: subscriptions → resource groups → workspaces, roles, API tokens, audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from portal import registry, validators


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    CONTRIBUTOR = "contributor", "Contributor"
    READER = "reader", "Reader"


ROLE_RANK = {Role.READER: 1, Role.CONTRIBUTOR: 2, Role.OWNER: 3}


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


class TenancyObject(models.Model):
    """What subscriptions, resource groups and workspaces share."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = [Lower("name")]

    def __str__(self) -> str:
        return self.name


class Subscription(TenancyObject):
    name = models.CharField(max_length=64, validators=[validators.validate_subscription_name])
    description = models.TextField(blank=True, max_length=2000)

    class Meta(TenancyObject.Meta):
        constraints = [
            models.UniqueConstraint(Lower("name"), name="subscription_name_unique_ci"),
        ]


class ResourceGroup(TenancyObject):
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="resource_groups"
    )
    name = models.CharField(max_length=90, validators=[validators.validate_resource_group_name])
    location = models.CharField(
        max_length=40, default="local", validators=[validators.validate_location]
    )
    tags = models.JSONField(default=dict, blank=True, validators=[validators.validate_tags])
    # Set when someone asked to delete it: from then on it is gone for everyone (404)
    # while a DeletionJob removes what is below it and finally the row.
    deletion_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(TenancyObject.Meta):
        constraints = [
            models.UniqueConstraint(
                "subscription", Lower("name"), name="resource_group_name_unique_ci"
            ),
        ]


class Workspace(TenancyObject):
    resource_group = models.ForeignKey(
        ResourceGroup, on_delete=models.CASCADE, related_name="workspaces"
    )
    name = models.CharField(max_length=33, validators=[validators.validate_workspace_name])
    friendly_name = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True, max_length=2000)
    location = models.CharField(
        max_length=40, default="local", validators=[validators.validate_location]
    )
    tags = models.JSONField(default=dict, blank=True, validators=[validators.validate_tags])
    # Where this workspace's artifacts live: a local folder or a Blob container URL
    # with a prefix. Set from ARTIFACT_ROOT at creation; only staff change it.
    artifact_root = models.CharField(max_length=500)
    # As on ResourceGroup: set by a deletion request, the row goes when the job ends.
    deletion_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(TenancyObject.Meta):
        constraints = [
            models.UniqueConstraint(
                "resource_group", Lower("name"), name="workspace_name_unique_ci"
            ),
        ]

    @property
    def is_deleting(self) -> bool:
        """Deletion was requested for it or for its resource group."""
        return (
            self.deletion_requested_at is not None
            or self.resource_group.deletion_requested_at is not None
        )

    @property
    def arm_id(self) -> str:
        rg = self.resource_group
        return (
            f"/subscriptions/{rg.subscription_id}/resourceGroups/{rg.name}"
            f"/providers/MLStudio/workspaces/{self.name}"
        )


class Membership(models.Model):
    """A role granted to a user on exactly one scope; it holds for everything below."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    resource_group = models.ForeignKey(
        ResourceGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "role assignment"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(
                        subscription__isnull=False,
                        resource_group__isnull=True,
                        workspace__isnull=True,
                    )
                    | models.Q(
                        subscription__isnull=True,
                        resource_group__isnull=False,
                        workspace__isnull=True,
                    )
                    | models.Q(
                        subscription__isnull=True,
                        resource_group__isnull=True,
                        workspace__isnull=False,
                    )
                ),
                name="membership_exactly_one_scope",
            ),
            models.UniqueConstraint(
                fields=["user", "subscription"],
                condition=models.Q(subscription__isnull=False),
                name="membership_unique_subscription",
            ),
            models.UniqueConstraint(
                fields=["user", "resource_group"],
                condition=models.Q(resource_group__isnull=False),
                name="membership_unique_resource_group",
            ),
            models.UniqueConstraint(
                fields=["user", "workspace"],
                condition=models.Q(workspace__isnull=False),
                name="membership_unique_workspace",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.role} on {self.scope_label}"

    @property
    def scope(self) -> Subscription | ResourceGroup | Workspace:
        return self.subscription or self.resource_group or self.workspace

    @property
    def scope_kind(self) -> str:
        if self.subscription_id:
            return "subscription"
        return "resource group" if self.resource_group_id else "workspace"

    @property
    def scope_label(self) -> str:
        return f"{self.scope_kind} {self.scope}"


class TokenScope(models.TextChoices):
    """The most a token may do, whatever its user's roles allow."""

    READ = "read", "Read only"
    WRITE = "write", "Read and write"
    FULL = "full", "Everything the user may do"


TOKEN_SCOPE_CAP = {TokenScope.READ: Role.READER, TokenScope.WRITE: Role.CONTRIBUTOR}


class TokenKind(models.TextChoices):
    PERSONAL = "personal", "Personal"
    TRACKING = "tracking", "Tracking (short-lived)"


class ApiToken(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=TokenKind.choices, default=TokenKind.PERSONAL)
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.FULL)
    # When set, the token works only inside this workspace.
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    # First characters of the token, shown so people can tell tokens apart.
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        return "expired" if self.is_expired else "active"


class AuditEntry(models.Model):
    """Who created, changed or deleted which object; kept after the object is gone."""

    timestamp = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=300)
    # Where it happened, kept as ids (not foreign keys) so deleting a workspace
    # does not delete the record of it being deleted.
    subscription_id = models.UUIDField(null=True, blank=True, db_index=True)
    resource_group_id = models.UUIDField(null=True, blank=True, db_index=True)
    workspace_id = models.UUIDField(null=True, blank=True, db_index=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.verb} {self.target_type} {self.target_repr}"

    @property
    def verb(self) -> str:
        return AUDIT_VERBS.get(self.action, self.action)


AUDIT_VERBS = {
    "create": "created",
    "delete_request": "requested deletion of",
    "delete_fail": "could not finish deleting",
    "purge_request": "requested purge of",
    "update": "updated",
    "rename": "renamed",
    "cancel": "cancelled",
    "delete": "deleted",
    "grant": "granted",
    "revoke": "revoked",
    "restore": "restored",
    "purge": "purged",
}


class Job(models.Model):
    """What every background job shares: one row per job, written before the Celery
    message is sent and updated by the worker, so a lost message or a dead worker is
    recovered from the row (see portal.services.jobs). `kind` names a JobKind that an
    app registered (portal.registry): the kind says how the job is done.

    The job outlives what it works on, so targets are plain ids, not foreign keys."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    FINISHED = (Status.SUCCEEDED, Status.FAILED)
    UNFINISHED = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32)
    # "Contoso › rg-main › ws-main": what it works on, readable after the rows are gone.
    label = models.CharField(max_length=400)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=200, blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    # What the job did, a line per step with its time (the newest LOG_LIMIT characters).
    log = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    # The heartbeat: every step touches it, so a stale one means nobody is working.
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    LOG_LIMIT = 64 * 1024

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind_label} {self.label}"

    @property
    def kind_label(self) -> str:
        try:
            return registry.job_kind(self.kind).label
        except LookupError:
            return self.kind

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if self.progress_total <= 0:
            return 0
        return min(99, int(100 * self.progress_done / self.progress_total))


class DeletionJob(Job):
    """One cascade deletion: a workspace or a resource group (portal's own kinds), or
    whatever another app registers (the tracking app's experiment purge). Where the
    target sat is kept as ids, for access checks and listings after it is gone."""

    class Kind(models.TextChoices):
        # portal's own; other apps add theirs through portal.registry.
        WORKSPACE = "workspace", "Workspace"
        RESOURCE_GROUP = "resource_group", "Resource group"

    subscription_id = models.UUIDField(db_index=True)
    resource_group_id = models.UUIDField(null=True, blank=True, db_index=True)
    workspace_id = models.UUIDField(null=True, blank=True, db_index=True)
    # The target's id inside its workspace, for kinds registered by other apps.
    target_id = models.CharField(max_length=64, blank=True)

    class Meta(Job.Meta):
        indexes = [
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["kind", "target_id"]),
        ]

    def __str__(self) -> str:
        return f"Delete {self.kind_label.lower()} {self.label}"
