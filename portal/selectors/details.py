"""A workspace as the SDK's get_details() and the pages describe it: its tracking URI,
its storage, the studio's public base URL."""

from __future__ import annotations

from django.conf import settings

from portal.models import Workspace


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
