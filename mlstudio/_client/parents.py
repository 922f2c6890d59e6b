"""How an SDK object reaches the objects above it without importing their modules.

The SDK's modules stand on floors (the plan is in ``mlstudio/_client/__init__.py``): a
module imports only modules below it. Yet a run belongs to an experiment, which belongs
to a workspace. There are two ways up, and neither is an import:

1. Held parents. An object is built with its parent and keeps it: ``Run(experiment,
   run_id)`` keeps ``run.experiment``, ``Experiment(workspace, name)`` keeps
   ``experiment.workspace``. The lower module uses only what the parent offers — written
   down below as protocols — through the parent object; it never names the parent's
   class. Workspace and scopes carry no parent object: their parents are plain ids
   (``ws.subscription_id``, ``ws.resource_group``) whose API paths ``tenancy`` builds.

2. Builders. When a lower module must make a parent it was not given — ``Run.get(ws,
   run_id)`` learns the run's experiment only from the server's answer — it calls a
   :class:`Builder` declared here. The parent's module provides the builder when it is
   imported (``experiment_by_id.provide(Experiment._by_id)`` in mlstudio.experiment), and
   ``import mlstudio`` imports every object module, so builders are in place before any
   SDK call. A builder called before that raises, naming the module to import.

A new object module goes on a floor in ``.importlinter`` (the contract is exhaustive), holds
its parent as (1), and declares a builder here only when it must make a parent itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from mlstudio._client.http import HttpClient

T = TypeVar("T")


class WorkspaceParent(Protocol):
    """What an object inside a workspace uses of it (mlstudio.Workspace is one)."""

    _client: HttpClient

    @property
    def name(self) -> str: ...

    @property
    def _path(self) -> str:
        """The workspace's API path (see tenancy.workspace_path)."""
        ...


class ExperimentParent(Protocol):
    """What a run uses of its experiment (mlstudio.Experiment is one)."""

    workspace: WorkspaceParent

    @property
    def name(self) -> str: ...

    def get_runs(
        self, *, include_children: bool = False, filter: str | None = None
    ) -> Iterator[Any]: ...


class Builder(Generic[T]):
    """Makes objects of a higher module for the modules below it (see the module docstring).

    Args:
        module: The module that provides the builder, for the error when it has not yet.
    """

    def __init__(self, module: str) -> None:
        self.module = module
        self._build: Callable[..., T] | None = None

    def provide(self, build: Callable[..., T]) -> None:
        """Called by `module` when it is imported, with the function that makes its objects."""
        self._build = build

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        if self._build is None:
            raise RuntimeError(f"{self.module} is not imported yet: import mlstudio first.")
        return self._build(*args, **kwargs)


# Run.get: the experiment of a workspace by id — (workspace, experiment_id) -> Experiment.
experiment_by_id: Builder[ExperimentParent] = Builder("mlstudio.experiment")
