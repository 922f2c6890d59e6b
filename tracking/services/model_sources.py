"""Where a model version's files come from: a `source` resolved and confined to the
workspace (a run, a logged model, a registry reference or an mlflow-artifacts path).
Anything else -- file://, another host, a path that climbs out -- is refused.

A `runs:/<run_id>/<path>` source naming no run of this workspace is stored as given, as
`mlflow server` stores it without looking the run up, and left unresolved: its download
URI is the source itself, which the client follows through this workspace's runs, so a
run of another workspace is never reached and is "not found" like any other."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.utils.models import _parse_model_uri

from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from tracking.artifacts import artifact_uri_path, clean_artifact_path, join, store_for
from tracking.models import (
    LifecycleStage,
    LoggedModel,
    Run,
)
from tracking.selectors.registry import (
    model_version_resolve,
)

# --- Sources -----------------------------------------------------------------------------------


@dataclass
class Source:
    source: str
    storage_location: str
    run_id: str
    model_id: str


def _invalid_source(source: str, why: str = "") -> InvalidParameter:
    return InvalidParameter(
        f"Invalid model version source: '{source}'. "
        + (why or "A source must be inside this workspace: runs:/<run_id>/<path>, ")
        + (
            ""
            if why
            else "models:/<model_id>, models:/<name>/<version> or mlflow-artifacts:/<path>."
        )
    )


def _safe_relative(source: str, path: str) -> str:
    """A workspace-relative artifact path with no way out of it (the artifact API's own
    check: no `..`, `.`, empty or backslashed segments, control characters, even
    percent-encoded)."""
    try:
        cleaned = clean_artifact_path(path.lstrip("/"))
    except InvalidParameter as exc:
        raise _invalid_source(source, exc.message) from None
    if not cleaned:
        raise _invalid_source(source, "The path is empty.")
    return cleaned


def _within(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def _artifact_path(uri: str) -> str | None:
    """The workspace-relative path of an `mlflow-artifacts:/...` location we created."""
    try:
        return artifact_uri_path(uri)
    except InvalidParameter:
        return None


def _workspace_run(workspace: Workspace, run_id: str) -> Run | None:
    if not run_id or "\x00" in run_id:
        return None
    return Run.objects.filter(workspace=workspace, run_uuid=run_id).first()


def _source_run(workspace: Workspace, source: str, run_id: str) -> Run:
    run = _workspace_run(workspace, run_id)
    if run is None:
        raise _invalid_source(
            source, "The run_id request parameter must identify a run of this workspace."
        )
    return run


def _source_model(workspace: Workspace, source: str, model_id: str) -> LoggedModel:
    model = (
        LoggedModel.objects.filter(workspace=workspace, model_id=model_id)
        .exclude(lifecycle_stage=LifecycleStage.DELETED)
        .select_related("source_run")
        .first()
        if model_id
        else None
    )
    if model is None:
        raise _invalid_source(
            source, "The model_id request parameter must identify a logged model of this workspace."
        )
    return model


def resolve_source(*, workspace: Workspace, source: str, run_id: str, model_id: str) -> Source:
    """Where a new version's files are, refusing anything outside this workspace.

    Accepted: `runs:/<run_id>/<path>` (a run of this workspace; one naming no run here is
    kept unresolved, see above), `models:/<model_id>` (a
    logged model of this workspace), `models:/<name>/<version|stage|latest>` and
    `models:/<name>@<alias>` (this workspace's registry) and `mlflow-artifacts:/<path>`
    (workspace-relative, checked for traversal; inside the run's or logged model's
    location when run_id or model_id is given). Everything else — `file:`, local paths,
    other schemes and hosts — is INVALID_PARAMETER_VALUE: the server never reads a path
    or a host a caller names.
    """
    if not source:
        raise InvalidParameter("Missing value for required parameter 'source'.")
    if len(source) > 2000 or re.search(r"[\x00-\x1f]", source):
        raise _invalid_source(source)
    parsed = urllib.parse.urlsplit(source)
    scheme = parsed.scheme.lower()
    if parsed.query or parsed.fragment:
        raise _invalid_source(source, "A source has no query or fragment.")
    if scheme == "models":
        return _resolve_models_source(workspace, source, run_id, model_id)
    if scheme == "runs":
        return _resolve_runs_source(workspace, source, run_id, model_id)
    if scheme == "mlflow-artifacts" and not parsed.netloc:
        path = _safe_relative(source, parsed.path)
        if model_id:
            model = _source_model(workspace, source, model_id)
            if not _within(path, _artifact_path(model.artifact_location) or "\x00"):
                raise _invalid_source(
                    source, "The source must be inside the logged model's artifact location."
                )
            run_id = run_id or (model.source_run.run_uuid if model.source_run else "")
        if run_id:
            run = _source_run(workspace, source, run_id)
            if not model_id and not _within(path, _artifact_path(run.artifact_uri) or "\x00"):
                raise _invalid_source(source, "The source must be inside the run's artifacts.")
        return Source(f"mlflow-artifacts:/{path}", f"mlflow-artifacts:/{path}", run_id, model_id)
    raise _invalid_source(source)


def _resolve_models_source(workspace: Workspace, source: str, run_id: str, model_id: str) -> Source:
    parsed = urllib.parse.urlsplit(source)
    if parsed.netloc:
        raise _invalid_source(
            source, "Registered model sources must use this workspace's model registry."
        )
    try:
        uri = _parse_model_uri(source)
    except MlflowException:
        raise _invalid_source(source) from None
    if uri.model_id is not None:
        if model_id and model_id != uri.model_id:
            raise _invalid_source(
                source, "The model_id request parameter must match the source's model."
            )
        model = _source_model(workspace, source, uri.model_id)
        # A run_id given with it is kept as given, as `mlflow server` keeps it.
        run_id = run_id or (model.source_run.run_uuid if model.source_run else "")
        return Source(source, model.artifact_location, run_id, model.model_id)
    try:
        origin = model_version_resolve(
            workspace=workspace,
            uri_name=uri.name,
            version=uri.version,
            stage=uri.stage,
            alias=uri.alias,
        )
    except NotFound as exc:
        raise _invalid_source(source, exc.message) from None
    if (run_id and run_id != origin.run_id) or (model_id and model_id != origin.model_id):
        raise _invalid_source(
            source,
            "The run_id and model_id request parameters must match the referenced model version.",
        )
    return Source(
        f"models:/{origin.registered_model.name}/{origin.version}",
        origin.storage_location or origin.source,
        origin.run_id,
        origin.model_id,
    )


def _resolve_runs_source(workspace: Workspace, source: str, run_id: str, model_id: str) -> Source:
    parsed = urllib.parse.urlsplit(source)
    if parsed.netloc:
        raise _invalid_source(source, "A runs:/ source is runs:/<run_id>/<path>, with no host.")
    source_run_id, _, path = parsed.path.lstrip("/").partition("/")
    if run_id and run_id != source_run_id:
        raise _invalid_source(source, "The run_id request parameter must match the source's run.")
    path = _safe_relative(source, path) if path.strip("/") else ""
    run = _workspace_run(workspace, source_run_id)
    if run is None:
        if model_id:
            raise _invalid_source(source, "The model_id request parameter must match the source.")
        if not source_run_id:
            raise _invalid_source(source, "A runs:/ source is runs:/<run_id>/<path>.")
        return Source(source, "", source_run_id, "")
    # MLflow 3 keeps a model's files with the logged model, not the run: like the client,
    # take the run's own folder when it holds an MLmodel, else the run's logged model of
    # that name.
    run_root = _artifact_path(run.artifact_uri)
    has_mlmodel = (
        bool(path)
        and run_root is not None
        and not model_id
        and store_for(workspace).exists(join(run_root, path, "MLmodel"))
    )
    if has_mlmodel:
        return Source(source, f"{run.artifact_uri.rstrip('/')}/{path}", run.run_uuid, "")
    logged = None
    if path:
        models = (
            LoggedModel.objects.filter(workspace=workspace, source_run=run, name=path)
            .exclude(lifecycle_stage=LifecycleStage.DELETED)
            .order_by("-creation_timestamp_ms")
        )
        if model_id:
            models = models.filter(model_id=model_id)
        logged = models.first()
    if model_id and logged is None:
        raise _invalid_source(source, "The model_id request parameter must match the source.")
    if logged is not None:
        return Source(source, logged.artifact_location, run.run_uuid, logged.model_id)
    location = run.artifact_uri.rstrip("/") + (f"/{path}" if path else "")
    return Source(source, location, run.run_uuid, "")
