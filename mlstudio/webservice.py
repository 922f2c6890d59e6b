"""Web services: an image deployed behind keys, scored over HTTP.

The reference SDK's deployment calls work as they are, only the imports changed::

    from mlstudio.webservice import AciWebservice, Webservice

    config = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1,
                                                tags={"method": "sklearn"},
                                                description="Diabetes model")
    service = Webservice.deploy_from_image(workspace=ws, name="diabetes-model-1",
                                           image=image, deployment_config=config)
    service.wait_for_deployment(show_output=True)
    service.run(json.dumps({"data": [[0.03, 0.05, ...]]}))

Targets: ``AciWebservice`` and ``LocalWebservice`` run on the studio's local runtime (a
supervised scoring-server process, or a container where a Docker engine is present);
``AksWebservice`` runs on a compute target of kind Kubernetes (``deployment_target=``).
The studio does the work in a deployment job; ``wait_for_deployment`` follows it.

Scoring goes straight to the service's ``scoring_uri`` with its primary key (``run``);
managing it (state, keys, logs, update, delete) goes through the studio's /api/v1.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TextIO

import requests

from mlstudio._client.http import HttpClient, segment
from mlstudio._client.parents import WorkspaceParent
from mlstudio.exceptions import (
    MLStudioError,
    UserErrorException,
    WebserviceException,
    WebserviceNotFound,
)
from mlstudio.image import Image

# The studio's compute types and the reference's names for them (service.compute_type).
COMPUTE_TYPE_NAMES = {"aci": "ACI", "kubernetes": "AKS", "local": "Local"}
_COMPUTE_TYPES = {
    **{name.lower(): api for api, name in COMPUTE_TYPE_NAMES.items()},
    **{api: api for api in COMPUTE_TYPE_NAMES},
}
TERMINAL_JOB = frozenset({"succeeded", "failed"})
# Seconds between polls while a deployment is in progress.
POLL_INTERVAL = 1.0
DELETE_TIMEOUT = 300.0
# Scoring calls go to the service itself: allow a slow model, not a hung socket.
SCORING_TIMEOUT = 300.0
KEY_NAMES = ("Primary", "Secondary")


def _compute_type(value: str) -> str:
    """The studio's compute type ("aci", "kubernetes", "local") for a name either side
    uses ("ACI", "AKS", "Local", "kubernetes", ...)."""
    api = _COMPUTE_TYPES.get(str(value).lower())
    if api is None:
        raise UserErrorException(
            f"Unknown compute type {value!r}: use one of ACI, AKS (kubernetes) or Local."
        )
    return api


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and (isinstance(value, bool) or not value > 0):
        raise WebserviceException(f"Invalid configuration, {name} must be greater than zero.")


def _check_int_range(name: str, value: int | None, low: int, high: int | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise WebserviceException(f"Invalid configuration, {name} must be an integer >= {low}.")
    if high is not None and value > high:
        raise WebserviceException(f"Invalid configuration, {name} must be at most {high}.")


def _check_mapping(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise WebserviceException(f"Invalid configuration, {name} must be a dict.")


# --- Deployment configurations ---------------------------------------------------------------


class WebserviceDeploymentConfiguration:
    """What a web service is deployed with; made by a class's ``deploy_configuration``.

    Attributes:
        compute_type: The studio's compute type: ``aci``, ``kubernetes`` or ``local``.
        config: The resources and scaling settings sent to the studio (only those given).
        tags, properties, description, auth_enabled: The service's own metadata.
    """

    compute_type: ClassVar[str] = ""
    _webservice_type: ClassVar[type[Webservice]]

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        auth_enabled: bool | None = True,
    ) -> None:
        self.config = {k: v for k, v in (config or {}).items() if v is not None}
        _check_mapping("tags", tags)
        _check_mapping("properties", properties)
        self.tags = dict(tags) if tags else None
        self.properties = dict(properties) if properties else None
        self.description = description
        self.auth_enabled = auth_enabled
        self.validate_configuration()

    def validate_configuration(self) -> None:
        """Check the values here, before anything is sent.

        Raises:
            WebserviceException: a value is out of range or of the wrong type.
        """
        _check_mapping("tags", self.tags)
        _check_mapping("properties", self.properties)
        _check_positive("cpu_cores", self.config.get("cpu_cores"))
        _check_positive("memory_gb", self.config.get("memory_gb"))

    def to_body(self) -> dict[str, Any]:
        """The body of ``POST services`` for this configuration (without name and image)."""
        body: dict[str, Any] = {"compute_type": self.compute_type, "config": dict(self.config)}
        for key in ("tags", "properties", "description", "auth_enabled"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body

    def print_deploy_configuration(self, file: TextIO | None = None) -> None:
        """Print the configuration (the reference SDK's method)."""
        print(json.dumps(self.to_body(), indent=2, sort_keys=True), file=file or sys.stdout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_body()!r})"


class AciServiceDeploymentConfiguration(WebserviceDeploymentConfiguration):
    """An ``AciWebservice`` configuration: CPU and memory limits of the one instance."""

    compute_type = "aci"


class AksServiceDeploymentConfiguration(WebserviceDeploymentConfiguration):
    """An ``AksWebservice`` configuration: replicas, autoscaling and resources per pod."""

    compute_type = "kubernetes"

    def validate_configuration(self) -> None:
        super().validate_configuration()
        config = self.config
        _check_int_range("autoscale_min_replicas", config.get("autoscale_min_replicas"), 1)
        _check_int_range("autoscale_max_replicas", config.get("autoscale_max_replicas"), 1)
        _check_int_range("autoscale_refresh_seconds", config.get("autoscale_refresh_seconds"), 1)
        _check_int_range(
            "autoscale_target_utilization", config.get("autoscale_target_utilization"), 1, 100
        )
        _check_int_range("num_replicas", config.get("num_replicas"), 1)
        low, high = config.get("autoscale_min_replicas"), config.get("autoscale_max_replicas")
        if low is not None and high is not None and low > high:
            raise WebserviceException(
                "Invalid configuration, autoscale_min_replicas cannot be greater than "
                "autoscale_max_replicas."
            )
        if config.get("autoscale_enabled") and config.get("num_replicas") is not None:
            raise WebserviceException(
                "Invalid configuration, autoscale enabled and num_replicas provided: "
                "num_replicas is for a service without autoscaling."
            )


class LocalWebserviceDeploymentConfiguration(WebserviceDeploymentConfiguration):
    """A ``LocalWebservice`` configuration: the port to serve on (free one if None)."""

    compute_type = "local"

    def validate_configuration(self) -> None:
        super().validate_configuration()
        _check_int_range("port", self.config.get("port"), 1, 65535)


# --- Web services ----------------------------------------------------------------------------


class Webservice:
    """A web service of a workspace.

    ``Webservice(ws, name)`` looks it up and answers an instance of its kind's class
    (``AciWebservice``, ``AksWebservice`` or ``LocalWebservice``), as the reference does.

    Args:
        workspace: The workspace.
        name: The service's name.

    Raises:
        WebserviceNotFound: there is none of that name (a WebserviceException).
        WebserviceException: the class asked for is not the service's kind.
    """

    _compute_type: ClassVar[str | None] = None
    _by_type: ClassVar[dict[str, type[Webservice]]] = {}

    def __new__(
        cls, workspace: WorkspaceParent, name: str, _details: dict[str, Any] | None = None
    ) -> Webservice:
        details = _details if _details is not None else _fetch(workspace, name)
        kind = cls._by_type.get(details.get("compute_type", ""), Webservice)
        if cls is not Webservice and kind is not cls:
            kind_name = COMPUTE_TYPE_NAMES.get(details.get("compute_type", ""), "unknown")
            raise WebserviceException(
                f"The service {name!r} is of type {kind_name}, not {cls.__name__}: use "
                "Webservice(ws, name)."
            )
        service = super().__new__(kind)
        service._details = details
        return service

    def __init__(
        self, workspace: WorkspaceParent, name: str, _details: dict[str, Any] | None = None
    ) -> None:
        self.workspace = workspace
        self._details: dict[str, Any] = _details if _details is not None else self._details
        self._name = self._details.get("name", name)
        self._keys: tuple[str, str] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._compute_type:
            Webservice._by_type[cls._compute_type] = cls

    @property
    def _client(self) -> HttpClient:
        return self.workspace._client

    def _path(self, *parts: str) -> str:
        return "/".join([_services_path(self.workspace), segment(self._name), *parts])

    # --- Deploying, listing -----------------------------------------------------------------

    @staticmethod
    def deploy_from_image(
        workspace: WorkspaceParent,
        name: str,
        image: Image | str,
        deployment_config: WebserviceDeploymentConfiguration | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
    ) -> Webservice:
        """Deploy an image as a web service; returns at once, the deployment going on
        (follow it with :meth:`wait_for_deployment`).

        Args:
            workspace: The workspace.
            name: 3 to 32 lowercase letters, digits and dashes, starting with a letter
                and not ending with a dash; unique in the workspace.
            image: An :class:`~mlstudio.image.Image` (or ``"name:version"``; ``"name"``
                for its newest version) that built successfully.
            deployment_config: From ``AciWebservice``, ``AksWebservice`` or
                ``LocalWebservice.deploy_configuration`` (default: ACI's defaults).
            deployment_target: For ``AksWebservice`` a compute target of kind
                Kubernetes (a ``ComputeTarget`` or its name); None otherwise.
            overwrite: Update the service of that name with this image and
                configuration when it exists, instead of failing.

        Returns:
            The service, Transitioning.

        Raises:
            ConflictError: a service of that name exists (and not ``overwrite``).
            ValidationError: a bad name or configuration, an image that is not built.
            AuthorizationError: deploying needs the contributor role.
        """
        config = deployment_config or AciWebservice.deploy_configuration()
        if not isinstance(config, WebserviceDeploymentConfiguration):
            raise UserErrorException(
                "deployment_config must come from AciWebservice, AksWebservice or "
                "LocalWebservice.deploy_configuration()."
            )
        target = _target_name(deployment_target)
        if config.compute_type == "kubernetes" and target is None:
            raise UserErrorException(
                "An AksWebservice needs deployment_target=: a compute target of kind Kubernetes."
            )
        if config.compute_type != "kubernetes" and target is not None:
            raise UserErrorException(
                "deployment_target is for AksWebservice only: ACI and local services run "
                "on the studio's local runtime."
            )
        body = {"name": name, "image": _image_ref(image), **config.to_body()}
        if target is not None:
            body["compute_target"] = target
        client = workspace._client
        if overwrite:
            try:
                existing = Webservice(workspace, name)
            except WebserviceNotFound:
                existing = None
            if existing is not None:
                existing._patch({k: v for k, v in body.items() if k not in ("name",)})
                return existing
        with _conflicts():
            details = client.post(_services_path(workspace), body)
        return Webservice(workspace, details["name"], _details=details)

    @staticmethod
    def list(
        workspace: WorkspaceParent,
        image_name: str | None = None,
        image_id: str | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
        tags: Iterable[str | list[str] | tuple[str, str]] | None = None,
        properties: Iterable[str | list[str] | tuple[str, str]] | None = None,
        compute_type: str | None = None,
    ) -> list[Webservice]:
        """The workspace's web services by name, filtered.

        Args:
            workspace: The workspace.
            image_name: Only services of images of this name.
            image_id: Only services of this image (``name:version``).
            model_name: Only services of images of this registered model.
            model_id: Only services of this model version (``name:version``).
            tags: Only services with each of these tags: a key, or a ``[key, value]`` pair.
            properties: The same for properties.
            compute_type: ``ACI``, ``AKS`` or ``Local`` (the studio's names work too).
        """
        params: dict[str, Any] = {}
        if compute_type:
            params["compute_type"] = _compute_type(compute_type)
        if image_name:
            params["image_name"] = image_name
        if image_id:
            params["image"] = image_id
        answer = workspace._client.get(_services_path(workspace), params=params)
        services = []
        for details in answer["services"]:
            if not _matches(details, model_name, model_id, tags, properties):
                continue
            services.append(Webservice(workspace, details["name"], _details=details))
        return services

    @staticmethod
    def deserialize(workspace: WorkspaceParent, webservice_payload: dict[str, Any]) -> Webservice:
        """The service a :meth:`serialize` dict names, read again from the studio."""
        return Webservice(workspace, webservice_payload["name"])

    # --- What it is -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def state(self) -> str:
        """Transitioning, Healthy, Unhealthy, Failed, Deleting or Stopped, as last read
        (:meth:`update_deployment_state` reads it again)."""
        return str(self._details.get("state") or "")

    @property
    def compute_type(self) -> str:
        """``ACI``, ``AKS`` or ``Local``, as the reference names them."""
        api = self._details.get("compute_type", "")
        return COMPUTE_TYPE_NAMES.get(api, api)

    @property
    def scoring_uri(self) -> str | None:
        """Where to POST scoring requests; None until the service was first healthy."""
        return self._details.get("scoring_uri") or None

    @property
    def swagger_uri(self) -> str | None:
        """The service's OpenAPI document (from the model's signature); None until healthy."""
        return self._details.get("swagger_uri") or None

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._details.get("tags") or {})

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._details.get("properties") or {})

    @property
    def description(self) -> str:
        return self._details.get("description") or ""

    @property
    def auth_enabled(self) -> bool:
        """Whether scoring needs a key (or a token)."""
        return bool(self._details.get("auth_enabled"))

    @property
    def error(self) -> str | None:
        """Why the last deployment failed, if it did."""
        return self._details.get("error") or None

    @property
    def image_id(self) -> str:
        """The deployed image as ``name:version``."""
        return str(self._details.get("image") or "")

    @property
    def image(self) -> Image:
        """The deployed :class:`~mlstudio.image.Image`."""
        image = self._details.get("image_name"), self._details.get("image_version")
        return Image(self.workspace, image[0], image[1])

    @property
    def compute_target(self) -> str | None:
        """The name of the compute target an AKS service runs on."""
        return self._details.get("compute_target")

    @property
    def deployment_config(self) -> dict[str, Any]:
        """The resources and scaling settings it was deployed with."""
        return dict(self._details.get("config") or {})

    @property
    def created_by(self) -> str | None:
        return self._details.get("created_by")

    @property
    def created_time(self) -> datetime | None:
        return _time(self._details.get("created_at"))

    @property
    def updated_time(self) -> datetime | None:
        return _time(self._details.get("updated_at"))

    @property
    def deployment(self) -> dict[str, Any] | None:
        """The latest deployment job: operation, status, phase, percent, error, times."""
        job = self._details.get("deployment")
        return dict(job) if job else None

    def update_deployment_state(self) -> None:
        """Read the service again from the studio (state, URIs, latest deployment)."""
        self._details = _fetch(self.workspace, self._name)

    def serialize(self) -> dict[str, Any]:
        """The service as a dict (the reference's camelCase keys)."""
        return {
            "name": self.name,
            "description": self.description,
            "tags": self.tags,
            "properties": self.properties,
            "state": self.state,
            "createdTime": self._details.get("created_at"),
            "updatedTime": self._details.get("updated_at"),
            "error": self.error,
            "computeType": self.compute_type,
            "computeTarget": self.compute_target,
            "workspaceName": self.workspace.name,
            "imageId": self.image_id,
            "scoringUri": self.scoring_uri,
            "swaggerUri": self.swagger_uri,
            "authEnabled": self.auth_enabled,
            "deploymentConfig": self.deployment_config,
            "createdBy": self.created_by,
        }

    # --- Following a deployment -------------------------------------------------------------

    def wait_for_deployment(
        self, show_output: bool = False, timeout_sec: float | None = None
    ) -> None:
        """Wait until the latest create or update has ended: the service Healthy, or a
        failure.

        Args:
            show_output: Print the deployment's phases as they change, then its end.
            timeout_sec: Give up after this many seconds (None: as long as it takes).

        Raises:
            WebserviceException: the deployment ended Failed or Unhealthy (the message
                holds the studio's error and the tail of the logs, ``logs`` all of it),
                or the timeout passed first.
        """
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        printed: tuple[str, str] | None = None
        while True:
            job = self._details.get("deployment") or {}
            seen = (self.state, job.get("phase") or job.get("status") or "")
            if show_output and seen != printed:
                stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                print(f"{stamp} {self.state}: {seen[1]}".rstrip(": "), flush=True)
                printed = seen
            if self._deployment_ended(job):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise WebserviceException(
                    f"The service {self.name!r} is still {self.state} after {timeout_sec}s "
                    f"({seen[1] or 'no phase reported'}); call wait_for_deployment() again "
                    "to keep waiting."
                )
            _pause(POLL_INTERVAL)
            self.update_deployment_state()
        operation = job.get("operation") or "deployment"
        if self.state == "Healthy" and job.get("status", "succeeded") == "succeeded":
            if show_output:
                print(
                    f"{self.compute_type} service {operation} operation finished, "
                    'operation "Succeeded"',
                    flush=True,
                )
            return
        self._raise_failed(operation)

    def _deployment_ended(self, job: dict[str, Any]) -> bool:
        if job and job.get("status") not in TERMINAL_JOB:
            return False
        return self.state != "Transitioning"

    def _raise_failed(self, operation: str) -> None:
        try:
            logs = self.get_logs(num_lines=50)
        except MLStudioError:
            logs = None
        message = (
            "Service deployment polling reached non-successful terminal state, current "
            f"service state: {self.state}\n"
            f"Operation: {operation}\n"
            f"Error: {self.error or 'no error reported'}\n"
            "More information can be found using '.get_logs()'"
        )
        if logs:
            message += "\nLogs (last lines):\n" + logs.rstrip()
        raise WebserviceException(message, logs=logs)

    # --- Scoring ----------------------------------------------------------------------------

    def run(self, input_data: str | dict[str, Any] | list[Any]) -> Any:
        """Score: POST `input_data` to the scoring URI with the primary key.

        Args:
            input_data: A JSON string, or a dict/list turned into one:
                ``{"data": [[...]]}``, or MLflow's ``dataframe_split``, ``dataframe_records``,
                ``instances``, ``inputs``.

        Returns:
            The service's answer, parsed (the predictions).

        Raises:
            WebserviceException: the service is not serving yet, or answered an error
                (its message and ``status_code`` on the exception).
        """
        if not self.scoring_uri:
            self.update_deployment_state()
        if not self.scoring_uri:
            raise WebserviceException(
                f"The service {self.name!r} has no scoring URI yet (state {self.state}); "
                "wait_for_deployment() first."
            )
        body = input_data if isinstance(input_data, str | bytes) else json.dumps(input_data)
        headers = {"Content-Type": "application/json"}
        if self.auth_enabled:
            headers["Authorization"] = f"Bearer {self._primary_key()}"
        try:
            response = requests.post(
                self.scoring_uri, data=body, headers=headers, timeout=SCORING_TIMEOUT
            )
        except requests.RequestException as exc:
            raise WebserviceException(
                f"Cannot reach the service at {self.scoring_uri}: {exc}"
            ) from exc
        if response.status_code == 401 and self.auth_enabled and self._keys is not None:
            # The keys were regenerated since they were read: read them and try once more.
            self._keys = None
            headers["Authorization"] = f"Bearer {self._primary_key()}"
            response = requests.post(
                self.scoring_uri, data=body, headers=headers, timeout=SCORING_TIMEOUT
            )
        if response.status_code >= 400:
            raise WebserviceException(
                f"The service answered {response.status_code}: {_scoring_error(response)}",
                error_code=_scoring_error_code(response),
                status_code=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            return response.text

    def _primary_key(self) -> str:
        if self._keys is None:
            self._keys = self.get_keys()
        return self._keys[0]

    # --- Keys, tokens, logs -----------------------------------------------------------------

    def get_keys(self) -> tuple[str, str]:
        """The service's (primary, secondary) keys.

        Raises:
            AuthorizationError: seeing keys needs the contributor role.
        """
        keys = self._client.get(self._path("keys"), not_found=WebserviceNotFound)
        self._keys = (keys["primary_key"], keys["secondary_key"])
        return self._keys

    def regen_key(self, key: str, set_key: str | None = None) -> None:
        """Replace one key with a new random one (the service takes it within seconds,
        without a restart).

        Args:
            key: ``"Primary"`` or ``"Secondary"``.
            set_key: Not supported: keys are always generated by the studio.

        Raises:
            UserErrorException: a key name other than Primary or Secondary, or set_key.
        """
        if key not in KEY_NAMES:
            raise UserErrorException('key must be "Primary" or "Secondary".')
        if set_key is not None:
            raise UserErrorException(
                "set_key is not supported: the studio generates keys (regen_key(key) "
                "makes a new one)."
            )
        with _conflicts():
            keys = self._client.post(
                self._path("regen-key"), {"key": key}, not_found=WebserviceNotFound
            )
        self._keys = (keys["primary_key"], keys["secondary_key"])

    def get_token(self) -> tuple[str, int]:
        """A short-lived scoring token: ``Authorization: Bearer <token>`` works as a key
        does until it expires.

        Returns:
            (token, refresh_by): the token and when to get a new one (seconds since the
            epoch).
        """
        answer = self._client.post(self._path("token"), {}, not_found=WebserviceNotFound)
        return answer["access_token"], int(answer["refresh_by"])

    get_access_token = get_token

    def get_logs(self, num_lines: int = 5000, init: bool = False) -> str:
        """The newest lines of the service's output (the scoring server's stdout and
        stderr, and its runtime's notes).

        Args:
            num_lines: How many lines at most.
            init: Ignored (the reference's init-container logs).
        """
        answer = self._client.get(
            self._path("logs"), params={"num_lines": num_lines}, not_found=WebserviceNotFound
        )
        return str(answer.get("logs") or "")

    # --- Changing ---------------------------------------------------------------------------

    _update_config_keys: ClassVar[tuple[str, ...]] = ()

    def update(
        self,
        image: Image | str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        auth_enabled: bool | None = None,
        **config: Any,
    ) -> None:
        """Change the service; None leaves a value as it is. A new image (or new resources)
        rolls out without downtime: the new instance is healthy before the old one stops
        (follow it with :meth:`wait_for_deployment`). Tags, properties and the description
        change at once.

        Args:
            image: The image to serve now (an Image or ``"name:version"``).
            tags: The tags, replacing the old ones.
            properties: Properties to add (the reference keeps existing ones).
            description: The description.
            auth_enabled: Turn key authentication on or off.
            config: Resource settings of the service's kind (``cpu_cores``, ``memory_gb``,
                ``autoscale_max_replicas`` ...).

        Raises:
            UserErrorException: a setting this kind of service does not take.
            ValidationError: the studio refused a value.
        """
        unknown = sorted(set(config) - set(self._update_config_keys))
        if unknown:
            raise UserErrorException(
                f"{type(self).__name__}.update() does not take {', '.join(unknown)}."
            )
        body: dict[str, Any] = {}
        if image is not None:
            body["image"] = _image_ref(image)
        if tags is not None:
            body["tags"] = dict(tags)
        if properties is not None:
            body["properties"] = {**self.properties, **properties}
        if description is not None:
            body["description"] = description
        if auth_enabled is not None:
            body["auth_enabled"] = auth_enabled
        changed = {k: v for k, v in config.items() if v is not None}
        if changed:
            body["config"] = {**self.deployment_config, **changed}
        if not body:
            raise UserErrorException("Nothing to update: give at least one value.")
        self._patch(body)

    def _patch(self, body: dict[str, Any]) -> None:
        with _conflicts():
            self._details = self._client.patch(self._path(), body, not_found=WebserviceNotFound)

    def delete(self) -> None:
        """Delete the service: its instances stop, its keys stop working. Waits until the
        studio has removed it.

        Raises:
            WebserviceException: the deletion failed or did not end in time.
        """
        self._details = self._client.delete(self._path(), not_found=WebserviceNotFound) or {}
        deadline = time.monotonic() + DELETE_TIMEOUT
        while time.monotonic() < deadline:
            try:
                self.update_deployment_state()
            except WebserviceNotFound:
                return
            job = self._details.get("deployment") or {}
            if job.get("operation") == "delete" and job.get("status") == "failed":
                raise WebserviceException(
                    f"Deleting the service {self.name!r} failed: {job.get('error') or self.error}"
                )
            _pause(POLL_INTERVAL)
        raise WebserviceException(
            f"The service {self.name!r} is still being deleted after {DELETE_TIMEOUT:.0f}s."
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(workspace={self.workspace.name}, name={self.name}, "
            f"image_id={self.image_id}, compute_type={self.compute_type}, state={self.state}, "
            f"scoring_uri={self.scoring_uri}, tags={self.tags}, properties={self.properties}, "
            f"created_by={self.created_by})"
        )


class AciWebservice(Webservice):
    """A service on the studio's local runtime with CPU and memory limits (the reference's
    Azure Container Instances target)."""

    _compute_type = "aci"
    _update_config_keys = ("cpu_cores", "memory_gb")

    @staticmethod
    def deploy_configuration(
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        location: str | None = None,
        auth_enabled: bool | None = True,
        ssl_enabled: bool | None = None,
        enable_app_insights: bool | None = None,
        **ignored: Any,
    ) -> AciServiceDeploymentConfiguration:
        """The configuration of an ACI-like service.

        Args:
            cpu_cores: CPU cores for the instance (default 0.1).
            memory_gb: Memory in GB (default 0.5).
            tags: Tags of the service.
            properties: Properties of the service.
            description: Its description.
            location: Ignored (the studio's machine).
            auth_enabled: Key authentication (default on).
            ssl_enabled, enable_app_insights: Ignored (TLS belongs to a proxy in front;
                telemetry is always on).
            ignored: The reference's other arguments (DNS label, SSL files, VNet...).

        Raises:
            WebserviceException: a value is out of range.
        """
        return AciServiceDeploymentConfiguration(
            {
                "cpu_cores": 0.1 if cpu_cores is None else cpu_cores,
                "memory_gb": 0.5 if memory_gb is None else memory_gb,
            },
            tags=tags,
            properties=properties,
            description=description,
            auth_enabled=auth_enabled,
        )


AKS_CONFIG_KEYS = (
    "autoscale_enabled",
    "autoscale_min_replicas",
    "autoscale_max_replicas",
    "autoscale_refresh_seconds",
    "autoscale_target_utilization",
    "cpu_cores",
    "memory_gb",
    "num_replicas",
    "namespace",
)


class AksWebservice(Webservice):
    """A service on a Kubernetes compute target: a Deployment, a Service and a
    HorizontalPodAutoscaler (the reference's Azure Kubernetes Service target)."""

    _compute_type = "kubernetes"
    _update_config_keys = AKS_CONFIG_KEYS

    @staticmethod
    def deploy_configuration(
        autoscale_enabled: bool | None = None,
        autoscale_min_replicas: int | None = None,
        autoscale_max_replicas: int | None = None,
        autoscale_refresh_seconds: int | None = None,
        autoscale_target_utilization: int | None = None,
        collect_model_data: bool | None = None,
        auth_enabled: bool | None = True,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        enable_app_insights: bool | None = None,
        num_replicas: int | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        namespace: str | None = None,
        **ignored: Any,
    ) -> AksServiceDeploymentConfiguration:
        """The configuration of a Kubernetes service.

        Args:
            autoscale_enabled: Scale with load (default on unless ``num_replicas`` is given).
            autoscale_min_replicas, autoscale_max_replicas: Bounds (defaults 1 and 10).
            autoscale_refresh_seconds: How often the autoscaler looks (default 1).
            autoscale_target_utilization: Target CPU utilisation in percent (default 70).
            collect_model_data, enable_app_insights: Ignored (telemetry is always on).
            auth_enabled: Key authentication (default on).
            cpu_cores, memory_gb: Requests per pod (defaults 0.1 and 0.5).
            num_replicas: A fixed number of pods, without autoscaling.
            tags, properties, description: The service's metadata.
            namespace: The Kubernetes namespace (default the compute target's).
            ignored: The reference's other arguments (probes, timeouts, GPUs...).

        Raises:
            WebserviceException: a value is out of range or contradicts another.
        """
        return AksServiceDeploymentConfiguration(
            {
                "autoscale_enabled": autoscale_enabled,
                "autoscale_min_replicas": autoscale_min_replicas,
                "autoscale_max_replicas": autoscale_max_replicas,
                "autoscale_refresh_seconds": autoscale_refresh_seconds,
                "autoscale_target_utilization": autoscale_target_utilization,
                "cpu_cores": cpu_cores,
                "memory_gb": memory_gb,
                "num_replicas": num_replicas,
                "namespace": namespace,
            },
            tags=tags,
            properties=properties,
            description=description,
            auth_enabled=auth_enabled,
        )


class LocalWebservice(Webservice):
    """A service on the studio's local runtime, on a port of your choice (the reference's
    local Docker web service)."""

    _compute_type = "local"
    _update_config_keys = ("port",)

    @staticmethod
    def deploy_configuration(port: int | None = None) -> LocalWebserviceDeploymentConfiguration:
        """The configuration of a local service.

        Args:
            port: The port to serve on (default: a free one).

        Raises:
            WebserviceException: a port outside 1-65535.
        """
        return LocalWebserviceDeploymentConfiguration({"port": port})


AciServiceDeploymentConfiguration._webservice_type = AciWebservice
AksServiceDeploymentConfiguration._webservice_type = AksWebservice
LocalWebserviceDeploymentConfiguration._webservice_type = LocalWebservice


# --- Helpers ---------------------------------------------------------------------------------


def _services_path(workspace: WorkspaceParent) -> str:
    return f"{workspace._path}/services"


def _fetch(workspace: WorkspaceParent, name: str) -> dict[str, Any]:
    return workspace._client.get(
        f"{_services_path(workspace)}/{segment(name)}", not_found=WebserviceNotFound
    )


@contextlib.contextmanager
def _conflicts() -> Iterator[None]:
    """A 409 of the studio (a deployment of the service is under way, it is being
    deleted, its port is taken) as a WebserviceException, the reference's error for it."""
    try:
        yield
    except MLStudioError as exc:
        if exc.status_code != 409:
            raise
        raise WebserviceException(
            exc.message, error_code=exc.error_code, status_code=exc.status_code
        ) from exc


def _pause(seconds: float) -> None:
    """Wait between two polls (tests may replace it)."""
    time.sleep(seconds)


def _image_ref(image: Any) -> str:
    """``name:version`` (or ``name``) of an Image, or the string given."""
    if isinstance(image, str):
        return image
    name, version = getattr(image, "name", None), getattr(image, "version", None)
    if not name:
        raise UserErrorException("image must be an mlstudio.image.Image or 'name:version'.")
    return f"{name}:{version}" if version is not None else str(name)


def _target_name(target: Any) -> str | None:
    if target is None or isinstance(target, str):
        return target
    name = getattr(target, "name", None)
    if not name:
        raise UserErrorException("deployment_target must be a ComputeTarget or its name.")
    return str(name)


def _pairs_match(have: Mapping[str, Any], wanted: Iterable[Any] | None) -> bool:
    for entry in wanted or ():
        if isinstance(entry, str):
            if entry not in have:
                return False
        else:
            key, value = entry
            if have.get(key) != value:
                return False
    return True


def _matches(
    details: dict[str, Any],
    model_name: str | None,
    model_id: str | None,
    tags: Iterable[Any] | None,
    properties: Iterable[Any] | None,
) -> bool:
    model = details.get("model") or {}
    if model_name and model.get("name") != model_name:
        return False
    if model_id and f"{model.get('name')}:{model.get('version')}" != model_id:
        return False
    return _pairs_match(details.get("tags") or {}, tags) and _pairs_match(
        details.get("properties") or {}, properties
    )


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _scoring_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _scoring_error(response: requests.Response) -> str:
    body = _scoring_body(response)
    if isinstance(body, dict):
        for key in ("message", "error"):
            if body.get(key):
                return str(body[key])
    text = response.text.strip()
    return text[:500] if text else response.reason or "no message"


def _scoring_error_code(response: requests.Response) -> str | None:
    body = _scoring_body(response)
    return body.get("error_code") if isinstance(body, dict) else None
