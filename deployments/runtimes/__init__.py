"""Where web services run: the `local` runtime (a supervised process, or a container
when a Docker engine is reachable) and the `kubernetes` one. base.Runtime is the
interface the deployment services call."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployments.models import WebService
    from deployments.runtimes.base import Runtime


def runtime_for(service: WebService) -> Runtime:
    """The runtime a service's compute type runs on: `local` and `aci` on this machine's
    service host, `kubernetes` on its compute target's cluster."""
    if service.compute_type == "kubernetes":
        # Imported here: the Kubernetes client is heavy, and only these services need it.
        from deployments.runtimes.kubernetes import KubernetesRuntime

        return KubernetesRuntime()
    from deployments.runtimes.local import LocalRuntime

    return LocalRuntime()
