"""A Kubernetes cluster for the tests: `kmock`'s API-server emulator served over HTTP on
loopback (in a thread of its own, with its own event loop), which the official
`kubernetes` client talks to through a kubeconfig like any cluster's; and `Controllers`,
which play the cluster's controllers against it over the same HTTP API.

kmock's emulator keeps objects (create, merge-patch, delete, list, watch) and nothing
more. Two things a real API server does are added here (`ApiServer`): `metadata.generation`
counts spec changes of a Deployment, and new objects get a creationTimestamp and uid.
What the deployment controller, the scheduler and the kubelet do — make pods for a new
template, replace old ones (one surge pod at a time), report readiness in the status,
serve container logs — `Controllers` does, in one of three modes per Deployment:
`ready` (pods start and pass their probes), `hold` (nothing happens: a rollout waits)
and `crash` (the container crash-loops).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import logging
import threading
import time
import uuid
from typing import Any

import kmock
import yaml
from kmock._internal import dicts

DEPLOYMENTS = kmock.resource("apps/v1/deployments")
# What a cluster serves (so lists of kinds that have no object yet answer []).
RESOURCES = (
    "v1/pods",
    "v1/events",
    "v1/secrets",
    "v1/services",
    "apps/v1/deployments",
    "autoscaling/v2/horizontalpodautoscalers",
    "networking.k8s.io/v1/ingresses",
)
TOKEN = "emulator-token-3f9a1c"


# One line per request of the controllers' polling would drown a failure's output.
logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with an API server's bookkeeping of generations and identities."""

    async def _handle(self, request: Any) -> Any:
        data = request.data
        if request.resource is not None and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            if request.action == kmock.action.CREATE:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", _now())
                if request.resource == DEPLOYMENTS:
                    meta["generation"] = 1
            elif (
                request.action == kmock.action.UPDATE
                and request.resource == DEPLOYMENTS
                and request.subresource is None
            ):
                key = (request.resource, request.namespace, request.name)
                if key in self.objects and not self.objects[key].deleted:
                    current = copy.deepcopy(self.objects[key].raw)
                    merged = dicts.patch_dict(copy.deepcopy(current), data)
                    generation = int(current.get("metadata", {}).get("generation") or 1)
                    if merged.get("spec") != current.get("spec"):
                        generation += 1
                    meta["generation"] = generation
        return await super()._handle(request)


class Emulator:
    """The API server on a loopback port, in a thread; `kubeconfig` points at it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._run(self._start())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(15)

    async def _start(self) -> None:
        self.handler = ApiServer()
        await self.handler.__aenter__()
        self.server = kmock.Server(self.handler)
        await self.server.__aenter__()
        for resource in RESOURCES:
            self.handler.resources[resource] = {}
        # The kubelet's part of the API: a container's log.
        self.handler[kmock.resource("v1/pods"), kmock.subresource("log")] << self._log

    @staticmethod
    def _log(request: Any) -> str:
        previous = request.params.get("previous") == "true"
        if previous:
            return f"{request.name}: Traceback (most recent call last)\nValueError: no model\n"
        return f"{request.name}: Loading the model\n{request.name}: Listening on 0.0.0.0:5001\n"

    @property
    def url(self) -> str:
        return str(self.server.url).rstrip("/")

    def kubeconfig(self, namespace: str | None = None) -> str:
        context: dict[str, Any] = {"cluster": "emulator", "user": "deployer"}
        if namespace:
            context["namespace"] = namespace
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                "users": [{"name": "deployer", "user": {"token": TOKEN}}],
                "contexts": [{"name": "test", "context": context}],
                "current-context": "test",
            }
        )

    def objects(self, plural: str, namespace: str) -> dict[str, dict]:
        """The live objects of a resource in a namespace, by name (copies)."""
        out = {}
        for (resource, ns, name), obj in list(self.handler.objects.items()):
            if resource.plural == plural and ns == namespace and not obj.deleted:
                out[name] = json.loads(json.dumps(obj.raw))
        return out

    def requests_of(self, method: str) -> list[Any]:
        return [r for r in self.handler.requests if str(r.method.value) == method.upper()]

    def close(self) -> None:
        async def stop() -> None:
            await self.server.__aexit__(None, None, None)
            await self.handler.__aexit__(None, None, None)

        self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Controllers(threading.Thread):
    """The cluster's controllers, over HTTP with the official client: for a Deployment
    whose spec changed (observedGeneration behind generation), make its pods and report
    its status, as `modes[name]` says (`ready` by default). A rolling update first adds
    one new pod beside the old ones (maxSurge 1, maxUnavailable 0), holds that status
    `surge_s`, then removes the old pods. `statuses` records every status reported."""

    def __init__(self, kubeconfig: str) -> None:
        super().__init__(daemon=True)
        from kubernetes import client, config

        api = config.new_client_from_config_dict(yaml.safe_load(kubeconfig), persist_config=False)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.modes: dict[str, str] = {}
        self.surge_s = 0.3
        self.statuses: list[tuple[float, str, dict]] = []
        self.halt = threading.Event()

    def _json(self, response: Any) -> Any:
        return json.loads(response.data)

    def run(self) -> None:
        while not self.halt.wait(0.03):
            try:
                deployments = self._json(
                    self.apps.list_deployment_for_all_namespaces(_preload_content=False)
                )["items"]
            except Exception:  # noqa: S112  (the emulator is going away)
                continue
            for deployment in deployments:
                meta, status = deployment["metadata"], deployment.get("status") or {}
                if int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 1):
                    continue
                mode = self.modes.get(meta["name"], "ready")
                if mode != "hold":
                    self._roll(deployment, mode)

    def _set_status(self, deployment: dict, **status: int) -> None:
        meta = deployment["metadata"]
        body = {"status": {"observedGeneration": int(meta.get("generation") or 1), **status}}
        self.apps.patch_namespaced_deployment_status(
            meta["name"], meta["namespace"], body, _preload_content=False
        )
        self.statuses.append((time.monotonic(), meta["name"], body["status"]))

    def _pods(self, namespace: str, owner: str) -> list[dict]:
        items = self._json(self.core.list_namespaced_pod(namespace, _preload_content=False))
        return [p for p in items["items"] if p["metadata"]["name"].startswith(f"{owner}-g")]

    def _roll(self, deployment: dict, mode: str) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        name, namespace = meta["name"], meta["namespace"]
        generation = int(meta.get("generation") or 1)
        desired = int(spec.get("replicas") or 1)
        old = [
            p
            for p in self._pods(namespace, name)
            if not p["metadata"]["name"].startswith(f"{name}-g{generation}-")
        ]
        template = spec["template"]
        container = template["spec"]["containers"][0]["name"]
        if mode == "ready":
            state = {"running": {"startedAt": _now()}}
            extra: dict[str, Any] = {"ready": True, "restartCount": 0}
        else:
            state = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}
            extra = {
                "ready": False,
                "restartCount": 3,
                "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
            }
        new_pods = []
        for i in range(desired):
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-g{generation}-{i}",
                    "namespace": namespace,
                    "labels": template["metadata"]["labels"],
                },
                "spec": copy.deepcopy(template["spec"]),
            }
            self.core.create_namespaced_pod(namespace, pod, _preload_content=False)
            new_pods.append(pod)
            status = {
                "phase": "Running" if mode == "ready" else "Pending",
                "conditions": [{"type": "Ready", "status": "True" if mode == "ready" else "False"}],
                "containerStatuses": [{"name": container, "image": "x", "state": state, **extra}],
            }
            self.core.patch_namespaced_pod_status(
                pod["metadata"]["name"], namespace, {"status": status}, _preload_content=False
            )
            if old and i == 0:
                # One surge pod beside the old ones; nothing old goes before it is ready.
                self._set_status(
                    deployment,
                    replicas=len(old) + 1,
                    updatedReplicas=1,
                    readyReplicas=len(old) + (mode == "ready"),
                    availableReplicas=len(old) + (mode == "ready"),
                )
                time.sleep(self.surge_s)
        if mode != "ready":
            if not old:
                self._set_status(deployment, replicas=desired, updatedReplicas=desired)
            return
        for pod in old:
            self.core.delete_namespaced_pod(
                pod["metadata"]["name"], namespace, _preload_content=False
            )
        self._set_status(
            deployment,
            replicas=desired,
            updatedReplicas=desired,
            readyReplicas=desired,
            availableReplicas=desired,
        )

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
