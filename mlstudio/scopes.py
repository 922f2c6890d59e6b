"""The scopes above workspaces: subscriptions and resource groups.

The top floor of the SDK's objects: it may import them all; nothing below imports it.
"""

from __future__ import annotations

from typing import Any

from mlstudio._client.http import Auth, HttpClient, make_client
from mlstudio._client.jobs import finish_job
from mlstudio._client.tenancy import (
    check_subscription_id,
    create_resource_group,
    resource_group_path,
    subscription_path,
)
from mlstudio.exceptions import ResourceGroupNotFound, SubscriptionNotFound
from mlstudio.workspace import Workspace


class ResourceGroup:
    """A resource group: the folder of workspaces that is created and deleted together.

    Args:
        subscription_id: The id of its subscription.
        name: Its name.
        auth: The credential.
        server_url: The server (default $MLSTUDIO_SERVER_URL).
    """

    def __init__(
        self,
        subscription_id: str,
        name: str,
        auth: Auth = None,
        server_url: str | None = None,
        _client: HttpClient | None = None,
    ) -> None:
        self._client = _client or make_client(server_url, auth)
        self.subscription_id = check_subscription_id(subscription_id)
        self.name = name

    @property
    def _path(self) -> str:
        return resource_group_path(self.subscription_id, self.name)

    def _create(self, location: str | None = None, tags: dict | None = None) -> dict[str, Any]:
        return create_resource_group(self._client, self.subscription_id, self.name, location, tags)

    @classmethod
    def create(
        cls,
        subscription_id: str,
        name: str,
        location: str | None = None,
        tags: dict[str, str] | None = None,
        auth: Auth = None,
        server_url: str | None = None,
    ) -> ResourceGroup:
        """Create a resource group (or answer the existing one of that name)."""
        group = cls(subscription_id, name, auth=auth, server_url=server_url)
        group._create(location=location, tags=tags)
        return group

    def get_details(self) -> dict[str, Any]:
        """The resource group: id, name, subscription_id, location, tags, role, created_at.

        Raises:
            ResourceGroupNotFound: it does not exist or is not visible.
        """
        return self._client.get(self._path, not_found=ResourceGroupNotFound)

    def list_workspaces(self) -> list[Workspace]:
        """Its workspaces that the caller can see."""
        return [
            Workspace._from_details(self._client, details)
            for details in self._client.paged(
                f"{self._path}/workspaces", not_found=ResourceGroupNotFound
            )
        ]

    def delete(
        self, wait: bool = True, show_progress: bool = True, timeout: float | None = None
    ) -> dict[str, Any]:
        """Delete the resource group, its workspaces and everything in them.

        Args:
            wait: Wait for the deletion job to end.
            show_progress: Draw a progress bar on stderr while waiting.
            timeout: Stop waiting after this many seconds.

        Returns:
            The deletion job (its final state when waiting).

        Raises:
            JobFailedError: the job failed.
            ResourceGroupNotFound: it does not exist or is not visible.
            AuthorizationError: deleting needs the contributor role on it.
        """
        job = self._client.delete(
            self._path, params={"confirm": self.name}, not_found=ResourceGroupNotFound
        )
        return finish_job(
            self._client, job, wait=wait, show_progress=show_progress, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"ResourceGroup({self.subscription_id!r}, {self.name!r})"


class Subscription:
    """A subscription: the top of the tree (created by administrators)."""

    def __init__(self, details: dict[str, Any], _client: HttpClient) -> None:
        self._client = _client
        self.id: str = details["id"]
        self.name: str = details["name"]
        self.details = details

    @classmethod
    def list(cls, auth: Auth = None, server_url: str | None = None) -> list[Subscription]:
        """Every subscription the caller can see."""
        client = make_client(server_url, auth)
        return [cls(details, client) for details in client.paged("subscriptions")]

    def list_resource_groups(self) -> list[ResourceGroup]:
        """Its resource groups that the caller can see."""
        return [
            ResourceGroup(self.id, details["name"], _client=self._client)
            for details in self._client.paged(
                f"{subscription_path(self.id)}/resourceGroups",
                not_found=SubscriptionNotFound,
            )
        ]

    def __repr__(self) -> str:
        return f"Subscription(id={self.id!r}, name={self.name!r})"
