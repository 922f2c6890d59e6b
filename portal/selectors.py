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

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet

from portal import registry
from portal.errors import NotFound, PermissionDenied
from portal.models import (
    ROLE_RANK,
    TOKEN_SCOPE_CAP,
    ApiToken,
    AuditEntry,
    DeletionJob,
    Membership,
    ResourceGroup,
    Role,
    Subscription,
    TokenScope,
    Workspace,
    role_at_least,
)

log = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser
Scope = Subscription | ResourceGroup | Workspace


def _strongest(roles: list[str | None]) -> str | None:
    present = [role for role in roles if role]
    return max(present, key=lambda role: ROLE_RANK[role]) if present else None


def _cap(role: str | None, token: ApiToken | None) -> str | None:
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
        return _cap(Role.OWNER, token)
    return _cap(_strongest(grants(sub_id, rg_id, ws_id)), token)


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


# --- Listings ----------------------------------------------------------------


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
        return Role.OWNER if user.is_superuser else _strongest(list(roles))

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


def tokens_for_user(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, kind="personal").select_related(
        "workspace__resource_group"
    )


# --- Details ------------------------------------------------------------------


def base_url(request=None) -> str:
    """The studio's public base URL: SITE_URL when set, else the request's own."""
    if settings.SITE_URL:
        return settings.SITE_URL
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return "http://127.0.0.1:8000"


def tracking_uri(workspace: Workspace, base: str) -> str:
    rg = workspace.resource_group
    return (
        f"{base}/mlflow/v1.0/subscriptions/{rg.subscription_id}"
        f"/resourceGroups/{rg.name}/workspaces/{workspace.name}"
    )


def storage_label(artifact_root: str) -> str:
    """Where artifacts live, as users may see it: a Blob URL, never a server path."""
    if artifact_root.startswith(("https://", "http://")):
        return artifact_root.split("?", 1)[0]
    return "local"


def workspace_details(workspace: Workspace, base: str) -> dict:
    """The dict the SDK's get_details() returns (the reference service's keys)."""
    rg = workspace.resource_group
    return {
        "id": workspace.arm_id,
        "name": workspace.name,
        "workspaceid": str(workspace.id),
        "type": "MLStudio/workspaces",
        "location": workspace.location,
        "description": workspace.description,
        "friendlyName": workspace.friendly_name or workspace.name,
        "tags": workspace.tags,
        "subscriptionId": str(rg.subscription_id),
        "subscriptionName": rg.subscription.name,
        "resourceGroup": rg.name,
        "creationTime": workspace.created_at.isoformat(),
        "createdBy": workspace.created_by.get_username() if workspace.created_by else None,
        "storageAccount": storage_label(workspace.artifact_root),
        "mlflowTrackingUri": tracking_uri(workspace, base),
        "provisioningState": "Succeeded",
    }


# --- Deletion ------------------------------------------------------------------


def deletion_job_parent(job: DeletionJob) -> Scope | None:
    """The scope a job's target sits in (whose readers may follow the job), if it is
    still there: the resource group of a workspace, the subscription of a resource
    group, the workspace of anything inside one (another app's kind: an experiment)."""
    if job.kind == DeletionJob.Kind.WORKSPACE:
        return (
            ResourceGroup.objects.select_related("subscription")
            .filter(pk=job.resource_group_id)
            .first()
        )
    if job.kind == DeletionJob.Kind.RESOURCE_GROUP:
        return Subscription.objects.filter(pk=job.subscription_id).first()
    return (
        Workspace.objects.select_related("resource_group__subscription")
        .filter(pk=job.workspace_id)
        .first()
    )


@dataclass
class JobAccess:
    """A deletion job as a given user meets it, and the scope it belongs to."""

    job: DeletionJob
    parent: Scope | None
    role: str | None  # the user's role on the parent
    is_creator: bool
    read_only: bool = False  # the request came with a read-only token

    @property
    def can_retry(self) -> bool:
        """A failed job may be queued again by whoever asked for it, or a contributor."""
        return (
            self.job.status == DeletionJob.Status.FAILED
            and not self.read_only
            and (self.is_creator or role_at_least(self.role, Role.CONTRIBUTOR))
        )


def deletion_job_access(
    *, user: User, job_id: UUID | str, token: ApiToken | None = None
) -> JobAccess:
    """The job, if the user created it or can read its parent scope; else 404. A token
    narrows the role on the parent as everywhere (role_for)."""
    job = DeletionJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or not user.is_authenticated or not user.is_active:
        raise NotFound("Deletion job not found")
    parent = deletion_job_parent(job)
    role = role_for(user, parent, token) if parent is not None else None
    if user.is_superuser and (token is None or token.workspace_id is None):
        role = _cap(Role.OWNER, token)
    is_creator = job.created_by_id is not None and job.created_by_id == user.pk
    if role is None and not is_creator:
        raise NotFound("Deletion job not found")
    return JobAccess(
        job=job,
        parent=parent,
        role=role,
        is_creator=is_creator,
        read_only=token is not None and token.scope == TokenScope.READ,
    )


def deletion_jobs_for(obj: Subscription | ResourceGroup, limit: int = 10) -> list[DeletionJob]:
    """Recent deletions of what lives directly in obj (for its page)."""
    if isinstance(obj, ResourceGroup):
        jobs = DeletionJob.objects.filter(resource_group_id=obj.id, kind=DeletionJob.Kind.WORKSPACE)
    else:
        jobs = DeletionJob.objects.filter(
            subscription_id=obj.id,
            kind__in=[DeletionJob.Kind.RESOURCE_GROUP, DeletionJob.Kind.WORKSPACE],
        )
    return list(jobs.select_related("created_by")[:limit])


@dataclass
class DeletionSummary:
    """What deleting a workspace or a resource group takes away, for its confirm page:
    the workspaces, and a row for each thing an app holds in them (experiments, runs,
    stored artifacts…), in the order the apps registered them."""

    workspaces: list[Workspace]
    rows: list[registry.DeletionRow]


def deletion_summary(obj: Workspace | ResourceGroup) -> DeletionSummary:
    """The workspaces below obj and the counts the apps registered for them."""
    if isinstance(obj, Workspace):
        workspaces = [obj]
    else:
        workspaces = list(Workspace.objects.filter(resource_group=obj).order_by("name"))
    rows = [row for entry in registry.deletion_counts() for row in entry.rows(workspaces)]
    return DeletionSummary(workspaces=workspaces, rows=rows)
