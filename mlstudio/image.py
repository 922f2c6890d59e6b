"""Images: a registered model packaged with the studio's scoring server, ready to deploy.

The reference SDK's ``azureml.core.image.Image``, read through /api/v1::

    from mlstudio.image import Image

    image = Image(ws, "sklearn-image")            # the newest version; version=2 for another
    image.wait_for_creation(show_output=True)      # prints the build log as it grows
    image.creation_state, image.image_location     # "Succeeded", "mlstudio/ws-…:1" or
                                                   # "local environment <hash>"
    Image.list(ws)                                 # the newest version of each name

Images are built by :func:`mlstudio.deployment.build_image`.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from mlstudio._client.http import segment
from mlstudio._client.parents import WorkspaceParent
from mlstudio.exceptions import MLStudioError, NotFoundError

FINAL_STATES = ("Succeeded", "Failed")


class ImageNotFound(NotFoundError):
    """No image (or no such version of it) in the workspace."""


class ImageBuildFailed(MLStudioError):
    """The image's build ended Failed; ``image`` is the failed Image (its ``build_log``)."""

    def __init__(self, message: str, *, image: Image | None = None) -> None:
        super().__init__(message, error_code="IMAGE_BUILD_FAILED")
        self.image = image


class Image:
    """One version of a named image of a workspace.

    Args:
        workspace: The workspace (``mlstudio.Workspace``).
        name: The image's name.
        version: A version number; None for the newest.

    Raises:
        ImageNotFound: no such image or version.
    """

    def __init__(self, workspace: WorkspaceParent, name: str, version: int | None = None) -> None:
        self.workspace = workspace
        self._details: dict[str, Any] = {}
        self._details = workspace._client.get(
            self._version_path(workspace, name, version), not_found=ImageNotFound
        )

    @staticmethod
    def _version_path(workspace: WorkspaceParent, name: str, version: int | str | None) -> str:
        return (
            f"{workspace._path}/images/{segment(name)}/"
            f"{segment(version if version is not None else 'latest')}"
        )

    @classmethod
    def _from_details(cls, workspace: WorkspaceParent, details: dict[str, Any]) -> Image:
        image = cls.__new__(cls)
        image.workspace = workspace
        image._details = dict(details)
        return image

    @staticmethod
    def list(workspace: WorkspaceParent, name: str | None = None) -> list[Image]:
        """The newest version of each image, by name; or every version of ``name``,
        newest first."""
        if name is None:
            answer = workspace._client.get(f"{workspace._path}/images")
        else:
            answer = workspace._client.get(
                f"{workspace._path}/images/{segment(name)}", not_found=ImageNotFound
            )
        return [Image._from_details(workspace, d) for d in answer["images"]]

    # --- what it is ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._details["name"]

    @property
    def version(self) -> int:
        return int(self._details["version"])

    @property
    def id(self) -> str:
        """``name:version``, as the reference names an image."""
        return self._details["id"]

    @property
    def description(self) -> str:
        return self._details.get("description", "")

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._details.get("tags") or {})

    @property
    def creation_state(self) -> str:
        """NotStarted, Running, Succeeded or Failed."""
        return self._details["state"]

    @property
    def error(self) -> str:
        return self._details.get("error", "")

    @property
    def image_location(self) -> str:
        """Where the image is: a Docker reference (pushed or local), or
        ``local environment <hash>`` when the server has no Docker engine."""
        return self._details.get("image_location", "")

    @property
    def model_name(self) -> str:
        return self._details.get("model_name", "")

    @property
    def model_version(self) -> int | None:
        return self._details.get("model_version")

    @property
    def python_version(self) -> str:
        return self._details.get("python_version", "")

    @property
    def requirements(self) -> list[str]:
        return list(self._details.get("requirements") or [])

    @property
    def docker_tag(self) -> str:
        return self._details.get("docker_tag", "")

    @property
    def signature(self) -> dict | None:
        return self._details.get("signature")

    @property
    def image_build_log_uri(self) -> str:
        """The API URL that answers this version with its ``build_log``."""
        return self.workspace._client.url(
            self._version_path(self.workspace, self.name, self.version)
        )

    @property
    def build_log(self) -> str:
        """The build log as it is now (fetched again while the build runs)."""
        if "build_log" not in self._details or self.creation_state not in FINAL_STATES:
            self.update_creation_status()
        return self._details.get("build_log", "")

    def get_logs(self) -> str:
        """The build log (the same as ``build_log``)."""
        return self.build_log

    def serialize(self) -> dict[str, Any]:
        return dict(self._details)

    def update_creation_status(self) -> None:
        """Read the image's state (and build log) again."""
        self._details = self.workspace._client.get(
            self._version_path(self.workspace, self.name, self.version), not_found=ImageNotFound
        )

    def wait_for_creation(
        self,
        show_output: bool = False,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        out: TextIO | None = None,
    ) -> Image:
        """Wait until the build ends, printing the build log as it grows when
        ``show_output``.

        Raises:
            ImageBuildFailed: the build failed (the error and the build log's tail).
            MLStudioError: ``timeout`` seconds passed first.
        """
        stream = out or sys.stdout
        shown = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.update_creation_status()
            log = self._details.get("build_log", "")
            if show_output:
                if len(log) < shown:  # a retried build starts its log again
                    shown = 0
                if len(log) > shown:
                    stream.write(log[shown:])
                    stream.flush()
                    shown = len(log)
            state = self.creation_state
            if state in FINAL_STATES:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise MLStudioError(f"Image {self.id} is still {state} after {timeout} s.")
            time.sleep(poll_interval)
        if show_output:
            stream.write(f"Image {self.id}: {self.creation_state}\n")
        if self.creation_state == "Failed":
            raise ImageBuildFailed(f"Image {self.id} failed: {self.error}", image=self)
        return self

    def __repr__(self) -> str:
        return f"Image(name={self.name!r}, version={self.version}, state={self.creation_state!r})"
