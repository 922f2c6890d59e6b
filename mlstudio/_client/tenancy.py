"""The tenancy scopes as the API addresses them: subscription, resource group, workspace.

Every object builds its paths from these, so a workspace never needs the ResourceGroup
class (which sits above it) to find or create its resource group.
"""

from __future__ import annotations

import uuid
from typing import Any

from mlstudio._client.http import HttpClient, segment
from mlstudio.exceptions import (
    ConflictError,
    ResourceGroupNotFound,
    SubscriptionNotFound,
    ValidationError,
)


def check_subscription_id(value: Any) -> str:
    """A subscription id in canonical form.

    Raises:
        ValidationError: it is not a UUID (the server would not find it, less clearly).
    """
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValidationError(
            f"subscription_id must be a subscription's id (a UUID), not {value!r}."
        ) from None


def subscription_path(subscription_id: str) -> str:
    """The API path of a subscription."""
    return f"subscriptions/{segment(subscription_id)}"


def resource_group_path(subscription_id: str, resource_group: str) -> str:
    """The API path of a resource group."""
    return f"{subscription_path(subscription_id)}/resourceGroups/{segment(resource_group)}"


def workspace_path(subscription_id: str, resource_group: str, workspace_name: str) -> str:
    """The API path of a workspace."""
    group = resource_group_path(subscription_id, resource_group)
    return f"{group}/workspaces/{segment(workspace_name)}"


def create_resource_group(
    client: HttpClient,
    subscription_id: str,
    name: str,
    location: str | None = None,
    tags: dict | None = None,
) -> dict[str, Any]:
    """Create a resource group; answer its record (the existing one's when it exists).

    Raises:
        SubscriptionNotFound: the subscription is not visible.
    """
    body: dict[str, Any] = {"name": name, "tags": tags or {}}
    if location:
        body["location"] = location
    try:
        return client.post(
            f"{subscription_path(subscription_id)}/resourceGroups",
            body,
            not_found=SubscriptionNotFound,
        )
    except ConflictError:  # created meanwhile by someone else: just as good
        return client.get(
            resource_group_path(subscription_id, name), not_found=ResourceGroupNotFound
        )
