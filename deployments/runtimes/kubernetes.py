"""The `kubernetes` runtime (compute type `kubernetes`, like the reference's AKS): a web
service is a Secret, a Deployment, a Service, a HorizontalPodAutoscaler when autoscaling
and an Ingress when a host is known, on the cluster of a compute target of kind
`kubernetes` (deployments.runtimes.k8s says what each holds).

`deploy` renders every object, validates them all offline (kubernetes-validate, strict)
before sending any, applies them with the official client (server-side apply), deletes
the autoscaler or Ingress a changed configuration no longer wants, and watches the
rollout as `kubectl rollout status` does, reporting progress, until every wanted pod of
the new spec is available. It fails early on a pod that cannot start (a bad image name,
a crash loop, …) and after SERVICE_DEPLOY_TIMEOUT seconds, naming the pods' problems and
the cluster's warning events. An update that fails puts the previous Deployment spec back
(it kept serving meanwhile: maxUnavailable is 0).

The scoring URI: `http(s)://<ingress host>/score` with an Ingress; else the
LoadBalancer's address (`http://<ip or hostname>/score`) when the target's
`service_type` is LoadBalancer and the cluster gave one within LOAD_BALANCER_WAIT_S; else
the cluster-internal DNS name `http://<name>.<namespace>.svc.cluster.local/score`, which
answers from inside the cluster only.

What it keeps in `service.runtime_state["kubernetes"]`: the namespace and name (so `stop`
finds the objects even after the configuration changed) and the last Deployment that
rolled out healthy (what a failed update goes back to).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings

from deployments.models import WebService
from deployments.runtimes.base import Endpoint, Progress, Runtime, RuntimeError_
from deployments.runtimes.k8s import manifests
from deployments.runtimes.k8s.cluster import Cluster, ClusterError, pod_problems, rollout_of
from deployments.runtimes.k8s.target import api_client, namespace_of

if TYPE_CHECKING:
    from deployments.models import ComputeTarget, Image

STATE_KEY = "kubernetes"
# Seconds between two reads of a rollout (tests make it shorter).
POLL_S = 2.0
LOAD_BALANCER_WAIT_S = 60.0
# Kinds a service may have or not, depending on its configuration, deleted when not wanted.
OPTIONAL_KINDS = ("HorizontalPodAutoscaler", "Ingress")
# Deleted in this order: what routes to the pods first, the Secret they mount last.
ALL_KINDS = ("Ingress", "HorizontalPodAutoscaler", "Service", "Deployment", "Secret")


def _target(service: WebService) -> ComputeTarget:
    target = service.compute_target
    if target is None or target.kind != "kubernetes":
        raise RuntimeError_("The service has no compute target of kind kubernetes.")
    return target


def _state(service: WebService) -> dict[str, Any]:
    row = WebService.objects.filter(pk=service.pk).values_list("runtime_state", flat=True).first()
    source = row if row is not None else service.runtime_state
    return dict((source or {}).get(STATE_KEY) or {})


def _save_state(service: WebService, **values: Any) -> None:
    row = WebService.objects.filter(pk=service.pk).values_list("runtime_state", flat=True).first()
    state = dict(row or {})
    state[STATE_KEY] = {**(state.get(STATE_KEY) or {}), **values}
    WebService.objects.filter(pk=service.pk).update(runtime_state=state)
    service.runtime_state = state


def _where(service: WebService) -> tuple[str, str]:
    """(namespace, name) of the service's objects: as last applied, else as rendered now."""
    known = _state(service)
    if known.get("namespace") and known.get("name"):
        return known["namespace"], known["name"]
    return namespace_of(_target(service), service.config), manifests.base_name(service)


def _cluster(service: WebService, namespace: str) -> Cluster:
    return Cluster(api_client(_target(service)), namespace)


class KubernetesRuntime(Runtime):
    name = "kubernetes"

    # --- Deploy -----------------------------------------------------------------------------

    def deploy(self, service: WebService, image: Image, progress: Progress) -> Endpoint:
        target = _target(service)
        progress(0, "Rendering the Kubernetes objects")
        rendered = manifests.render(service, image, target)
        manifests.validate(rendered.manifests, rendered.kubernetes_version)
        kinds = ", ".join(m["kind"] for m in rendered.manifests)
        progress(1, f"{kinds} valid for Kubernetes {rendered.kubernetes_version}")
        previous = _state(service).get("healthy_deployment")
        cluster = Cluster(api_client(target), rendered.namespace)
        try:
            self._apply(cluster, service, rendered)
            progress(1, f"Applied to namespace {rendered.namespace}; watching the rollout")
            try:
                self._watch(cluster, rendered, progress)
            except RuntimeError_:
                if previous and previous.get("spec") != rendered.of_kind("Deployment")["spec"]:
                    self._roll_back(cluster, previous)
                raise
            progress(1, "Every pod of the new version is available")
            endpoint = self._endpoint(cluster, rendered, progress)
        finally:
            cluster.close()
        _save_state(service, healthy_deployment=rendered.of_kind("Deployment"))
        progress(1, f"Serving at {endpoint.scoring_uri}")
        return endpoint

    def _apply(self, cluster: Cluster, service: WebService, rendered: manifests.Rendered) -> None:
        old = _state(service)
        if old.get("namespace") and old.get("namespace") != rendered.namespace:
            # The namespace changed: the service moves, nothing stays behind in the old one.
            self._delete_all(
                Cluster(cluster.api_client, old["namespace"]), old.get("name") or rendered.name
            )
        _save_state(service, namespace=rendered.namespace, name=rendered.name)
        for manifest in rendered.manifests:
            cluster.apply(manifest)
        wanted = {m["kind"] for m in rendered.manifests}
        for kind in OPTIONAL_KINDS:
            if kind not in wanted:
                cluster.delete(kind, rendered.name)

    def _watch(self, cluster: Cluster, rendered: manifests.Rendered, progress: Progress) -> None:
        timeout = float(settings.SERVICE_DEPLOY_TIMEOUT)
        started = time.monotonic()
        phase, beat = "", 0.0
        problems: list[str] = []
        while True:
            deployment = cluster.read("Deployment", rendered.name)
            if deployment is None:
                raise RuntimeError_(f"Deployment {rendered.name} disappeared during its rollout.")
            rollout = rollout_of(deployment)
            if rollout.done:
                return
            pods = cluster.pods(rendered.selector)
            problems, fatal = pod_problems(pods)
            if rollout.failed or fatal:
                raise RuntimeError_(
                    self._failure(cluster, rendered, rollout.failed or fatal, problems, pods)
                )
            now = time.monotonic()
            message = rollout.message + (f" ({problems[0]})" if problems else "")
            # A progress call also beats the job's heart.
            if message != phase or now - beat > 5:
                progress(0, message[:300])
                phase, beat = message, now
            if now - started > timeout:
                raise RuntimeError_(
                    self._failure(
                        cluster,
                        rendered,
                        f"The rollout was not done after {int(timeout)} s: {rollout.message}",
                        problems,
                        pods,
                    )
                )
            time.sleep(POLL_S)

    def _failure(
        self,
        cluster: Cluster,
        rendered: manifests.Rendered,
        headline: str,
        problems: list[str],
        pods: list[dict],
    ) -> str:
        lines = [headline]
        lines += [p for p in problems if p != headline][:5]
        with contextlib.suppress(ClusterError):
            lines += cluster.warning_events(rendered.name)
        crashed = [
            pod["metadata"]["name"]
            for pod in pods
            for c in (pod.get("status") or {}).get("containerStatuses") or []
            if int(c.get("restartCount") or 0) > 0
        ]
        if crashed:
            try:
                log = cluster.pod_log(crashed[-1], 20, previous=True).strip()
            except ClusterError:
                log = ""
            if log:
                lines.append(f"The last lines of pod {crashed[-1]}'s previous run:\n{log}")
        return "\n".join(lines)

    def _roll_back(self, cluster: Cluster, previous: dict) -> None:
        """Put the last healthy Deployment spec back, so the cluster stops trying the new
        one; the old pods kept serving."""
        # The error being raised says what failed; this is a courtesy.
        with contextlib.suppress(ClusterError):
            cluster.apply(previous)

    def _endpoint(
        self, cluster: Cluster, rendered: manifests.Rendered, progress: Progress
    ) -> Endpoint:
        if rendered.ingress_host:
            scheme = "https" if rendered.ingress_tls else "http"
            return _endpoint(f"{scheme}://{rendered.ingress_host}")
        if rendered.service_type == "LoadBalancer":
            started = time.monotonic()
            while time.monotonic() - started < LOAD_BALANCER_WAIT_S:
                address = _load_balancer_address(cluster.read("Service", rendered.name))
                if address:
                    return _endpoint(f"http://{address}")
                progress(0, "Waiting for the load balancer's address")
                time.sleep(POLL_S)
        return _endpoint(f"http://{rendered.name}.{rendered.namespace}.svc.cluster.local")

    # --- Stop, state, logs --------------------------------------------------------------------

    def stop(self, service: WebService) -> None:
        namespace, name = _where(service)
        cluster = _cluster(service, namespace)
        try:
            self._delete_all(cluster, name)
        finally:
            cluster.close()

    def _delete_all(self, cluster: Cluster, name: str) -> None:
        for kind in ALL_KINDS:
            cluster.delete(kind, f"{name}-config" if kind == "Secret" else name)

    def state(self, service: WebService) -> str:
        namespace, name = _where(service)
        cluster = _cluster(service, namespace)
        try:
            deployment = cluster.read("Deployment", name)
        finally:
            cluster.close()
        return state_of(deployment)

    def logs(self, service: WebService, tail_lines: int = 5000) -> str:
        namespace, _ = _where(service)
        cluster = _cluster(service, namespace)
        try:
            pods = cluster.pods(manifests.selector_of(service))
            if not pods:
                return ""
            per_pod = max(1, tail_lines // len(pods))
            parts = []
            for pod in pods:
                pod_name = pod["metadata"]["name"]
                try:
                    text = cluster.pod_log(pod_name, per_pod)
                except ClusterError as exc:
                    text = f"(no log: {exc})\n"
                parts.append(f"=== pod {pod_name} ===\n{text}")
        finally:
            cluster.close()
        lines = "".join(p if p.endswith("\n") else p + "\n" for p in parts).splitlines()
        return "\n".join(lines[-tail_lines:]) + "\n"

    # --- Keys ---------------------------------------------------------------------------------

    def refresh_keys(self, service: WebService) -> None:
        """Apply the service's Secret again (a key regenerated, auth switched): the kubelet
        updates the mounted file within a minute and the server re-reads it, no restart."""
        namespace, _ = _where(service)
        cluster = _cluster(service, namespace)
        try:
            cluster.apply(manifests.secret_manifest(service, _target(service), namespace))
        finally:
            cluster.close()


def state_of(deployment: dict | None) -> str:
    """A service's state from its Deployment: Healthy when every wanted pod of the current
    spec is available, Transitioning while a rollout goes on with some serving, Unhealthy
    when none is available, Failed when there is no Deployment or its rollout failed."""
    if deployment is None:
        return WebService.State.FAILED
    rollout = rollout_of(deployment)
    if rollout.failed:
        return WebService.State.FAILED
    if rollout.done and rollout.available >= max(rollout.desired, 1):
        return WebService.State.HEALTHY
    if rollout.available > 0:
        return WebService.State.TRANSITIONING
    return WebService.State.UNHEALTHY


def _load_balancer_address(service: dict | None) -> str | None:
    for entry in (((service or {}).get("status") or {}).get("loadBalancer") or {}).get(
        "ingress"
    ) or []:
        address = entry.get("ip") or entry.get("hostname")
        if address:
            return str(address)
    return None


def _endpoint(base: str) -> Endpoint:
    return Endpoint(scoring_uri=f"{base}/score", swagger_uri=f"{base}/swagger.json")
