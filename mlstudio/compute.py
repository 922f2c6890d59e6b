"""Compute targets: named queues of a workspace that compute workers serve.

A target is where remote runs go (``src.run_config.target = "cpu-cluster"``). It has no
machines of its own to provision: workers started anywhere with one of its worker tokens
consume its queue, and ``max_nodes`` caps how many of its runs go at once. Every workspace
has ``local``, served by the studio's own worker. The reference SDK's calls work as they
are::

    from mlstudio.compute import AmlCompute, ComputeTarget, ComputeTargetException

    try:
        cluster = ComputeTarget(workspace=ws, name="cpu-cluster")
    except ComputeTargetException:
        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
        cluster = ComputeTarget.create(ws, "cpu-cluster", config)
    cluster.wait_for_completion(show_output=True)   # returns at once
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from mlstudio._client.http import segment
from mlstudio._client.parents import WorkspaceParent
from mlstudio.exceptions import ComputeTargetNotFound

# The reference SDK's exception for a missing target (azureml.core.compute_target).
ComputeTargetException = ComputeTargetNotFound

LOCAL = "local"


@dataclass
class ComputeStatus:
    """What a target is doing (``target.get_status()``).

    Attributes:
        provisioning_state: Always ``"Succeeded"``: there is nothing to provision.
        max_nodes: How many of its runs may go at once.
        queued: Runs waiting for a worker.
        running: Runs being run.
        current_node_count: Workers heard from recently.
        workers: Each worker: hostname, slots, version, last_seen, alive.
    """

    provisioning_state: str
    max_nodes: int
    queued: int
    running: int
    current_node_count: int
    workers: list[dict[str, Any]] = field(default_factory=list)

    def serialize(self) -> dict[str, Any]:
        """The status as a dict."""
        return asdict(self)


@dataclass
class AmlComputeProvisioningConfiguration:
    """What :meth:`ComputeTarget.create` makes: a target's ``max_nodes`` and description.

    Made by :meth:`AmlCompute.provisioning_configuration`, which takes the reference SDK's
    arguments and keeps these two.
    """

    max_nodes: int | None = None
    description: str | None = None


class ComputeTarget:
    """A compute target of a workspace.

    ``ComputeTarget(ws, name)`` looks it up.

    Args:
        workspace: The workspace.
        name: The target's name (any case).

    Raises:
        ComputeTargetNotFound: there is none of that name (also importable as
            ComputeTargetException).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> ComputeTarget:
        # As in the reference SDK, a target is an instance of its kind's class.
        return super().__new__(AmlCompute if cls is ComputeTarget else cls)

    def __init__(
        self, workspace: WorkspaceParent, name: str, _details: dict[str, Any] | None = None
    ) -> None:
        self.workspace = workspace
        self._name = name
        self._details = _details if _details is not None else self._fetch()
        self._name = self._details.get("name", name)

    def _path(self, *parts: str) -> str:
        return "/".join([f"{self.workspace._path}/computes/{segment(self._name)}", *parts])

    def _fetch(self) -> dict[str, Any]:
        return self.workspace._client.get(self._path(), not_found=ComputeTargetNotFound)

    # --- Creating, listing ----------------------------------------------------------------

    @staticmethod
    def create(
        workspace: WorkspaceParent,
        name: str,
        provisioning_configuration: AmlComputeProvisioningConfiguration | None = None,
    ) -> ComputeTarget:
        """Create a compute target.

        Args:
            workspace: The workspace.
            name: 2 to 24 letters, digits and hyphens, starting with a letter; unique in the
                workspace regardless of case.
            provisioning_configuration: From :meth:`AmlCompute.provisioning_configuration`
                (default: ``max_nodes`` 1).

        Returns:
            The new target.

        Raises:
            ConflictError: a target of that name exists.
            ValidationError: a bad name or max_nodes (1 to 100).
            AuthorizationError: creating needs the contributor role.
        """
        config = provisioning_configuration or AmlComputeProvisioningConfiguration()
        body: dict[str, Any] = {"name": name}
        if config.max_nodes is not None:
            body["max_nodes"] = config.max_nodes
        if config.description is not None:
            body["description"] = config.description
        details = workspace._client.post(f"{workspace._path}/computes", body)
        return ComputeTarget(workspace, details["name"], _details=details)

    @staticmethod
    def list(workspace: WorkspaceParent) -> list[ComputeTarget]:
        """The workspace's targets by name, ``local`` included."""
        answer = workspace._client.get(f"{workspace._path}/computes")
        return [
            ComputeTarget(workspace, details["name"], _details=details)
            for details in answer["compute_targets"]
        ]

    # --- What it is -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def type(self) -> str:
        """The target's kind as the studio names it."""
        return str(self._details.get("kind") or "")

    @property
    def max_nodes(self) -> int:
        """How many of its runs may go at once."""
        return int(self._details["max_nodes"])

    @property
    def description(self) -> str:
        return self._details.get("description") or ""

    @property
    def is_local(self) -> bool:
        """Whether it is the workspace's ``local`` target (the studio's own worker)."""
        return bool(self._details.get("is_local"))

    @property
    def provisioning_state(self) -> str:
        """Always ``"Succeeded"``: a target is ready as soon as it is created."""
        return "Succeeded"

    def get_details(self) -> dict[str, Any]:
        """The target as the studio has it, fresh: name, kind, description, max_nodes,
        is_local, queue, queued, running, workers, created_at, created_by."""
        self.refresh_state()
        return dict(self._details)

    serialize = get_details

    def refresh_state(self) -> None:
        """Read the target again (its counts and workers change as runs come and go)."""
        self._details = self._fetch()

    def get_status(self) -> ComputeStatus:
        """What the target is doing now: queued and running runs, workers.

        Raises:
            ComputeTargetNotFound: it was deleted.
        """
        self.refresh_state()
        details = self._details
        workers = [dict(w) for w in details.get("workers") or []]
        return ComputeStatus(
            provisioning_state=self.provisioning_state,
            max_nodes=int(details["max_nodes"]),
            queued=int(details.get("queued") or 0),
            running=int(details.get("running") or 0),
            current_node_count=sum(1 for w in workers if w.get("alive")),
            workers=workers,
        )

    def wait_for_completion(
        self,
        show_output: bool = False,
        min_node_count: int | None = None,
        timeout_in_minutes: int = 25,
        is_delete_operation: bool = False,
    ) -> None:
        """Returns at once: a target has nothing to provision (the reference SDK waits for
        its cluster here). The arguments are accepted for compatibility."""
        if show_output:
            print(f"Provisioning state of {self.name}: {self.provisioning_state}", file=sys.stdout)

    # --- Changing ---------------------------------------------------------------------------

    def update(self, max_nodes: int | None = None, description: str | None = None) -> None:
        """Change ``max_nodes`` or the description (None leaves one as it is).

        Raises:
            ValidationError: max_nodes out of 1 to 100.
        """
        body = {
            key: value
            for key, value in {"max_nodes": max_nodes, "description": description}.items()
            if value is not None
        }
        self._details = self.workspace._client.patch(
            self._path(), body, not_found=ComputeTargetNotFound
        )

    def delete(self) -> None:
        """Delete the target (its ended runs keep its name).

        Raises:
            ValidationError: it is ``local``, or has runs that have not ended.
        """
        self.workspace._client.delete(self._path(), not_found=ComputeTargetNotFound)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(Name: {self.name}, Max nodes: {self.max_nodes})"


class AmlCompute(ComputeTarget):
    """The reference SDK's cluster class: every target is one (``ComputeTarget(ws, name)``
    answers an AmlCompute), and ``AmlCompute(ws, name)`` looks one up the same way."""

    @staticmethod
    def provisioning_configuration(
        vm_size: str = "",
        vm_priority: str = "dedicated",
        min_nodes: int = 0,
        max_nodes: int | None = None,
        idle_seconds_before_scaledown: int | None = None,
        description: str | None = None,
        **ignored: Any,
    ) -> AmlComputeProvisioningConfiguration:
        """The configuration of a new target (the reference SDK's signature).

        Args:
            vm_size: Ignored: a target runs on whatever machines its workers are started on.
            vm_priority: Ignored.
            min_nodes: Ignored: workers are started and stopped by whoever runs them.
            max_nodes: How many of its runs may go at once (1 to 100; default 1).
            idle_seconds_before_scaledown: Ignored.
            description: A description.
            ignored: The reference SDK's other arguments (network, admin user, identity,
                location...), ignored.

        Returns:
            The configuration to pass to :meth:`ComputeTarget.create`.
        """
        return AmlComputeProvisioningConfiguration(max_nodes=max_nodes, description=description)
