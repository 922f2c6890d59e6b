"""A Kubernetes compute target: its settings (`ComputeTarget.config`, not secret) and its
kubeconfig (`ComputeTarget.secret`, encrypted with portal.secrets, never given back).

A kubeconfig is checked when it is attached: it must name a cluster, a user and a
context, and hold its credentials inline. Anything that would make the studio's worker
read one of its own files (`certificate-authority: /path`, `tokenFile`, …) or run a
program (`exec`, `auth-provider` plugins) is refused: whoever attaches a target must not
be able to run code or read files on the studio's machines.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import yaml

from deployments.runtimes.base import RuntimeError_
from portal import secrets
from portal.errors import InvalidParameter

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from deployments.models import ComputeTarget

MAX_KUBECONFIG_BYTES = 256 * 1024
# The Kubernetes version whose schemas manifests are validated against (kubernetes-validate
# ships 1.30 to 1.37 here); a target may name another one it ships.
DEFAULT_KUBERNETES_VERSION = "1.30"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
VERSION_RE = re.compile(r"^1\.\d{2}$")
SERVICE_TYPES = ("ClusterIP", "LoadBalancer")

# What a target's config may hold, with what each means (the API documents these).
SETTINGS: dict[str, str] = {
    "namespace": "The namespace services go to (it must exist); default: the kubeconfig "
    "context's namespace, else `default`.",
    "context": "The kubeconfig context to use; default: its current-context.",
    "service_type": "`ClusterIP` (default) or `LoadBalancer`: how each service's "
    "Kubernetes Service is exposed.",
    "ingress_class": "The IngressClass of the Ingress made for each service (when a host "
    "is known).",
    "ingress_domain": "A domain whose subdomains route to the ingress controller: service "
    "`x` answers at `x-<first 8 hex digits of the workspace id>.<domain>` (a service's "
    "own `ingress_host` wins).",
    "ingress_tls_secret": "A TLS Secret in the namespace for the Ingress hosts (scoring "
    "URIs are then https).",
    "image_pull_secret": "A docker-registry Secret in the namespace the pods pull images "
    "with (a private IMAGE_REGISTRY).",
    "studio_url": "The studio's URL as pods reach it, for telemetry; default: SITE_URL.",
    "kubernetes_version": "The Kubernetes minor version manifests are validated against "
    f"(1.30 to 1.37; default {DEFAULT_KUBERNETES_VERSION}).",
}

# Keys of a kubeconfig's user or cluster that point at files or programs of the machine
# that loads it.
_FILE_KEYS = {
    "certificate-authority",
    "client-certificate",
    "client-key",
    "tokenFile",
    "token-file",
}
_PROGRAM_KEYS = {"exec", "auth-provider"}


def _text(config: dict, key: str, pattern: re.Pattern | None, rule: str) -> None:
    value = config.get(key)
    if value is None:
        return
    if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
        raise InvalidParameter(f"config.{key} {rule}.")


def check_settings(config: Any) -> dict[str, str]:
    """A Kubernetes target's settings, checked (None and "" values dropped)."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InvalidParameter("config must be an object.")
    config = {k: v for k, v in config.items() if v not in (None, "")}
    unknown = sorted(set(config) - set(SETTINGS))
    if unknown:
        raise InvalidParameter(
            f"config: {', '.join(unknown)[:200]} not known for a kubernetes target "
            f"(known: {', '.join(SETTINGS)})."
        )
    label_rule = "must be a DNS label: lowercase letters, digits and '-', at most 63"
    for key in ("namespace", "image_pull_secret", "ingress_tls_secret", "ingress_class"):
        _text(config, key, DNS_LABEL if key == "namespace" else DNS_NAME, label_rule)
    _text(config, "context", None, "must be a string")
    _text(config, "ingress_domain", DNS_NAME, "must be a DNS name such as ml.example.com")
    if config.get("service_type") is not None and config["service_type"] not in SERVICE_TYPES:
        raise InvalidParameter(f"config.service_type must be one of {', '.join(SERVICE_TYPES)}.")
    url = config.get("studio_url")
    if url is not None and (
        not isinstance(url, str) or not re.match(r"^https?://[^\s/]+(/\S*)?$", url)
    ):
        raise InvalidParameter("config.studio_url must be an http:// or https:// URL.")
    version = config.get("kubernetes_version")
    if version is not None:
        if not isinstance(version, str) or not VERSION_RE.match(version):
            raise InvalidParameter("config.kubernetes_version must look like 1.30.")
        from kubernetes_validate.utils import all_versions

        if version not in {".".join(v.split(".")[:2]) for v in all_versions()}:
            raise InvalidParameter(
                f"config.kubernetes_version {version} has no schemas here (1.30 to 1.37)."
            )
    return config


def _walk_refusals(section: str, entries: Any) -> None:
    if not isinstance(entries, list) or not entries:
        raise InvalidParameter(f"The kubeconfig has no {section}.")
    inner = section[:-1]  # clusters -> cluster
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidParameter(f"The kubeconfig's {section} must each have a name.")
        body = entry.get(inner)
        if section == "contexts":
            continue
        if not isinstance(body, dict):
            raise InvalidParameter(f"The kubeconfig's {inner} {entry['name']!r} is empty.")
        for key in _PROGRAM_KEYS & set(body):
            raise InvalidParameter(
                f"The kubeconfig's {inner} {entry['name']!r} uses {key!r}, which would run "
                "a program on the studio: use a token or a client certificate held inline "
                "(a service account token works everywhere)."
            )
        for key in _FILE_KEYS & set(body):
            raise InvalidParameter(
                f"The kubeconfig's {inner} {entry['name']!r} names a file ({key!r}): put "
                f"the content inline ({key}-data, or token) instead."
            )


def check_kubeconfig(text: Any, context: str | None = None) -> dict:
    """The kubeconfig `text` parsed, when it is one the studio can use (InvalidParameter
    otherwise, saying why, never echoing its content). Nothing is asked of the cluster."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter("kubeconfig must be the text of a kubeconfig file.")
    if len(text.encode()) > MAX_KUBECONFIG_BYTES:
        raise InvalidParameter("kubeconfig is larger than 256 KiB.")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise InvalidParameter("kubeconfig is not valid YAML.") from None
    if not isinstance(data, dict) or data.get("kind", "Config") != "Config":
        raise InvalidParameter("kubeconfig is not a kubeconfig (kind Config).")
    for section in ("clusters", "users", "contexts"):
        _walk_refusals(section, data.get(section))
    contexts = {c["name"]: c.get("context") or {} for c in data["contexts"]}
    name = context or data.get("current-context")
    if not name or name not in contexts:
        raise InvalidParameter(
            f"The kubeconfig has no context {name!r}; name one with config.context."
            if name
            else "The kubeconfig has no current-context; name one with config.context."
        )
    from kubernetes.config.config_exception import ConfigException

    try:
        _client(data, name).close()
    except (ConfigException, ValueError, TypeError, KeyError) as exc:
        # Messages of the loader name fields, not values.
        raise InvalidParameter(f"The kubeconfig cannot be used: {str(exc)[:200]}") from None
    return data


def _client(data: dict, context: str | None) -> ApiClient:
    from kubernetes import config

    return config.new_client_from_config_dict(data, context=context, persist_config=False)


def context_namespace(data: dict, context: str | None) -> str | None:
    name = context or data.get("current-context")
    for entry in data.get("contexts") or []:
        if entry.get("name") == name:
            return (entry.get("context") or {}).get("namespace")
    return None


def kubeconfig_of(target: ComputeTarget) -> dict:
    """The target's kubeconfig, decrypted and parsed."""
    try:
        text = secrets.decrypt(target.secret)
    except secrets.SecretUnreadable:
        raise RuntimeError_(
            f"The kubeconfig of compute target {target.name!r} cannot be read (the studio's "
            "SECRET_KEY changed): attach it again."
        ) from None
    if not text:
        raise RuntimeError_(f"Compute target {target.name!r} has no kubeconfig: attach one.")
    return yaml.safe_load(text)


def api_client(target: ComputeTarget) -> ApiClient:
    """A client of the target's cluster, built from its kubeconfig."""
    from kubernetes.config.config_exception import ConfigException

    data = kubeconfig_of(target)
    try:
        return _client(data, (target.config or {}).get("context"))
    except (ConfigException, ValueError, TypeError, KeyError) as exc:
        raise RuntimeError_(f"The kubeconfig cannot be used: {str(exc)[:200]}") from None


def namespace_of(target: ComputeTarget, service_config: dict | None = None) -> str:
    """Where a service goes: its own `namespace`, the target's, the kubeconfig context's,
    else `default`."""
    own = (service_config or {}).get("namespace")
    if own:
        return str(own)
    settings = target.config or {}
    if settings.get("namespace"):
        return str(settings["namespace"])
    try:
        data = kubeconfig_of(target)
    except Exception:
        return "default"
    return context_namespace(data, settings.get("context")) or "default"
