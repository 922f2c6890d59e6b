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

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
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
        if self._details.get("kind") == "kubernetes" and not isinstance(self, AksCompute):
            # Known only once fetched: a cluster target is an AksCompute, as in the
            # reference SDK.
            self.__class__ = AksCompute

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
    def attach(
        workspace: WorkspaceParent, name: str, attach_configuration: AksAttachConfiguration
    ) -> AksCompute:
        """Attach a Kubernetes cluster as a compute target (the reference SDK's call), where
        web services of ``AksWebservice.deploy_configuration`` run.

        Args:
            workspace: The workspace.
            name: The target's name (2 to 24 letters, digits and hyphens).
            attach_configuration: From :meth:`AksCompute.attach_configuration`.

        Returns:
            The new target. Its kubeconfig is stored encrypted and never shown again.

        Raises:
            ConflictError: a target of that name exists.
            ValidationError: the kubeconfig cannot be used (a plugin, a file path, no
                context …) or a setting is wrong.
        """
        config = attach_configuration
        body: dict[str, Any] = {
            "name": name,
            "kind": "kubernetes",
            "kubeconfig": config.kubeconfig,
            "config": config.settings(),
        }
        if config.description is not None:
            body["description"] = config.description
        details = workspace._client.post(f"{workspace._path}/computes", body)
        return AksCompute(workspace, details["name"], _details=details)

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


def _read_kubeconfig(kubeconfig: str | os.PathLike | None) -> str:
    """The kubeconfig's text: given as text, as a path, or (None) the file kubectl uses
    ($KUBECONFIG, else ~/.kube/config)."""
    if kubeconfig is None:
        kubeconfig = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
            Path.home() / ".kube" / "config"
        )
    if isinstance(kubeconfig, os.PathLike) or (
        "\n" not in str(kubeconfig) and Path(str(kubeconfig)).expanduser().is_file()
    ):
        return Path(kubeconfig).expanduser().read_text()
    return str(kubeconfig)


@dataclass
class AksAttachConfiguration:
    """What :meth:`ComputeTarget.attach` attaches: a cluster's kubeconfig and where and how
    services go on it. Made by :meth:`AksCompute.attach_configuration`."""

    kubeconfig: str
    namespace: str | None = None
    context: str | None = None
    service_type: str | None = None
    ingress_class: str | None = None
    ingress_domain: str | None = None
    ingress_tls_secret: str | None = None
    image_pull_secret: str | None = None
    studio_url: str | None = None
    kubernetes_version: str | None = None
    description: str | None = None

    def settings(self) -> dict[str, str]:
        """The target's settings (everything but the kubeconfig and description)."""
        return {
            key: value
            for key, value in asdict(self).items()
            if key not in ("kubeconfig", "description") and value is not None
        }

    def __repr__(self) -> str:  # the kubeconfig holds credentials
        return f"AksAttachConfiguration({self.settings()})"


class AksCompute(ComputeTarget):
    """A Kubernetes cluster attached as a compute target (the reference SDK's AKS class):
    web services deployed with ``AksWebservice.deploy_configuration`` and
    ``deployment_target=`` this target run there as a Deployment, a Service, an autoscaler
    and an Ingress. ``ComputeTarget(ws, name)`` of such a target answers an AksCompute.

    Example::

        from mlstudio.compute import AksCompute, ComputeTarget

        config = AksCompute.attach_configuration(kubeconfig="~/.kube/config",
                                                 namespace="ml-services")
        aks = ComputeTarget.attach(ws, "aks-prod", config)
    """

    @staticmethod
    def attach_configuration(
        kubeconfig: str | os.PathLike | None = None,
        namespace: str | None = None,
        context: str | None = None,
        service_type: str | None = None,
        ingress_class: str | None = None,
        ingress_domain: str | None = None,
        ingress_tls_secret: str | None = None,
        image_pull_secret: str | None = None,
        studio_url: str | None = None,
        kubernetes_version: str | None = None,
        description: str | None = None,
        **ignored: Any,
    ) -> AksAttachConfiguration:
        """The configuration of a cluster to attach.

        Args:
            kubeconfig: The kubeconfig: its text, a path to it, or None for the file
                kubectl uses ($KUBECONFIG, else ~/.kube/config). Credentials must be inline
                (a token or client certificate data; no ``exec`` plugins, no file paths).
            namespace: Where services go (it must exist); default: the context's namespace.
            context: The kubeconfig context; default: its current-context.
            service_type: ``ClusterIP`` (default) or ``LoadBalancer``.
            ingress_class: The IngressClass of each service's Ingress.
            ingress_domain: Services answer at ``<service>-<workspace id>.<domain>``.
            ingress_tls_secret: A TLS Secret for those hosts (https scoring URIs).
            image_pull_secret: A docker-registry Secret to pull images with.
            studio_url: The studio's URL as pods reach it (telemetry).
            kubernetes_version: The version manifests are validated against (1.30-1.37).
            description: A description.
            ignored: The reference SDK's arguments (resource_group, cluster_name,
                resource_id, cluster_purpose), ignored.

        Returns:
            The configuration to pass to :meth:`ComputeTarget.attach`.
        """
        return AksAttachConfiguration(
            kubeconfig=_read_kubeconfig(kubeconfig),
            namespace=namespace,
            context=context,
            service_type=service_type,
            ingress_class=ingress_class,
            ingress_domain=ingress_domain,
            ingress_tls_secret=ingress_tls_secret,
            image_pull_secret=image_pull_secret,
            studio_url=studio_url,
            kubernetes_version=kubernetes_version,
            description=description,
        )

    @property
    def namespace(self) -> str | None:
        """The namespace its services go to (None: the kubeconfig context's)."""
        return (self._details.get("config") or {}).get("namespace")

    @property
    def cluster_settings(self) -> dict[str, Any]:
        """Its settings (namespace, ingress, registry …); the kubeconfig is never shown."""
        return dict(self._details.get("config") or {})

    def update(  # type: ignore[override]
        self,
        description: str | None = None,
        attach_configuration: AksAttachConfiguration | None = None,
        max_nodes: int | None = None,
    ) -> None:
        """Replace its kubeconfig and settings (from :meth:`attach_configuration`) or its
        description; services use them from their next deployment on."""
        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = description
        if max_nodes is not None:
            body["max_nodes"] = max_nodes
        if attach_configuration is not None:
            body["kubeconfig"] = attach_configuration.kubeconfig
            body["config"] = attach_configuration.settings()
        self._details = self.workspace._client.patch(
            self._path(), body, not_found=ComputeTargetNotFound
        )

    def __repr__(self) -> str:
        return f"AksCompute(Name: {self.name}, Namespace: {self.namespace or 'default'})"
