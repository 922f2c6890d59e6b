"""Where a run's artifacts are browsed from: the run's own location, or that of one of
the logged models it produced (MLflow 3 stores a model's files under the model, not the
run), as a prefix below the workspace's artifact root."""

from __future__ import annotations

from dataclasses import dataclass

from portal.errors import NotFound
from tracking.artifacts.paths import artifact_uri_path
from tracking.models import LoggedModel, Run


@dataclass(frozen=True)
class ArtifactRoot:
    """A browsable artifact location of the run: its own, or one of its logged models'."""

    prefix: str  # path below the workspace's artifact root
    model_id: str = ""  # "" for the run's own artifacts
    label: str = "Run artifacts"


def artifact_root(run: Run, model_id: str = "") -> ArtifactRoot:
    """The run's artifact location, or that of a logged model this run produced.

    InvalidParameter when the location is not served by this server; NotFound for a
    model id that is not one of this run's."""
    if not model_id:
        return ArtifactRoot(prefix=artifact_uri_path(run.artifact_uri))
    model = (
        LoggedModel.objects.filter(workspace_id=run.workspace_id, source_run=run, model_id=model_id)
        .only("model_id", "name", "artifact_location")
        .first()
    )
    if model is None:
        raise NotFound("This run has no logged model with that id.")
    return ArtifactRoot(
        prefix=artifact_uri_path(model.artifact_location),
        model_id=model.model_id,
        label=f"Logged model {model.name}",
    )
