"""Compute targets: create, update, delete, the lazy `local` one, worker heartbeats."""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from deployments.models import ComputeTarget, RemoteJob, WebService
from deployments.models.compute import LOCAL
from portal import secrets
from portal.errors import AlreadyExists, InvalidParameter, NotFound
from portal.models import Job, Workspace
from portal.services import audit_record

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,23}$")
NAME_RULE = "2 to 24 characters: letters, digits and hyphens, starting with a letter"
MAX_NODES = 100
LOCAL_MAX_NODES = 2


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidParameter(f"Invalid compute target name {str(name)[:50]!r}: {NAME_RULE}.")
    return name


def _check_max_nodes(max_nodes: int) -> int:
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int):
        raise InvalidParameter("max_nodes must be a whole number from 1 to 100.")
    if not 1 <= max_nodes <= MAX_NODES:
        raise InvalidParameter(f"max_nodes must be from 1 to {MAX_NODES}; got {max_nodes}.")
    return max_nodes


def compute_target_local(*, workspace: Workspace) -> ComputeTarget:
    """The workspace's `local` target, made (by the system) the first time it is needed."""
    target = ComputeTarget.objects.filter(workspace=workspace, name=LOCAL).first()
    if target is not None:
        return target
    try:
        with transaction.atomic():
            target = ComputeTarget.objects.create(
                workspace=workspace,
                name=LOCAL,
                description="The studio's own worker",
                max_nodes=LOCAL_MAX_NODES,
            )
            audit_record(actor=None, action="create", target=target)
            return target
    except IntegrityError:  # made meanwhile by a concurrent request
        return ComputeTarget.objects.get(workspace=workspace, name=LOCAL)


def compute_target_get(*, workspace: Workspace, name: str) -> ComputeTarget:
    """A target by name (case-insensitive); `local` is made on first use."""
    if str(name).lower() == LOCAL:
        return compute_target_local(workspace=workspace)
    target = ComputeTarget.objects.filter(workspace=workspace, name__iexact=name).first()
    if target is None:
        raise NotFound(f"No compute target named '{str(name)[:50]}' in this workspace.")
    return target


def _kubernetes_fields(kubeconfig: str | None, config: dict | None) -> tuple[str, dict]:
    """A Kubernetes target's encrypted kubeconfig and checked settings (the kubeconfig is
    parsed, its refusals made, nothing asked of the cluster)."""
    from deployments.runtimes.k8s.target import check_kubeconfig, check_settings

    settings_ = check_settings(config)
    check_kubeconfig(kubeconfig, settings_.get("context"))
    return secrets.encrypt(kubeconfig or ""), settings_


@transaction.atomic
def compute_target_create(
    *,
    actor: AbstractBaseUser,
    workspace: Workspace,
    name: str,
    max_nodes: int = 1,
    description: str = "",
    kind: str = ComputeTarget.Kind.CELERY,
    kubeconfig: str | None = None,
    config: dict | None = None,
) -> ComputeTarget:
    """A new target. Kind `kubernetes` (where web services of compute type kubernetes
    run) needs a `kubeconfig`, kept encrypted and never shown again, and takes `config`:
    namespace, ingress and registry settings (deployments.runtimes.k8s.target.SETTINGS)."""
    _check_name(name)
    _check_max_nodes(max_nodes)
    if kind not in ComputeTarget.Kind.values:
        raise InvalidParameter(f"kind must be one of {', '.join(ComputeTarget.Kind.values)}.")
    secret, settings_ = "", {}
    if kind == ComputeTarget.Kind.KUBERNETES:
        if not kubeconfig:
            raise InvalidParameter("A kubernetes compute target needs a kubeconfig.")
        secret, settings_ = _kubernetes_fields(kubeconfig, config)
    elif kubeconfig or config:
        raise InvalidParameter("kubeconfig and config are for kubernetes compute targets.")
    compute_target_local(workspace=workspace)  # so `local` is taken like any other name
    if ComputeTarget.objects.filter(workspace=workspace, name__iexact=name).exists():
        raise AlreadyExists(f"A compute target named '{name}' already exists in this workspace.")
    try:
        with transaction.atomic():
            target = ComputeTarget.objects.create(
                workspace=workspace,
                name=name,
                kind=kind,
                max_nodes=max_nodes,
                description=(description or "")[:500],
                config=settings_,
                secret=secret,
                created_by=actor,
            )
    except IntegrityError:
        raise AlreadyExists(
            f"A compute target named '{name}' already exists in this workspace."
        ) from None
    changes: dict = {"max_nodes": max_nodes, "kind": kind}
    if settings_:
        changes["config"] = settings_
    audit_record(actor=actor, action="create", target=target, changes=changes)
    return target


@transaction.atomic
def compute_target_update(
    *,
    actor: AbstractBaseUser,
    target: ComputeTarget,
    description: str | None = None,
    max_nodes: int | None = None,
    kubeconfig: str | None = None,
    config: dict | None = None,
) -> ComputeTarget:
    """Change a target; None leaves a field as it is. A Kubernetes target's kubeconfig is
    replaced whole (checked like a new one; the audit entry says it changed, never what it
    holds), its `config` too. Running services pick them up at their next deployment."""
    target = ComputeTarget.objects.select_for_update().get(pk=target.pk)
    changes: dict = {}
    fields = ["description", "max_nodes"]
    if kubeconfig is not None or config is not None:
        if target.kind != ComputeTarget.Kind.KUBERNETES:
            raise InvalidParameter("kubeconfig and config are for kubernetes compute targets.")
        settings_ = target.config if config is None else config
        if kubeconfig is None:
            from deployments.runtimes.k8s.target import check_kubeconfig, check_settings

            settings_ = check_settings(settings_)
            if settings_.get("context") != target.config.get("context"):
                check_kubeconfig(secrets.decrypt(target.secret), settings_.get("context"))
            secret = target.secret
        else:
            secret, settings_ = _kubernetes_fields(kubeconfig, settings_)
            changes["kubeconfig"] = "replaced"
        if settings_ != target.config:
            changes["config"] = [target.config, settings_]
        target.config, target.secret = settings_, secret
        fields += ["config", "secret"]
    if description is not None and description[:500] != target.description:
        changes["description"] = [target.description, description[:500]]
        target.description = description[:500]
    if max_nodes is not None and _check_max_nodes(max_nodes) != target.max_nodes:
        changes["max_nodes"] = [target.max_nodes, max_nodes]
        target.max_nodes = max_nodes
    if changes:
        target.save(update_fields=fields)
        audit_record(actor=actor, action="update", target=target, changes=changes)
    return target


@transaction.atomic
def compute_target_delete(*, actor: AbstractBaseUser, target: ComputeTarget) -> None:
    """Delete a target; refused for `local` and while it has unfinished jobs. Ended jobs
    keep its name."""
    target = ComputeTarget.objects.select_for_update().get(pk=target.pk)
    if target.is_local:
        raise InvalidParameter("The 'local' compute target cannot be deleted.")
    services = WebService.objects.filter(compute_target=target).count()
    if services:
        raise InvalidParameter(
            f"Compute target '{target.name}' has {services} web service"
            f"{'s' if services != 1 else ''}; delete them first."
        )
    unfinished = RemoteJob.objects.filter(compute_target=target, status__in=Job.UNFINISHED)
    count = unfinished.count()
    if count:
        raise InvalidParameter(
            f"Compute target '{target.name}' has {count} unfinished job"
            f"{'s' if count != 1 else ''}; cancel them or wait for them to end first."
        )
    audit_record(actor=actor, action="delete", target=target)
    target.delete()
