"""What a run's environment is, normalised and hashed.

Decisions:

- **Two hashes.** `EnvSpec.spec_hash()` names the whole spec (Python version, packages,
  environment variables): it is the identity the Environment row stores. The cache is
  keyed by `EnvSpec.build_hash()`, which covers only what the virtualenv depends on
  (Python version and packages), so two specs that differ in variables share one build.
  Both hash a canonical JSON form: requirements parsed with `packaging`, names PEP 503
  normalised, duplicates dropped, sorted; variables sorted.
- **Requirements are data, never options.** Each package must parse as a PEP 508
  requirement; a leading `-` (an option such as `--index-url`) or a direct reference
  other than `https://` is refused when the spec is made. They reach uv through a
  requirements file, never as arguments.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

__all__ = ["EnvSpec"]

_HASH_VERSION = 1
_PYTHON_VERSION = re.compile(r"^3(\.\d{1,3}){0,2}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _normalise_requirement(text: str) -> str:
    text = text.strip()
    if not text or text.startswith("-"):
        raise ValueError(f"not a package requirement: {text!r} (options are not allowed)")
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"not a valid package requirement: {text!r}: {exc}") from None
    out = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        if not req.url.startswith("https://"):
            raise ValueError(f"only https:// direct references are allowed: {text!r}")
        out += f" @ {req.url}"
    else:
        out += str(req.specifier)  # packaging sorts the specifiers
    if req.marker:
        out += f" ; {req.marker}"
    return out


@dataclass(frozen=True, eq=True)
class EnvSpec:
    """What a run's environment is: a Python version, pip packages, environment variables.

    Normalised when made (see the module docstring); invalid input is a ValueError.
    """

    python_version: str | None = None
    pip_packages: tuple[str, ...] = ()
    env_vars: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        version = (self.python_version or "").strip() or None
        if version is not None and not _PYTHON_VERSION.match(version):
            raise ValueError(f"not a Python version: {self.python_version!r} (e.g. '3.11')")
        if isinstance(self.pip_packages, str):
            raise ValueError("pip_packages is a sequence of requirements, not one string")
        packages = tuple(sorted({_normalise_requirement(p) for p in self.pip_packages}))
        env: dict[str, str] = {}
        for key, value in sorted(dict(self.env_vars).items()):
            if not isinstance(key, str) or not _ENV_NAME.match(key):
                raise ValueError(f"not an environment variable name: {key!r}")
            if not isinstance(value, str) or "\0" in value:
                raise ValueError(f"environment variable {key} must be a string without NUL")
            env[key] = value
        object.__setattr__(self, "python_version", version)
        object.__setattr__(self, "pip_packages", packages)
        object.__setattr__(self, "env_vars", MappingProxyType(env))

    def __hash__(self) -> int:  # the generated one would choke on the variables' mapping
        return hash(self.spec_hash())

    def _digest(self, doc: dict) -> str:
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def build_hash(self) -> str:
        """sha256 of what the virtualenv depends on: the cache key."""
        return self._digest(
            {"v": _HASH_VERSION, "python": self.python_version, "pip": list(self.pip_packages)}
        )

    def spec_hash(self) -> str:
        """sha256 of the whole spec, variables included: the Environment's identity."""
        return self._digest(
            {
                "v": _HASH_VERSION,
                "python": self.python_version,
                "pip": list(self.pip_packages),
                "env": dict(self.env_vars),
            }
        )

    def requirements_text(self) -> str:
        return "".join(f"{p}\n" for p in self.pip_packages)
