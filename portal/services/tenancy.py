"""Writes for tenancy, access and tokens. Every change leaves an audit entry."""

from __future__ import annotations

import contextvars
import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from portal import registry, validators
from portal.errors import AlreadyExists, InvalidParameter, NotFound, PermissionDenied
from portal.models import (
    ApiToken,
    AuditEntry,
    Membership,
    ResourceGroup,
    Role,
    Subscription,
    TokenKind,
    TokenScope,
    Workspace,
)
from portal.selectors import role_for, scope_chain

TOKEN_PREFIX = "mls_"  # noqa: S105 - a public marker, not a secret
# last_used_at is a convenience, not a log: write it at most this often so that
# authenticating a busy MLflow client does not turn every request into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)

# The client address of the request being served, for audit entries; set by
# portal.middleware.AuditContextMiddleware.
current_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_ip", default=None)


def _check(validator: Callable[[Any], None], value: Any, field: str) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise InvalidParameter(f"{field}: {' '.join(exc.messages)}") from exc


# --- Audit ---------------------------------------------------------------------


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    target: Model,
    changes: dict | None = None,
    target_type: str | None = None,
    target_repr: str | None = None,
) -> AuditEntry:
    """Record an action on target. target_type/target_repr describe what was acted on
    when it is not one row (a purge of several runs is recorded on their workspace)."""
    if isinstance(target, Membership):
        scope = target.scope
    elif isinstance(target, Subscription | ResourceGroup | Workspace):
        scope = target
    else:
        scope = getattr(target, "workspace", None)
    sub_id, rg_id, ws_id = scope_chain(scope) if scope is not None else (None, None, None)
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_name=actor.get_username() if actor is not None and actor.is_authenticated else "",
        action=action,
        target_type=target_type or target._meta.verbose_name,
        target_id=str(target.pk),
        target_repr=(target_repr if target_repr is not None else str(target))[:300],
        subscription_id=sub_id,
        resource_group_id=rg_id,
        workspace_id=ws_id,
        changes=changes or {},
        ip_address=current_ip.get(),
    )


def _apply_changes(obj: Model, fields: dict[str, Any]) -> dict[str, list[Any]]:
    changes = {}
    for name, value in fields.items():
        old = getattr(obj, name)
        if old != value:
            changes[name] = [old, value]
            setattr(obj, name, value)
    return changes


# --- Subscriptions, resource groups, workspaces -----------------------------------


@transaction.atomic
def subscription_create(
    *, actor: AbstractBaseUser, name: str, description: str = ""
) -> Subscription:
    _check(validators.validate_subscription_name, name, "name")
    if Subscription.objects.filter(name__iexact=name).exists():
        raise AlreadyExists(f"A subscription named '{name}' already exists.")
    try:
        with transaction.atomic():
            sub = Subscription.objects.create(name=name, description=description, created_by=actor)
    except IntegrityError as exc:
        raise AlreadyExists(f"A subscription named '{name}' already exists.") from exc
    audit_record(actor=actor, action="create", target=sub)
    membership_grant(actor=actor, scope=sub, user=actor, role=Role.OWNER)
    return sub


@transaction.atomic
def subscription_update(
    *, actor: AbstractBaseUser, subscription: Subscription, name: str, description: str
) -> Subscription:
    _check(validators.validate_subscription_name, name, "name")
    if Subscription.objects.filter(name__iexact=name).exclude(pk=subscription.pk).exists():
        raise AlreadyExists(f"A subscription named '{name}' already exists.")
    changes = _apply_changes(subscription, {"name": name, "description": description})
    if changes:
        subscription.save()
        audit_record(actor=actor, action="update", target=subscription, changes=changes)
    return subscription


@transaction.atomic
def resource_group_create(
    *,
    actor: AbstractBaseUser,
    subscription: Subscription,
    name: str,
    location: str = "local",
    tags: dict[str, str] | None = None,
) -> ResourceGroup:
    tags = tags or {}
    _check(validators.validate_resource_group_name, name, "name")
    _check(validators.validate_location, location, "location")
    _check(validators.validate_tags, tags, "tags")
    existing = subscription.resource_groups.filter(name__iexact=name).first()
    if existing is not None:
        if existing.deletion_requested_at is not None:
            raise AlreadyExists(_still_deleting("Resource group", name))
        raise AlreadyExists(f"Resource group '{name}' already exists in this subscription.")
    try:
        with transaction.atomic():
            rg = ResourceGroup.objects.create(
                subscription=subscription,
                name=name,
                location=location,
                tags=tags,
                created_by=actor,
            )
    except IntegrityError as exc:
        raise AlreadyExists(
            f"Resource group '{name}' already exists in this subscription."
        ) from exc
    audit_record(actor=actor, action="create", target=rg)
    return rg


@transaction.atomic
def resource_group_update(
    *, actor: AbstractBaseUser, resource_group: ResourceGroup, tags: dict[str, str]
) -> ResourceGroup:
    _check(validators.validate_tags, tags, "tags")
    changes = _apply_changes(resource_group, {"tags": tags})
    if changes:
        resource_group.save()
        audit_record(actor=actor, action="update", target=resource_group, changes=changes)
    return resource_group


def _still_deleting(what: str, name: str) -> str:
    # The old row lives until its deletion job ends; its name is free from then on.
    return (
        f"{what} '{name}' is still being deleted. Its name can be used again "
        "once the deletion job has finished."
    )


def default_artifact_root(workspace: Workspace) -> str:
    root = settings.ARTIFACT_ROOT
    if root.startswith(("https://", "http://")):
        base, _, query = root.partition("?")
        return f"{base.rstrip('/')}/{workspace.id}" + (f"?{query}" if query else "")
    return str(Path(root) / str(workspace.id))


@transaction.atomic
def workspace_create(
    *,
    actor: AbstractBaseUser,
    resource_group: ResourceGroup,
    name: str,
    description: str = "",
    friendly_name: str = "",
    location: str | None = None,
    tags: dict[str, str] | None = None,
) -> Workspace:
    tags = tags or {}
    location = location or resource_group.location
    _check(validators.validate_workspace_name, name, "name")
    _check(validators.validate_location, location, "location")
    _check(validators.validate_tags, tags, "tags")
    if resource_group.deletion_requested_at is not None:
        raise NotFound("Resource group not found")
    existing = resource_group.workspaces.filter(name__iexact=name).first()
    if existing is not None:
        if existing.deletion_requested_at is not None:
            raise AlreadyExists(_still_deleting("Workspace", name))
        raise AlreadyExists(f"Workspace '{name}' already exists in this resource group.")
    ws = Workspace(
        resource_group=resource_group,
        name=name,
        description=description,
        friendly_name=friendly_name,
        location=location,
        tags=tags,
        created_by=actor,
    )
    ws.artifact_root = default_artifact_root(ws)
    with transaction.atomic():
        try:
            with transaction.atomic():
                ws.save(force_insert=True)
        except IntegrityError as exc:
            raise AlreadyExists(
                f"Workspace '{name}' already exists in this resource group."
            ) from exc
        audit_record(actor=actor, action="create", target=ws)
        # What the other apps make with a workspace (tracking: its Default experiment),
        # in the same transaction: a workspace never exists without them.
        registry.call_hook("workspace_created", workspace=ws, actor=actor)
    return ws


@transaction.atomic
def workspace_update(
    *,
    actor: AbstractBaseUser,
    workspace: Workspace,
    description: str,
    friendly_name: str,
    tags: dict[str, str],
) -> Workspace:
    _check(validators.validate_tags, tags, "tags")
    changes = _apply_changes(
        workspace, {"description": description, "friendly_name": friendly_name, "tags": tags}
    )
    if changes:
        workspace.save()
        audit_record(actor=actor, action="update", target=workspace, changes=changes)
    return workspace


# --- Roles -------------------------------------------------------------------------


def _scope_field(scope: Subscription | ResourceGroup | Workspace) -> str:
    if isinstance(scope, Subscription):
        return "subscription"
    return "resource_group" if isinstance(scope, ResourceGroup) else "workspace"


@transaction.atomic
def membership_grant(
    *,
    actor: AbstractBaseUser,
    scope: Subscription | ResourceGroup | Workspace,
    user: AbstractBaseUser,
    role: str,
) -> Membership:
    if role not in Role.values:
        raise InvalidParameter(f"role: must be one of {', '.join(Role.values)}")
    field = _scope_field(scope)
    membership = Membership.objects.select_for_update().filter(user=user, **{field: scope}).first()
    if membership is None:
        membership = Membership.objects.create(
            user=user, role=role, granted_by=actor, **{field: scope}
        )
        audit_record(actor=actor, action="grant", target=membership, changes={"role": [None, role]})
    elif membership.role != role:
        if membership.role == Role.OWNER:
            _ensure_other_owner(membership)
        old = membership.role
        membership.role = role
        membership.granted_by = actor
        membership.save(update_fields=["role", "granted_by"])
        audit_record(actor=actor, action="grant", target=membership, changes={"role": [old, role]})
    return membership


def _ensure_other_owner(membership: Membership) -> None:
    """A subscription keeps at least one owner, so it never becomes unmanageable."""
    if membership.subscription_id is None:
        return
    others = Membership.objects.filter(
        subscription_id=membership.subscription_id, role=Role.OWNER
    ).exclude(pk=membership.pk)
    if not others.exists():
        raise InvalidParameter("A subscription must keep at least one owner.")


@transaction.atomic
def membership_revoke(*, actor: AbstractBaseUser, membership: Membership) -> None:
    if membership.role == Role.OWNER:
        _ensure_other_owner(membership)
    audit_record(
        actor=actor, action="revoke", target=membership, changes={"role": [membership.role, None]}
    )
    membership.delete()


# --- API tokens --------------------------------------------------------------------


def _hash(raw: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to
    # brute-force, and authentication stays one indexed lookup.
    return hashlib.sha256(raw.encode()).hexdigest()


# The longest lifetime a token may be given (ten years); "never expires" is None.
TOKEN_MAX_LIFETIME = 10 * 365 * 86400
# Scopes from weakest to strongest, to tell whether a new token would outrank its parent.
_SCOPE_RANK = {TokenScope.READ: 1, TokenScope.WRITE: 2, TokenScope.FULL: 3}


def _within_parent(
    parent: ApiToken,
    scope: str | None,
    workspace: Workspace | None,
    expires_at: datetime | None,
) -> tuple[str, Workspace | None, datetime | None]:
    """The limits a token created with `parent` gets: what was not asked for is inherited
    from the parent, and asking for more than the parent has is refused. Otherwise a leaked
    read-only, workspace-bound or short-lived token could mint an unlimited one."""
    if parent.kind == TokenKind.TRACKING:
        raise PermissionDenied("A tracking token cannot create tokens.")
    scope = scope or parent.scope
    if _SCOPE_RANK.get(scope, 0) > _SCOPE_RANK[parent.scope]:
        raise PermissionDenied(
            f"A token with scope '{parent.scope}' cannot create one with scope '{scope}'."
        )
    if parent.workspace_id is not None:
        if workspace is None:
            workspace = parent.workspace
        elif workspace.pk != parent.workspace_id:
            raise PermissionDenied("A workspace-bound token cannot create tokens for others.")
    if parent.expires_at is not None:
        if expires_at is None:
            expires_at = parent.expires_at
        elif expires_at > parent.expires_at:
            raise PermissionDenied("A token cannot create one that outlives it.")
    return scope, workspace, expires_at


@transaction.atomic
def token_create(
    *,
    user: AbstractBaseUser,
    name: str,
    scope: str | None = None,
    workspace: Workspace | None = None,
    expires_in: int | None = None,
    kind: str = TokenKind.PERSONAL,
    parent: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; the plain secret is returned once and never stored.

    scope defaults to full. `parent` is the token the request came with, if any: the new
    token then stays within its limits (see _within_parent)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidParameter("name: a token needs a name of 1 to 100 characters.")
    if scope is not None and scope not in TokenScope.values:
        raise InvalidParameter(f"scope: must be one of {', '.join(TokenScope.values)}")
    if expires_in is not None and not 0 < expires_in <= TOKEN_MAX_LIFETIME:
        raise InvalidParameter(
            f"expires_in: must be a positive number of seconds, at most {TOKEN_MAX_LIFETIME}."
        )
    if workspace is not None and role_for(user, workspace) is None:
        raise NotFound("Workspace not found")
    expires_at = timezone.now() + timedelta(seconds=expires_in) if expires_in else None
    if parent is not None:
        scope, workspace, expires_at = _within_parent(parent, scope, workspace, expires_at)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        scope=scope or TokenScope.FULL,
        workspace=workspace,
        kind=kind,
        prefix=raw[:12],
        key_hash=_hash(raw),
        expires_at=expires_at,
    )
    if kind == TokenKind.PERSONAL:
        audit_record(actor=user, action="create", target=token)
    return token, raw


def tracking_token_mint(
    *,
    user: AbstractBaseUser,
    workspace: Workspace,
    lifetime: int | None = None,
    parent: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """A short-lived token that works only in one workspace, for tracking clients.

    Minted with a token (`parent`), it is capped rather than refused: read-only for a
    read-only parent, and never outliving the parent."""
    if parent is not None and parent.kind == TokenKind.TRACKING:
        # A tracking token renewing itself would make it immortal.
        raise PermissionDenied("A tracking token cannot mint tracking tokens.")
    scope = TokenScope.WRITE
    expires_in = lifetime or settings.TRACKING_TOKEN_LIFETIME
    if parent is not None:
        if parent.scope == TokenScope.READ:
            scope = TokenScope.READ
        if parent.expires_at is not None:
            left = int((parent.expires_at - timezone.now()).total_seconds())
            expires_in = max(1, min(expires_in, left))
    return token_create(
        user=user,
        name=f"tracking: {workspace.name}",
        scope=scope,
        workspace=workspace,
        expires_in=expires_in,
        kind=TokenKind.TRACKING,
    )


@transaction.atomic
def token_revoke(*, actor: AbstractBaseUser, token: ApiToken) -> ApiToken:
    if token.user_id != actor.pk and not actor.is_superuser:
        raise PermissionDenied("Only the token's owner can revoke it.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="revoke", target=token)
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    """The active token for a presented secret, or None. Marks it used."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=_hash(raw)).first()
    if token is None or not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def tokens_purge_expired(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete tracking tokens that expired a while ago; personal ones stay listed."""
    cutoff = timezone.now() - older_than
    deleted, _ = ApiToken.objects.filter(kind=TokenKind.TRACKING, expires_at__lt=cutoff).delete()
    return deleted
