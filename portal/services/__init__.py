"""Writes of the tenancy app. Every change leaves an audit entry.

`from portal import services; services.workspace_create(...)`: the functions live in
`tenancy` (subscriptions, resource groups, workspaces, roles, tokens, the audit log),
`jobs` (the one job machinery every background job uses) and `deletion` (the deletion
jobs that remove a workspace or a resource group).
"""

from portal.services.deletion import (
    deletion_job_execute,
    deletion_job_request,
    deletion_job_retry,
    deletion_job_run,
)
from portal.services.jobs import (
    describe_error,
    job_create,
    job_run,
    jobs_recover,
)
from portal.services.tenancy import (
    LAST_USED_RESOLUTION,
    TOKEN_MAX_LIFETIME,
    TOKEN_PREFIX,
    audit_record,
    current_ip,
    default_artifact_root,
    membership_grant,
    membership_revoke,
    resource_group_create,
    resource_group_update,
    subscription_create,
    subscription_update,
    token_authenticate,
    token_create,
    token_revoke,
    tokens_purge_expired,
    tracking_token_mint,
    workspace_create,
    workspace_update,
)

__all__ = [
    "LAST_USED_RESOLUTION",
    "TOKEN_MAX_LIFETIME",
    "TOKEN_PREFIX",
    "audit_record",
    "current_ip",
    "default_artifact_root",
    "deletion_job_execute",
    "deletion_job_request",
    "deletion_job_retry",
    "deletion_job_run",
    "describe_error",
    "job_create",
    "job_run",
    "jobs_recover",
    "membership_grant",
    "membership_revoke",
    "resource_group_create",
    "resource_group_update",
    "subscription_create",
    "subscription_update",
    "token_authenticate",
    "token_create",
    "token_revoke",
    "tokens_purge_expired",
    "tracking_token_mint",
    "workspace_create",
    "workspace_update",
]
