"""Talking to a cluster with the official `kubernetes` client: apply objects, watch a
Deployment's rollout, read its state, its pods' logs and problems, delete objects.

Objects are applied with server-side apply (field manager `mlstudio`, forced: the studio
owns these objects); a server that answers 404 to an apply of an object it does not have
gets a create instead. Responses are read as plain JSON (`_preload_content=False`), the
shape `kubectl get -o json` shows. Label selectors are also checked here on what a list
answers, so a server that ignores them cannot mix up services.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployments.runtimes.base import RuntimeError_
from deployments.runtimes.k8s.manifests import CONTAINER, FIELD_MANAGER

# (connect, read) seconds of every call: a cluster that does not answer fails the step.
TIMEOUT = (10, 30)
APPLY = "application/apply-patch+yaml"
# Waiting reasons a pod does not get out of by waiting.
FATAL_REASONS = {
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
}
# Reasons worth naming while a rollout waits (or when it fails).
PROBLEM_REASONS = FATAL_REASONS | {
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "OOMKilled",
    "Error",
    "Unschedulable",
}
CRASH_LOOP_RESTARTS = 3

# kind -> (API class, the suffix of its methods)
KINDS: dict[str, tuple[str, str]] = {
    "Secret": ("CoreV1Api", "secret"),
    "Service": ("CoreV1Api", "service"),
    "Deployment": ("AppsV1Api", "deployment"),
    "HorizontalPodAutoscaler": ("AutoscalingV2Api", "horizontal_pod_autoscaler"),
    "Ingress": ("NetworkingV1Api", "ingress"),
}


class ClusterError(RuntimeError_):
    """The cluster refused a call or did not answer; `status` is the HTTP status (0: no
    answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def _reason(exc: Exception) -> tuple[int, str]:
    """(status, a short readable reason) of a failed call: the server's Status message,
    never its details."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        message = ""
        try:
            body = json.loads(exc.body or "")
            message = str(body.get("message") or "") if isinstance(body, dict) else ""
        except ValueError:
            pass
        return int(exc.status or 0), (message or str(exc.reason or ""))[:300]
    return 0, type(exc).__name__


def _hint(status: int) -> str:
    if status in (401, 403):
        return (
            " The kubeconfig's user lacks the permission: see docs/deployments.md (the RBAC "
            "a kubernetes target needs)."
        )
    return ""


@dataclass
class Cluster:
    """One cluster (an ApiClient built from a target's kubeconfig) and one namespace."""

    api_client: Any
    namespace: str
    _apis: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a pool already gone
            self.api_client.close()

    def _api(self, class_name: str) -> Any:
        if class_name not in self._apis:
            from kubernetes import client

            self._apis[class_name] = getattr(client, class_name)(self.api_client)
        return self._apis[class_name]

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the API; the answer as JSON (None when empty). Failures become
        ClusterError naming `what` was being done."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            response = fn(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
        except ApiException as exc:
            status, reason = _reason(exc)
            raise ClusterError(f"{what}: {status} {reason}.{_hint(status)}", status) from None
        except (HTTPError, OSError) as exc:
            raise ClusterError(
                f"{what}: the cluster did not answer ({type(exc).__name__})."
            ) from None
        data = response.data
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode(errors="replace")

    def _method(self, kind: str, verb: str) -> Callable[..., Any]:
        class_name, suffix = KINDS[kind]
        return getattr(self._api(class_name), f"{verb}_namespaced_{suffix}")

    # --- Objects --------------------------------------------------------------------------

    def apply(self, manifest: dict) -> dict:
        """Create or update `manifest` (server-side apply), the object as the server has it."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        what = f"Applying {kind} {name} in namespace {self.namespace}"
        try:
            return self._call(
                what,
                self._method(kind, "patch"),
                name,
                self.namespace,
                manifest,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY,
            )
        except ClusterError as exc:
            if exc.status != 404:
                raise
        # A server without apply-creates (older ones, emulators): create it, and if it
        # appeared meanwhile, apply again.
        try:
            return self._call(what, self._method(kind, "create"), self.namespace, manifest)
        except ClusterError as exc:
            if exc.status != 409:
                raise
        return self._call(
            what,
            self._method(kind, "patch"),
            name,
            self.namespace,
            manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
        )

    def read(self, kind: str, name: str) -> dict | None:
        """The object, or None when there is none."""
        try:
            return self._call(
                f"Reading {kind} {name}", self._method(kind, "read"), name, self.namespace
            )
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, kind: str, name: str) -> bool:
        """Delete the object (its dependents in the background); False when there was none."""
        try:
            self._call(
                f"Deleting {kind} {name}",
                self._method(kind, "delete"),
                name,
                self.namespace,
                propagation_policy="Background",
            )
        except ClusterError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- Pods -----------------------------------------------------------------------------

    def pods(self, selector: dict[str, str]) -> list[dict]:
        """The pods matching `selector`, oldest first."""
        label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
        answer = self._call(
            "Listing pods",
            self._api("CoreV1Api").list_namespaced_pod,
            self.namespace,
            label_selector=label_selector,
        )
        items = (answer or {}).get("items") or []
        pods = [
            pod
            for pod in items
            if all(
                ((pod.get("metadata") or {}).get("labels") or {}).get(k) == v
                for k, v in selector.items()
            )
        ]
        return sorted(
            pods,
            key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]),
        )

    def pod_log(self, pod: str, tail_lines: int, previous: bool = False) -> str:
        text = self._call(
            f"Reading the log of pod {pod}",
            self._api("CoreV1Api").read_namespaced_pod_log,
            pod,
            self.namespace,
            container=CONTAINER,
            tail_lines=tail_lines,
            previous=previous,
        )
        if text is None:
            return ""
        return text if isinstance(text, str) else json.dumps(text)

    def warning_events(self, prefix: str, limit: int = 5) -> list[str]:
        """The newest Warning events of objects named `prefix…` (the service's Deployment,
        ReplicaSets, pods), as short lines."""
        try:
            answer = self._call(
                "Listing events",
                self._api("CoreV1Api").list_namespaced_event,
                self.namespace,
                field_selector="type=Warning",
            )
        except ClusterError:
            return []  # events are a courtesy; a role without them still deploys
        lines = []
        for event in (answer or {}).get("items") or []:
            involved = event.get("involvedObject") or {}
            if event.get("type") != "Warning" or not str(involved.get("name", "")).startswith(
                prefix
            ):
                continue
            stamp = event.get("lastTimestamp") or event.get("eventTime") or ""
            lines.append(
                (
                    stamp,
                    f"{involved.get('kind')} {involved.get('name')}: "
                    f"{event.get('reason')}: {str(event.get('message') or '')[:200]}",
                )
            )
        return [line for _, line in sorted(lines)[-limit:]]


# --- Reading a Deployment's rollout -----------------------------------------------------


@dataclass
class Rollout:
    """Where a Deployment's rollout stands (kubectl rollout status's reading)."""

    done: bool
    message: str
    desired: int
    available: int
    failed: str = ""


def rollout_of(deployment: dict) -> Rollout:
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return Rollout(False, "Waiting for the cluster to see the new spec", desired, available)
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return Rollout(
                False,
                "The rollout exceeded its progress deadline",
                desired,
                available,
                failed=str(condition.get("message") or "progress deadline exceeded")[:300],
            )
    if updated < desired:
        return Rollout(False, f"{updated} of {desired} new pods updated", desired, available)
    if replicas > updated:
        return Rollout(
            False, f"{replicas - updated} old pods are pending termination", desired, available
        )
    if available < updated:
        return Rollout(False, f"{available} of {updated} new pods available", desired, available)
    return Rollout(True, f"{available} of {desired} pods available", desired, available)


def pod_problems(pods: list[dict]) -> tuple[list[str], str]:
    """(readable problems of the pods, the fatal one if any: a rollout that cannot
    succeed by waiting)."""
    problems: list[str] = []
    fatal = ""
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                problems.append(
                    f"pod {name}: {condition.get('reason') or 'not scheduled'}: "
                    f"{str(condition.get('message') or '')[:200]}"
                )
        for container in status.get("containerStatuses") or []:
            state = container.get("state") or {}
            waiting = state.get("waiting") or {}
            reason = waiting.get("reason") or ""
            last = (container.get("lastState") or {}).get("terminated") or {}
            restarts = int(container.get("restartCount") or 0)
            if reason in PROBLEM_REASONS:
                line = f"pod {name}: {reason}"
                if waiting.get("message"):
                    line += f": {str(waiting['message'])[:200]}"
                if last.get("reason"):
                    line += f" (last exit: {last.get('reason')}, code {last.get('exitCode')})"
                problems.append(line)
                if reason in FATAL_REASONS or (
                    reason == "CrashLoopBackOff" and restarts >= CRASH_LOOP_RESTARTS
                ):
                    fatal = fatal or line
    return problems, fatal
