"""Reads shared by pages, the API and the MLflow protocol: who may see what.

Access rules, in one place:
- A role granted on a subscription, resource group or workspace holds for
  everything below it; the strongest role that applies wins.
- Superusers are owners everywhere.
- A token may narrow this: a workspace-scoped token works only in its workspace,
  and a token's scope caps the role (read → reader, write → contributor).
- An object nobody granted you anything on, at or below it, does not exist for
  you (404); one you can see but not act on answers 403.
- A workspace or resource group whose deletion was requested does not exist for
  anyone any more (404, here and in the MLflow API), while its job purges it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from portal.errors import NotFound, PermissionDenied
from portal.models import (
    ROLE_RANK,
    TOKEN_SCOPE_CAP,
    ApiToken,
    Membership,
    ResourceGroup,
    Role,
    Subscription,
    TokenScope,
    Workspace,
    role_at_least,
)

User = AbstractBaseUser | AnonymousUser
Scope = Subscription | ResourceGroup | Workspace


def strongest_role(roles: list[str | None]) -> str | None:
    present = [role for role in roles if role]
    return max(present, key=lambda role: ROLE_RANK[role]) if present else None


def capped_role(role: str | None, token: ApiToken | None) -> str | None:
    if role is None or token is None:
        return role
    cap = TOKEN_SCOPE_CAP.get(token.scope)
    if cap is not None and ROLE_RANK[cap] < ROLE_RANK[role]:
        return cap
    return role


def scope_chain(obj: Scope) -> tuple[UUID | None, UUID | None, UUID | None]:
    """(subscription id, resource group id, workspace id) at and above obj."""
    if isinstance(obj, Workspace):
        return obj.resource_group.subscription_id, obj.resource_group_id, obj.id
    if isinstance(obj, ResourceGroup):
        return obj.subscription_id, obj.id, None
    return obj.id, None, None


def is_deleting(obj: Scope) -> bool:
    """Whether deletion was requested for obj or for a scope above it."""
    if isinstance(obj, Workspace):
        return obj.is_deleting
    return isinstance(obj, ResourceGroup) and obj.deletion_requested_at is not None


def _effective_role(
    user: User,
    obj: Scope,
    token: ApiToken | None,
    grants: Callable[[UUID | None, UUID | None, UUID | None], list[str | None]],
) -> str | None:
    """The rules of role_for, with the user's grants on the chain read by `grants`."""
    if not user.is_authenticated or not user.is_active or is_deleting(obj):
        return None
    sub_id, rg_id, ws_id = scope_chain(obj)
    if token is not None and token.workspace_id is not None and token.workspace_id != ws_id:
        return None
    if user.is_superuser:
        return capped_role(Role.OWNER, token)
    return capped_role(strongest_role(grants(sub_id, rg_id, ws_id)), token)


def role_for(user: User, obj: Scope, token: ApiToken | None = None) -> str | None:
    """The user's effective role on obj (inherited from above), or None."""

    def grants(sub_id: UUID | None, rg_id: UUID | None, ws_id: UUID | None) -> list[str | None]:
        scope = Q(subscription_id=sub_id)
        if rg_id:
            scope |= Q(resource_group_id=rg_id)
        if ws_id:
            scope |= Q(workspace_id=ws_id)
        return list(Membership.objects.filter(scope, user=user).values_list("role", flat=True))

    return _effective_role(user, obj, token, grants)


def _has_access_below(user: User, obj: Scope) -> bool:
    """True when the user holds a role somewhere below obj (so may see it as a container)."""
    if isinstance(obj, Workspace):
        return False
    if isinstance(obj, ResourceGroup):
        return Membership.objects.filter(
            user=user, workspace__resource_group=obj, workspace__deletion_requested_at=None
        ).exists()
    return Membership.objects.filter(
        Q(resource_group__subscription=obj, resource_group__deletion_requested_at=None)
        | Q(
            workspace__resource_group__subscription=obj,
            workspace__deletion_requested_at=None,
            workspace__resource_group__deletion_requested_at=None,
        ),
        user=user,
    ).exists()


@dataclass
class Access:
    """An object as a given user meets it."""

    obj: Scope
    role: str | None

    def can(self, minimum: str) -> bool:
        return role_at_least(self.role, minimum)

    @property
    def can_read(self) -> bool:
        return self.can(Role.READER)

    @property
    def can_write(self) -> bool:
        return self.can(Role.CONTRIBUTOR)

    @property
    def can_manage(self) -> bool:
        return self.can(Role.OWNER)


def _access(
    user: User, obj: Scope | None, min_role: str | None, token: ApiToken | None, what: str
) -> Access:
    if obj is None or is_deleting(obj):
        raise NotFound(f"{what} not found")
    role = role_for(user, obj, token)
    visible = role is not None or (
        token is None and user.is_authenticated and _has_access_below(user, obj)
    )
    if not visible:
        raise NotFound(f"{what} not found")
    if min_role and not role_at_least(role, min_role):
        raise PermissionDenied(f"This needs the {min_role} role on the {what.lower()}.")
    return Access(obj=obj, role=role)


def subscription_access(
    *,
    user: User,
    subscription_id: UUID | str,
    min_role: str | None = None,
    token: ApiToken | None = None,
) -> Access:
    sub = Subscription.objects.filter(pk=subscription_id).first()
    return _access(user, sub, min_role, token, "Subscription")


def resource_group_access(
    *,
    user: User,
    subscription_id: UUID | str,
    resource_group: str,
    min_role: str | None = None,
    token: ApiToken | None = None,
) -> Access:
    rg = (
        ResourceGroup.objects.select_related("subscription")
        .filter(subscription_id=subscription_id, name__iexact=resource_group)
        .first()
    )
    return _access(user, rg, min_role, token, "Resource group")


def workspace_access(
    *,
    user: User,
    subscription_id: UUID | str,
    resource_group: str,
    workspace: str,
    min_role: str | None = Role.READER,
    token: ApiToken | None = None,
) -> Access:
    ws = (
        Workspace.objects.select_related("resource_group__subscription")
        .filter(
            resource_group__subscription_id=subscription_id,
            resource_group__name__iexact=resource_group,
            name__iexact=workspace,
        )
        .first()
    )
    return _access(user, ws, min_role or Role.READER, token, "Workspace")


def workspace_access_by_id(
    *,
    user: User,
    workspace_id: UUID | str,
    min_role: str = Role.READER,
    token: ApiToken | None = None,
) -> Access:
    ws = (
        Workspace.objects.select_related("resource_group__subscription")
        .filter(pk=workspace_id)
        .first()
    )
    return _access(user, ws, min_role, token, "Workspace")


def can_create_subscription(user: User, token: ApiToken | None = None) -> bool:
    """Staff create subscriptions; not through a read-only or workspace-bound token, which
    must not reach beyond what it was made for."""
    if token is not None and (token.scope == TokenScope.READ or token.workspace_id is not None):
        return False
    return bool(user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


# --- Visibility ---------------------------------------------------------------


def live_workspaces() -> QuerySet[Workspace]:
    """Workspaces nobody asked to delete (nor their resource group)."""
    return Workspace.objects.filter(
        deletion_requested_at=None, resource_group__deletion_requested_at=None
    )


def visible_workspaces(user: User, token: ApiToken | None = None) -> QuerySet[Workspace]:
    qs = live_workspaces().select_related("resource_group__subscription", "created_by")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if token is not None and token.workspace_id is not None:
        qs = qs.filter(pk=token.workspace_id)
    if user.is_superuser:
        return qs
    mine = Membership.objects.filter(user=user)
    return qs.filter(
        Q(pk__in=mine.filter(workspace__isnull=False).values("workspace_id"))
        | Q(
            resource_group_id__in=mine.filter(resource_group__isnull=False).values(
                "resource_group_id"
            )
        )
        | Q(
            resource_group__subscription_id__in=mine.filter(subscription__isnull=False).values(
                "subscription_id"
            )
        )
    )


def visible_subscriptions(user: User, token: ApiToken | None = None) -> QuerySet[Subscription]:
    """The subscriptions subscription_access lets the user see: with a role on them, or
    (in a browser session) a role on something live inside them."""
    qs = Subscription.objects.all()
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if token is not None and token.workspace_id is not None:
        return qs.none()  # a workspace-bound token sees no containers (role_for)
    if user.is_superuser:
        return qs
    mine = Membership.objects.filter(user=user)
    visible = Q(pk__in=mine.filter(subscription__isnull=False).values("subscription_id"))
    if token is None:
        visible |= Q(
            pk__in=mine.filter(
                resource_group__isnull=False, resource_group__deletion_requested_at=None
            ).values("resource_group__subscription_id")
        ) | Q(
            pk__in=live_workspaces()
            .filter(memberships__user=user)
            .values("resource_group__subscription_id")
        )
    return qs.filter(visible)


def visible_resource_groups(
    user: User, subscription: Subscription, role: str | None, token: ApiToken | None = None
) -> QuerySet[ResourceGroup]:
    """The live resource groups of a subscription that resource_group_access lets the user
    see; `role` is the user's on the subscription (role_for, as subscription_access gave
    it), which shows them all."""
    qs = ResourceGroup.objects.filter(subscription=subscription, deletion_requested_at=None)
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if token is not None and token.workspace_id is not None:
        return qs.none()
    if user.is_superuser or role is not None:
        return qs
    mine = Membership.objects.filter(user=user)
    visible = Q(pk__in=mine.filter(resource_group__isnull=False).values("resource_group_id"))
    if token is None:
        visible |= Q(
            pk__in=live_workspaces().filter(memberships__user=user).values("resource_group_id")
        )
    return qs.filter(visible)


@dataclass
class RoleMap:
    """The user's grants read once, so a page of many scopes costs no query per row.
    `role(obj)` gives what role_for gives (inheritance, superusers, token caps)."""

    user: User
    token: ApiToken | None
    by_scope: dict[UUID, str]

    def role(self, obj: Scope) -> str | None:
        def grants(*chain: UUID | None) -> list[str | None]:
            return [self.by_scope.get(scope_id) for scope_id in chain if scope_id]

        return _effective_role(self.user, obj, self.token, grants)


def role_map(user: User, token: ApiToken | None = None) -> RoleMap:
    by_scope: dict[UUID, str] = {}
    if user.is_authenticated:
        for m in Membership.objects.filter(user=user):
            by_scope[m.subscription_id or m.resource_group_id or m.workspace_id] = m.role
    return RoleMap(user=user, token=token, by_scope=by_scope)


def tokens_for_user(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, kind="personal").select_related(
        "workspace__resource_group"
    )
