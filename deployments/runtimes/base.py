"""The interface every web-service runtime implements.

Services (deployments.services.webservices) call a runtime from a deployment job; the
runtime owns how instances are started, checked, replaced and stopped, and records what
it needs to find them again in `service.runtime_state` (JSON)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployments.models import Image, WebService

# (units done since the last call, the phase in words): portal.registry.Progress.
Progress = Callable[[int, str], None]


class RuntimeError_(Exception):
    """A runtime could not do what it was asked; the message is shown to the user."""


@dataclass(frozen=True)
class Endpoint:
    """Where a healthy service answers."""

    scoring_uri: str
    swagger_uri: str


class Runtime(ABC):
    name: str

    @abstractmethod
    def deploy(self, service: WebService, image: Image, progress: Progress) -> Endpoint:
        """Bring `image` up for `service`. When instances of an older image run, the new
        ones must answer /health before the old ones stop (no failed request in between).
        Returns once healthy; raises RuntimeError_ with a readable message otherwise.
        Idempotent: a job run again after a worker died calls it again."""

    @abstractmethod
    def stop(self, service: WebService) -> None:
        """Stop and remove every instance of `service`; idempotent."""

    @abstractmethod
    def state(self, service: WebService) -> str:
        """The service's state now: one of WebService.State's values."""

    @abstractmethod
    def logs(self, service: WebService, tail_lines: int = 5000) -> str:
        """The newest lines of the instances' output (stdout and stderr)."""
