"""Workspaces: find, create, describe, track with MLflow, delete.

A workspace's parents are plain ids (subscription id, resource group name): it finds and
creates its resource group through mlstudio._client.tenancy, not through ResourceGroup,
which stands above it. Experiments, below it, get the workspace object itself.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlstudio._client import renewal, tenancy
from mlstudio._client.config import CONFIG_DIR, CONFIG_FILE, load_config
from mlstudio._client.http import Auth, HttpClient, make_client
from mlstudio._client.jobs import finish_job
from mlstudio.compute import ComputeTarget
from mlstudio.environment import Environment
from mlstudio.exceptions import (
    ConflictError,
    NotFoundError,
    ResourceGroupNotFound,
    UserErrorException,
    WorkspaceNotFound,
)
from mlstudio.experiment import Experiment, WorkspaceExperiments

AUTH_PROVIDER_ENV = "MLFLOW_TRACKING_AUTH"


class Workspace:
    """A workspace: where experiments, runs and models of a project live.

    Usually obtained with :meth:`from_config`, :meth:`get` or :meth:`create`. The constructor
    checks that the workspace exists and the caller can see it.

    Args:
        subscription_id: The id (UUID) of the workspace's subscription.
        resource_group: The name of the workspace's resource group.
        workspace_name: The workspace's name.
        auth: The credential (see mlstudio.auth); default $MLSTUDIO_TOKEN, then the stored login.
        server_url: The server (default $MLSTUDIO_SERVER_URL).

    Raises:
        WorkspaceNotFound: it does not exist or the caller cannot see it.
        AuthenticationError: no credential, or the server refused it.
    """

    def __init__(
        self,
        subscription_id: str,
        resource_group: str,
        workspace_name: str,
        auth: Auth = None,
        server_url: str | None = None,
        _details: dict[str, Any] | None = None,
        _client: HttpClient | None = None,
    ) -> None:
        self._client = _client or make_client(server_url, auth)
        self._subscription_id = tenancy.check_subscription_id(subscription_id)
        self._resource_group = resource_group
        self._name = workspace_name
        self._details = _details if _details is not None else self._fetch()

    # --- Finding and creating ---------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike | None = None,
        auth: Auth = None,
        _file_name: str | None = None,
    ) -> Workspace:
        """The workspace a config.json names.

        The file (see :func:`find_config` for where it is looked for) holds
        ``subscription_id``, ``resource_group``, ``workspace_name`` and ``server_url``;
        without ``server_url`` the server is $MLSTUDIO_SERVER_URL.

        Args:
            path: The config file, or the folder to start searching in (default: the current
                folder).
            auth: The credential (default $MLSTUDIO_TOKEN, then the stored login).
            _file_name: Look for this file name instead of config.json.

        Returns:
            The workspace.

        Raises:
            ConfigurationError: no config file, or one without the keys.
            WorkspaceNotFound: the workspace it names does not exist or is not visible.
        """
        config = load_config(path, _file_name)
        return cls(
            config["subscription_id"],
            config["resource_group"],
            config["workspace_name"],
            auth=auth,
            server_url=config.get("server_url"),
        )

    @classmethod
    def get(
        cls,
        name: str,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        auth: Auth = None,
        server_url: str | None = None,
    ) -> Workspace:
        """A workspace by name.

        Without `subscription_id` and `resource_group`, the one workspace of that name the
        caller can see is answered.

        Args:
            name: The workspace's name.
            subscription_id: Its subscription's id.
            resource_group: Its resource group's name.
            auth: The credential.
            server_url: The server (default $MLSTUDIO_SERVER_URL).

        Raises:
            WorkspaceNotFound: no such workspace is visible.
            UserErrorException: several visible workspaces have that name; pass the
                subscription and resource group.
        """
        if subscription_id and resource_group:
            return cls(subscription_id, resource_group, name, auth=auth, server_url=server_url)
        client = make_client(server_url, auth)
        sub = tenancy.check_subscription_id(subscription_id) if subscription_id else None
        matches = [
            details
            for details in client.paged("workspaces")
            if details["name"] == name
            and (sub is None or details["subscriptionId"] == sub)
            and (resource_group is None or details["resourceGroup"] == resource_group)
        ]
        if not matches:
            raise WorkspaceNotFound(f"No workspace named {name!r} is visible to you.")
        if len(matches) > 1:
            places = ", ".join(f"{d['subscriptionName']}/{d['resourceGroup']}" for d in matches)
            raise UserErrorException(
                f"{len(matches)} workspaces are named {name!r} ({places}); "
                "pass subscription_id and resource_group."
            )
        return cls._from_details(client, matches[0])

    @classmethod
    def create(
        cls,
        name: str,
        subscription_id: str,
        resource_group: str,
        location: str | None = None,
        create_resource_group: bool = True,
        exist_ok: bool = False,
        description: str = "",
        tags: dict[str, str] | None = None,
        friendly_name: str | None = None,
        auth: Auth = None,
        server_url: str | None = None,
    ) -> Workspace:
        """Create a workspace (and its resource group, when missing and allowed).

        Args:
            name: The workspace's name (letters, digits, dashes and underscores).
            subscription_id: The subscription to create it in.
            resource_group: The resource group to create it in.
            location: The workspace's location (and the new resource group's); default the
                resource group's.
            create_resource_group: Create the resource group when it does not exist.
            exist_ok: Answer the existing workspace instead of raising when it exists.
            description: A description.
            tags: Tags {key: value}.
            friendly_name: A display name.
            auth: The credential; it needs the contributor role on the resource group (on the
                subscription to create a resource group).
            server_url: The server (default $MLSTUDIO_SERVER_URL).

        Returns:
            The new (or, with exist_ok, the existing) workspace.

        Raises:
            ConflictError: it exists already and exist_ok is False.
            ValidationError: a bad name or value.
            ResourceGroupNotFound: the resource group is missing and create_resource_group
                is False.
            AuthorizationError: the caller's role does not allow it.
        """
        client = make_client(server_url, auth)
        sub = tenancy.check_subscription_id(subscription_id)
        body: dict[str, Any] = {"name": name, "description": description, "tags": tags or {}}
        if location:
            body["location"] = location
        if friendly_name:
            body["friendly_name"] = friendly_name
        path = f"{tenancy.resource_group_path(sub, resource_group)}/workspaces"
        try:
            try:
                details = client.post(path, body, not_found=ResourceGroupNotFound)
            except ResourceGroupNotFound as missing:
                if not create_resource_group:
                    raise
                try:
                    tenancy.create_resource_group(client, sub, resource_group, location=location)
                except NotFoundError:  # the subscription is not visible either
                    raise missing from None
                details = client.post(path, body, not_found=ResourceGroupNotFound)
        except ConflictError:
            if not exist_ok:
                raise
            return cls(subscription_id, resource_group, name, _client=client)
        return cls._from_details(client, details)

    @classmethod
    def list(
        cls,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        auth: Auth = None,
        server_url: str | None = None,
    ) -> dict[str, list[Workspace]]:
        """Every workspace the caller can see, by name (names repeat across resource groups).

        Args:
            subscription_id: Only this subscription's.
            resource_group: Only this resource group's (needs subscription_id).
            auth: The credential.
            server_url: The server.

        Returns:
            {name: [Workspace, ...]}
        """
        client = make_client(server_url, auth)
        if resource_group is not None:
            if subscription_id is None:
                raise UserErrorException("resource_group needs subscription_id.")
            group_path = tenancy.resource_group_path(
                tenancy.check_subscription_id(subscription_id), resource_group
            )
            items = client.paged(f"{group_path}/workspaces", not_found=ResourceGroupNotFound)
        else:
            items = client.paged("workspaces")
        sub = tenancy.check_subscription_id(subscription_id) if subscription_id else None
        found: dict[str, list[Workspace]] = {}
        for details in items:
            if sub is None or details["subscriptionId"] == sub:
                found.setdefault(details["name"], []).append(cls._from_details(client, details))
        return found

    @classmethod
    def _from_details(cls, client: HttpClient, details: dict[str, Any]) -> Workspace:
        return cls(
            details["subscriptionId"],
            details["resourceGroup"],
            details["name"],
            _details=details,
            _client=client,
        )

    # --- What it is -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def subscription_id(self) -> str:
        return self._subscription_id

    @property
    def resource_group(self) -> str:
        return self._resource_group

    @property
    def location(self) -> str:
        return self._details.get("location", "")

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._details.get("tags") or {})

    @property
    def description(self) -> str:
        return self._details.get("description", "")

    @property
    def friendly_name(self) -> str:
        return self._details.get("friendlyName") or self._name

    @property
    def workspace_id(self) -> str:
        """The workspace's UUID (tokens limited to one workspace name it)."""
        return self._details["workspaceid"]

    @property
    def server_url(self) -> str:
        return self._client.server_url

    @property
    def _path(self) -> str:
        return tenancy.workspace_path(self._subscription_id, self._resource_group, self._name)

    def _fetch(self) -> dict[str, Any]:
        return self._client.get(self._path, not_found=WorkspaceNotFound)

    def get_details(self) -> dict[str, Any]:
        """The workspace's details, fresh from the server.

        Returns:
            A dict with the reference service's keys: id, name, workspaceid, type, location,
            description, friendlyName, tags, subscriptionId, subscriptionName, resourceGroup,
            creationTime, createdBy, storageAccount, mlflowTrackingUri, provisioningState, and
            the caller's role.

        Raises:
            WorkspaceNotFound: it was deleted meanwhile.
        """
        self._details = self._fetch()
        return dict(self._details)

    def update(
        self,
        description: str | None = None,
        friendly_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Workspace:
        """Change the description, display name or tags (None leaves one as it is)."""
        body = {
            key: value
            for key, value in {
                "description": description,
                "friendly_name": friendly_name,
                "tags": tags,
            }.items()
            if value is not None
        }
        self._details = self._client.patch(self._path, body, not_found=WorkspaceNotFound)
        return self

    def write_config(
        self, path: str | os.PathLike | None = None, file_name: str | None = None
    ) -> Path:
        """Write the config file that :meth:`from_config` reads back.

        Args:
            path: The folder to write ``.mlstudio/<file_name>`` in (default: the current one).
            file_name: The file's name (default ``config.json``).

        Returns:
            The path written.
        """
        folder = Path(path).expanduser() if path is not None else Path.cwd()
        target = folder / CONFIG_DIR / (file_name or CONFIG_FILE)
        target.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "subscription_id": self._subscription_id,
            "resource_group": self._resource_group,
            "workspace_name": self._name,
            "server_url": self.server_url,
        }
        target.write_text(json.dumps(config, indent=4) + "\n")
        return target

    # --- Tracking ---------------------------------------------------------------------------

    def _mint_tracking_token(self) -> tuple[str, float]:
        body, lifetime = renewal.request_tracking_token(
            self._client, self._path, not_found=WorkspaceNotFound
        )
        self._tracking_uri = body["tracking_uri"]
        return body["token"], lifetime

    def get_mlflow_tracking_uri(self) -> str:
        """The URI to give ``mlflow.set_tracking_uri()`` to log to this workspace.

        It is a plain ``http(s)://`` URI. Requests to it carry a short-lived token limited to
        this workspace, minted with your credential and renewed before it expires (through
        the ``mlstudio`` MLflow auth provider, which this call selects by setting
        MLFLOW_TRACKING_AUTH=mlstudio), so long scripts keep logging.

        Without the SDK's plugin, any MLflow client works with the same URI and
        MLFLOW_TRACKING_TOKEN set to a token (a personal one, or one from ``POST
        .../tracking-token``).

        Returns:
            The tracking URI.

        Raises:
            AuthorizationError: the credential is itself a tracking token (those cannot mint).
        """
        token, lifetime = self._mint_tracking_token()
        uri = self._tracking_uri
        renewal.register(
            renewal.TrackingTokenSource(uri, self._mint_tracking_token, token, lifetime)
        )
        current = os.environ.get(AUTH_PROVIDER_ENV)
        if current and current != "mlstudio":
            warnings.warn(
                f"{AUTH_PROVIDER_ENV} is {current!r}, so MLflow will not send ML Studio's "
                "renewed tracking tokens; unset it, or set MLFLOW_TRACKING_TOKEN yourself.",
                stacklevel=2,
            )
        else:
            os.environ[AUTH_PROVIDER_ENV] = "mlstudio"
            renewal.install_auth_provider()
        return uri

    @property
    def experiments(self) -> Mapping[str, Experiment]:
        """The workspace's active experiments by name (read from the server on each use)."""
        return WorkspaceExperiments(self)

    # --- Remote runs ------------------------------------------------------------------------

    @property
    def compute_targets(self) -> dict[str, ComputeTarget]:
        """The workspace's compute targets by name, ``local`` included (read now)."""
        return {target.name: target for target in ComputeTarget.list(self)}

    @property
    def environments(self) -> dict[str, Environment]:
        """The latest version of each environment by name, curated ones included (read now)."""
        return Environment.list(self)

    # --- Deleting ---------------------------------------------------------------------------

    def delete(
        self, wait: bool = True, show_progress: bool = True, timeout: float | None = None
    ) -> dict[str, Any]:
        """Delete the workspace with everything in it: experiments, runs, models, artifacts.

        The server hides it at once and deletes its contents in a background job.

        Args:
            wait: Wait for the job to end.
            show_progress: Draw a progress bar on stderr while waiting.
            timeout: Stop waiting after this many seconds.

        Returns:
            The deletion job (its final state when waiting).

        Raises:
            JobFailedError: the job failed.
            AuthorizationError: deleting needs the contributor role.
        """
        job = self._client.delete(
            self._path, params={"confirm": self._name}, not_found=WorkspaceNotFound
        )
        return finish_job(
            self._client, job, wait=wait, show_progress=show_progress, timeout=timeout
        )

    def __repr__(self) -> str:
        return (
            f"Workspace.create(name={self._name!r}, subscription_id={self._subscription_id!r}, "
            f"resource_group={self._resource_group!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and (
            self.server_url,
            self._subscription_id,
            self._resource_group,
            self._name,
        ) == (other.server_url, other._subscription_id, other._resource_group, other._name)

    def __hash__(self) -> int:
        return hash((self.server_url, self._subscription_id, self._resource_group, self._name))
