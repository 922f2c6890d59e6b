"""``build_image``: package a logged model for deployment (mlflow.azureml's, on ML Studio).

::

    from mlstudio.deployment import build_image

    image, model = build_image(model_uri=f"runs:/{run_id}/model", workspace=ws,
                               model_name="sklearn-model", image_name="sklearn-image",
                               synchronous=True)
    model.name, model.version       # the registered model version the image packages

The server registers the model version (a ``runs:/`` URI becomes a new version of
``model_name``; ``models:/name/1`` and ``models:/name@alias`` name one), stores a build
context (Dockerfile, model, pinned requirements, scoring server), builds the Python
environment and, when it has a Docker engine, the container image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlstudio._client.parents import WorkspaceParent
from mlstudio.exceptions import UserErrorException
from mlstudio.image import Image


@dataclass(frozen=True)
class Model:
    """A registered model version (the reference returns azureml's Model): ``name`` and
    ``version``, readable with mlflow's registry client as ``models:/<name>/<version>``."""

    name: str
    version: int

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def build_image(
    model_uri: str,
    workspace: WorkspaceParent,
    model_name: str | None = None,
    image_name: str | None = None,
    description: str | None = None,
    synchronous: bool = False,
    tags: dict[str, str] | None = None,
    base_image: str | None = None,
    show_output: bool = True,
) -> tuple[Image, Model]:
    """Register the model and build an image of it.

    Args:
        model_uri: ``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` or
            ``models:/<name>@<alias>``.
        workspace: The workspace (``mlstudio.Workspace``).
        model_name: The registered model to record the version under (made when missing);
            for a ``models:/`` URI, None keeps that model's version as it is.
        image_name: The image's name (3–32 lowercase letters, digits, dashes, periods);
            a new version of it each time. Defaults to ``model_name``.
        description: Shown with the image.
        synchronous: Wait for the build to end (printing its log when ``show_output``).
        tags: The image's tags.
        base_image: The Dockerfile's FROM; the server's default when None.

    Returns:
        (the image, the registered model version).

    Raises:
        ValidationError, NotFoundError: the server refused the request (bad URI or name;
            no such run, model or version in the workspace).
        ImageBuildFailed: ``synchronous`` and the build failed.
    """
    image_name = image_name or model_name
    if not image_name:
        raise UserErrorException("image_name is required (or model_name, to name it after).")
    body: dict[str, Any] = {
        "model_uri": model_uri,
        "model_name": model_name or "",
        "image_name": image_name,
        "description": description or "",
        "tags": dict(tags or {}),
        "base_image": base_image or "",
    }
    details = workspace._client.post(f"{workspace._path}/images", body)
    image = Image._from_details(workspace, details)
    model = Model(details["model_name"], int(details["model_version"]))
    if synchronous:
        image.wait_for_creation(show_output=show_output)
    return image, model
