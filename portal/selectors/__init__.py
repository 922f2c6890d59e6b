"""Reads of the tenancy app shared by pages, the API and the MLflow protocol.

access (roles, role_for, the access checks, what a user may see, tokens), tree (the
tenancy tree, members and activity of a scope), details (a workspace's get_details()
shape, tracking URI, base URL), deletion (deletion jobs and what a deletion takes away).
Callers import from here: `from portal.selectors import role_for`."""

from portal.selectors.access import (
    Access,
    RoleMap,
    Scope,
    User,
    can_create_subscription,
    is_deleting,
    live_workspaces,
    resource_group_access,
    role_for,
    role_map,
    scope_chain,
    subscription_access,
    tokens_for_user,
    visible_resource_groups,
    visible_subscriptions,
    visible_workspaces,
    workspace_access,
    workspace_access_by_id,
)
from portal.selectors.deletion import (
    DeletionSummary,
    JobAccess,
    deletion_job_access,
    deletion_job_parent,
    deletion_jobs_for,
    deletion_summary,
)
from portal.selectors.details import base_url, storage_label, tracking_uri, workspace_details
from portal.selectors.tree import (
    TreeResourceGroup,
    TreeSubscription,
    TreeWorkspace,
    active_user,
    audit_entries_for,
    direct_membership,
    memberships_for_scope,
    scope_memberships,
    tenancy_tree,
)

__all__ = [
    "Access",
    "DeletionSummary",
    "JobAccess",
    "RoleMap",
    "Scope",
    "TreeResourceGroup",
    "TreeSubscription",
    "TreeWorkspace",
    "User",
    "active_user",
    "audit_entries_for",
    "base_url",
    "can_create_subscription",
    "deletion_job_access",
    "deletion_job_parent",
    "deletion_jobs_for",
    "deletion_summary",
    "direct_membership",
    "is_deleting",
    "live_workspaces",
    "memberships_for_scope",
    "resource_group_access",
    "role_for",
    "role_map",
    "scope_chain",
    "scope_memberships",
    "storage_label",
    "subscription_access",
    "tenancy_tree",
    "tokens_for_user",
    "tracking_uri",
    "visible_resource_groups",
    "visible_subscriptions",
    "visible_workspaces",
    "workspace_access",
    "workspace_access_by_id",
    "workspace_details",
]
