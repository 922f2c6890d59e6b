"""The prose of the /api/v1 OpenAPI schema: the introduction of /api/docs/ and
/api/redoc/, and the tags' descriptions.

Plain text, no Django import: portal.settings builds SPECTACULAR_SETTINGS from it.
"""

from __future__ import annotations


def api_description(
    *, page_size: int, max_page_size: int, throttle_rate: str, login_throttle_rate: str
) -> str:
    """The introduction: what every operation shares, so the operations themselves can stay
    short. The limits are the settings' (API_PAGE_SIZE, API_MAX_PAGE_SIZE, API_THROTTLE_RATE,
    API_LOGIN_THROTTLE_RATE)."""
    return f"""\
REST API v1 of ML Studio: the workspace tree (subscriptions → resource groups →
workspaces), role assignments, personal tokens, the MLflow data of each workspace
(experiments, runs, metric history, artifacts), and remote runs (compute targets,
environments, source snapshots, jobs).

**Authentication.** Send `Authorization: Bearer <token>`. Create a token on the Tokens
page, with `mlstudio login`, or with `POST /api/v1/login`. A token may be limited to
read-only access, to one workspace, or to a lifetime.

**Errors.** Every error has one shape, MLflow's:
`{{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Workspace not found"}}`.
What you cannot see is a 404, never a 403; a 403 means that you can see it but your
role (or your token) does not allow the change.

**Paging.** Lists answer `{{"next": ..., "previous": ..., "results": [...]}}`. Follow
`next` until it is `null`. `page_size` sets the page length (1–{max_page_size},
default {page_size}). Cursors are opaque: take them from `next`, never build them.

**Deleting.** Experiments and runs are *soft-deleted* first (restorable, and listed
with `view=deleted`), then *purged* for good. Workspaces, resource groups and experiment
purges are deleted in the background: the request answers **202** with a deletion job.
Poll its `url` (`GET /api/v1/jobs/{{job_id}}`) until `is_finished` is true. Deleting a
workspace or resource group also needs `confirm=<its exact name>`.

**Rate limits.** Each token has a request budget ({throttle_rate or "unlimited"}),
and `POST /api/v1/login` a stricter one per client address ({login_throttle_rate}).
Past it the answer is 429 with a `Retry-After` header (seconds).
"""


# The tags, in reading order (Swagger UI and Redoc follow it).
API_TAGS = [
    {"name": "account", "description": "Sign in, who am I, and personal API tokens."},
    {
        "name": "subscriptions",
        "description": "The top of the tree. Administrators create them; owners rename them.",
    },
    {
        "name": "resource groups",
        "description": "Folders of workspaces inside a subscription, with tags. Deleting "
        "one deletes its workspaces, in the background (see **jobs**).",
    },
    {
        "name": "workspaces",
        "description": "Where experiments live. Each has an MLflow tracking URI; mint a "
        "short-lived tracking token for MLflow clients here.",
    },
    {
        "name": "members",
        "description": "Role assignments (owner, contributor, reader) at each level of "
        "the tree. A role given on a subscription or resource group holds below it too "
        "(`inherited: true`).",
    },
    {
        "name": "experiments",
        "description": "MLflow experiments of a workspace: soft delete, restore, purge.",
    },
    {
        "name": "runs",
        "description": "MLflow runs of a workspace, searched with MLflow's filter syntax.",
    },
    {
        "name": "metrics",
        "description": "A run's metrics: latest values, the full history (paged), or a "
        "downsampled history for charts.",
    },
    {"name": "artifacts", "description": "A run's files: list a folder, download a file."},
    {
        "name": "compute",
        "description": "Compute targets: where remote runs go, each served by the workers "
        "of its own queue. Every workspace has `local`, the studio's own worker.",
    },
    {
        "name": "environments",
        "description": "Versioned Python environments of remote runs (Python version, pip "
        "packages, environment variables); the curated `mlstudio-…` ones exist everywhere.",
    },
    {
        "name": "snapshots",
        "description": "Zips of source folders, stored once per content (sha256).",
    },
    {
        "name": "remote runs",
        "description": "Scripts run on a compute target as MLflow runs: submit, follow the "
        "stage and the log, cancel. A remote run is named by its MLflow run's id.",
    },
    {
        "name": "jobs",
        "description": "Background deletions (workspaces, resource groups, experiment "
        "purges). Poll a job until `is_finished`; retry a failed one.",
    },
]
