"""The tenancy tree as a user sees it, and what each of its nodes lists: the members
(direct and inherited grants) and the activity (audit entries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from portal.models import AuditEntry, Membership, ResourceGroup, Role, Subscription, Workspace
from portal.selectors.access import Scope, User, scope_chain, strongest_role, visible_workspaces


@dataclass
class TreeWorkspace:
    workspace: Workspace
    role: str | None
    member_count: int


@dataclass
class TreeResourceGroup:
    resource_group: ResourceGroup
    role: str | None
    workspaces: list[TreeWorkspace] = field(default_factory=list)


@dataclass
class TreeSubscription:
    subscription: Subscription
    role: str | None
    resource_groups: list[TreeResourceGroup] = field(default_factory=list)

    @property
    def workspace_count(self) -> int:
        return sum(len(rg.workspaces) for rg in self.resource_groups)


def tenancy_tree(user: User, subscription_id: UUID | None = None) -> list[TreeSubscription]:
    """Everything the user can see, as subscriptions › resource groups › workspaces.

    With subscription_id, only that subscription's branch is read.
    """
    if not user.is_authenticated or not user.is_active:
        return []
    memberships = list(Membership.objects.filter(user=user))
    sub_roles = {m.subscription_id: m.role for m in memberships if m.subscription_id}
    rg_roles = {m.resource_group_id: m.role for m in memberships if m.resource_group_id}
    ws_roles = {m.workspace_id: m.role for m in memberships if m.workspace_id}

    workspaces = visible_workspaces(user).annotate(member_count=Count("memberships"))
    rgs = ResourceGroup.objects.filter(deletion_requested_at=None).select_related("subscription")
    subs = Subscription.objects.all()
    if subscription_id is not None:
        workspaces = workspaces.filter(resource_group__subscription_id=subscription_id)
        rgs = rgs.filter(subscription_id=subscription_id)
        subs = subs.filter(pk=subscription_id)
    workspaces = list(workspaces)
    if not user.is_superuser:
        rgs = rgs.filter(
            Q(pk__in=rg_roles.keys())
            | Q(subscription_id__in=sub_roles.keys())
            | Q(pk__in={ws.resource_group_id for ws in workspaces})
        )
        rgs = list(rgs)
        subs = subs.filter(
            Q(pk__in=sub_roles.keys()) | Q(pk__in={rg.subscription_id for rg in rgs})
        )

    def effective(*roles: str | None) -> str | None:
        return Role.OWNER if user.is_superuser else strongest_role(list(roles))

    tree = {sub.id: TreeSubscription(sub, effective(sub_roles.get(sub.id))) for sub in subs}
    groups: dict[UUID, TreeResourceGroup] = {}
    for rg in rgs:
        node = TreeResourceGroup(
            rg, effective(sub_roles.get(rg.subscription_id), rg_roles.get(rg.id))
        )
        groups[rg.id] = node
        tree[rg.subscription_id].resource_groups.append(node)
    for ws in workspaces:
        rg = ws.resource_group
        role = effective(
            sub_roles.get(rg.subscription_id), rg_roles.get(rg.id), ws_roles.get(ws.id)
        )
        groups[rg.id].workspaces.append(TreeWorkspace(ws, role, ws.member_count))
    return list(tree.values())


def _membership_filters(obj: Scope) -> tuple[Q, Q]:
    """(grants made on obj itself, grants made above it that hold for obj)."""
    sub_id, rg_id, ws_id = scope_chain(obj)
    direct_filter = (
        Q(workspace_id=ws_id)
        if ws_id
        else Q(resource_group_id=rg_id)
        if rg_id
        else Q(subscription_id=sub_id)
    )
    inherited_filter = Q(pk__in=[])
    if ws_id:
        inherited_filter = Q(resource_group_id=rg_id) | Q(subscription_id=sub_id)
    elif rg_id:
        inherited_filter = Q(subscription_id=sub_id)
    return direct_filter, inherited_filter


def memberships_for_scope(obj: Scope) -> dict[str, list[Membership]]:
    """Direct grants on obj, and the grants inherited from above it."""
    direct_filter, inherited_filter = _membership_filters(obj)
    base = Membership.objects.select_related(
        "user", "subscription", "resource_group", "workspace"
    ).order_by("user__username")
    return {
        "direct": list(base.filter(direct_filter)),
        "inherited": list(base.filter(inherited_filter)),
    }


def scope_memberships(obj: Scope) -> QuerySet[Membership]:
    """Every grant that holds for obj (direct and inherited) as one queryset, for paging;
    `Membership.scope_kind` tells which ones were made above obj."""
    direct_filter, inherited_filter = _membership_filters(obj)
    return Membership.objects.select_related("user").filter(direct_filter | inherited_filter)


def direct_membership(obj: Scope, username: str) -> Membership | None:
    """The grant made on obj itself to the user with this name, if any."""
    direct_filter, _ = _membership_filters(obj)
    return (
        Membership.objects.select_related(
            "user", "subscription", "resource_group__subscription", "workspace"
        )
        .filter(direct_filter, user__username=username)
        .first()
    )


def active_user(username: str) -> AbstractBaseUser | None:
    """The active user with exactly this user name (roles are granted to active users)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username, is_active=True).first()


def audit_entries_for(obj: Scope, limit: int = 50) -> QuerySet[AuditEntry]:
    sub_id, rg_id, ws_id = scope_chain(obj)
    if ws_id:
        flt = Q(workspace_id=ws_id)
    elif rg_id:
        flt = Q(resource_group_id=rg_id)
    else:
        flt = Q(subscription_id=sub_id)
    return AuditEntry.objects.filter(flt)[:limit]
