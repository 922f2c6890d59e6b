"""What the other apps tell portal about themselves.

Apps depend one way (`deployments → tracking → portal`): portal never imports them.
Where portal needs their help — purging a workspace, counting what a deletion takes
away, running a job, drawing a panel on the workspace page or a tab on the run page,
cancelling a run — each app registers a callable here from its `AppConfig.ready()`,
and portal calls whatever is registered, in order, naming no other app.

The stores are filled once at start-up and read afterwards; they are module-level,
as Django's own app registry is. Tests that register something extra use
`registry.override()` so nothing leaks into other tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from portal.models import Job, Workspace

# (how many more progress units are done, the phase in words)
Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class PurgeStep:
    """One step of removing a workspace for good, run before its row goes.

    Steps run in `order` (lowest first): a step that stops live things (running jobs,
    web services) comes before the steps that remove the rows and files they use.
    Every step must be idempotent: a job interrupted midway runs them all again."""

    name: str
    order: int
    run: Callable[..., None]  # run(workspace=..., progress=...)
    units: Callable[[Workspace], int] = lambda workspace: 0


@dataclass(frozen=True)
class DeletionRow:
    """A row of the typed-name confirmation page: what goes, how much, a note."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class DeletionCount:
    """An app's rows on the typed-name confirmation page, for the workspaces that go."""

    name: str
    order: int
    rows: Callable[[list[Workspace]], list[DeletionRow]]


@dataclass(frozen=True)
class JobKind:
    """A kind of background job: which model holds its rows and how one is done.

    `run(job, progress)` does the work in a worker; it must be idempotent, since a job
    whose worker died is run again. `units(job)` sizes the progress bar when a worker
    claims it. Failures that are not domain errors are retried up to `max_attempts`
    after `retry_delays`; a job untouched for `stale_after` is recovered."""

    name: str
    label: str
    model: type[Job]
    run: Callable[[Job, Progress], None]
    units: Callable[[Job], int] = lambda job: 1
    # The object a failure is recorded against in the audit log, if it still exists.
    target: Callable[[Job], Any] | None = None
    # Where a finished job's page sends people back to: (url, words), or None.
    back_link: Callable[[Job, Any], tuple[str, str] | None] | None = None
    # The phase a job that succeeded shows ("Deleted", "Completed").
    done_phase: str = "Done"
    # The Celery task that runs it, by name, called with (model label, job id); the
    # generic one claims the row and calls `run`. A kind whose workers are other
    # programs (compute workers that reach the studio over HTTP) names its own.
    task: str = "portal.tasks.job_run"
    # The queue, or queue(job) → the queue (a compute target's); None: the default.
    queue: str | Callable[[Job], str] | None = None
    max_attempts: int = 3
    retry_delays: tuple[int, ...] = (30, 120)
    stale_after: timedelta = timedelta(minutes=10)
    # Called with the job when it fails for good (its error set), after its row is
    # saved, inside no transaction of its own: a kind that mirrors its status elsewhere
    # (a remote run's MLflow run) follows it here.
    on_fail: Callable[[Job], None] | None = None
    # Whether `job_retry` may queue a failed job again; a kind whose retry means
    # something else (a remote run is submitted again, as a new run) says False.
    retryable: bool = True


@dataclass(frozen=True)
class Panel:
    """A card on the workspace overview page: a template and its context."""

    name: str
    order: int
    template: str
    context: Callable[[HttpRequest, Workspace], dict[str, Any] | None]


@dataclass(frozen=True)
class RunTab:
    """A tab on the run page, after the tracking app's own tabs."""

    slug: str
    label: str
    order: int
    template: str
    # context(request, run) → the template's context; called for the open tab only.
    context: Callable[[HttpRequest, Any], dict[str, Any]]
    # shown(run) → whether the run has this tab at all (e.g. only remote runs have a Job).
    shown: Callable[[Any], bool] = lambda run: True


@dataclass
class Registry:
    purge_steps: list[PurgeStep] = field(default_factory=list)
    deletion_counts: list[DeletionCount] = field(default_factory=list)
    job_kinds: dict[str, JobKind] = field(default_factory=dict)
    workspace_panels: list[Panel] = field(default_factory=list)
    run_tabs: list[RunTab] = field(default_factory=list)
    hooks: dict[str, list[Callable[..., Any]]] = field(default_factory=dict)


_registry = Registry()


def _add_named(items: list, item: Any) -> None:
    if any(existing.name == item.name for existing in items):
        raise ValueError(f"{type(item).__name__} {item.name!r} is registered already")
    items.append(item)
    items.sort(key=lambda entry: entry.order)


def register_purge_step(step: PurgeStep) -> None:
    _add_named(_registry.purge_steps, step)


def register_deletion_count(count: DeletionCount) -> None:
    _add_named(_registry.deletion_counts, count)


def register_job_kind(kind: JobKind) -> None:
    if kind.name in _registry.job_kinds:
        raise ValueError(f"Job kind {kind.name!r} is registered already")
    _registry.job_kinds[kind.name] = kind


def register_workspace_panel(panel: Panel) -> None:
    _add_named(_registry.workspace_panels, panel)


def register_run_tab(tab: RunTab) -> None:
    if any(existing.slug == tab.slug for existing in _registry.run_tabs):
        raise ValueError(f"Run tab {tab.slug!r} is registered already")
    _registry.run_tabs.append(tab)
    _registry.run_tabs.sort(key=lambda entry: entry.order)


def register_hook(name: str, function: Callable[..., Any]) -> None:
    """Add a function to a named hook, e.g. "run_cancel"(run=..., actor=...) or
    "workspace_created"(workspace=..., actor=...).

    Hooks run inside the announcing service's transaction, so their writes commit or
    roll back with it; side effects outside the database belong in on_commit."""
    _registry.hooks.setdefault(name, []).append(function)


# --- Reads ------------------------------------------------------------------------------


def purge_steps() -> list[PurgeStep]:
    return list(_registry.purge_steps)


def deletion_counts() -> list[DeletionCount]:
    return list(_registry.deletion_counts)


def job_kind(name: str) -> JobKind:
    try:
        return _registry.job_kinds[name]
    except KeyError:
        raise LookupError(f"No job kind {name!r} is registered") from None


def job_kinds() -> list[JobKind]:
    return list(_registry.job_kinds.values())


def workspace_panels() -> list[Panel]:
    return list(_registry.workspace_panels)


def run_tabs() -> list[RunTab]:
    return list(_registry.run_tabs)


def call_hook(name: str, **kwargs: Any) -> list[Any]:
    """Call every function registered under `name`; returns their answers in order."""
    return [function(**kwargs) for function in _registry.hooks.get(name, [])]


@contextlib.contextmanager
def override() -> Iterator[Registry]:
    """For tests: register extra entries inside the block; they are gone after it."""
    global _registry
    saved = _registry
    _registry = Registry(
        purge_steps=list(saved.purge_steps),
        deletion_counts=list(saved.deletion_counts),
        job_kinds=dict(saved.job_kinds),
        workspace_panels=list(saved.workspace_panels),
        run_tabs=list(saved.run_tabs),
        hooks={name: list(functions) for name, functions in saved.hooks.items()},
    )
    try:
        yield _registry
    finally:
        _registry = saved
