"""Writes of the tenancy app. Every change leaves an audit entry.

`from portal import services; services.workspace_create(...)`: the functions live in
`tenancy` (subscriptions, resource groups, workspaces, roles, tokens, the audit log)
and `deletion` (deletion jobs that purge a workspace, a resource group or an
experiment in the background).
"""

from portal.services.deletion import (
    deletion_job_execute,
    deletion_job_request,
    deletion_job_retry,
    deletion_job_run,
    deletion_jobs_recover,
    describe_error,
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
    "deletion_jobs_recover",
    "describe_error",
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
