"""The proxied artifact API (`/api/2.0/mlflow-artifacts/...`), run artifact listing, and
the run-artifact endpoints mlflow server keeps for its UI (`get-artifact`,
`ajax-api/.../upload-artifact`).

Artifact paths are relative to the workspace's artifact root, so nothing of another
workspace can be named. Uploads stream the request body to the store in chunks
(never `request.body`); downloads stream the store to the client as attachments.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from mlflow.exceptions import (
    MlflowException,
    _UnsupportedMultipartDownloadException,
    _UnsupportedMultipartUploadException,
    _UnsupportedPresignedDownloadException,
    _UnsupportedPresignedUploadException,
)
from mlflow.utils.mime_type_utils import _guess_mime_type

from portal.errors import InvalidParameter, StudioError
from tracking.artifacts import (
    ArtifactEntry,
    UploadTooLarge,
    artifact_uri_path,
    clean_artifact_path,
    join,
    list_under_uri,
    store_for,
)
from tracking.artifacts.paths import named_as_given
from tracking.artifacts.responses import file_response
from tracking.artifacts.uploads import request_body_chunks
from tracking.mlflow.protocol import AJAX_ONLY, ROOT, Call, missing, route
from tracking.models import Run
from tracking.selectors import run_get
from tracking.selectors.logged_models import logged_model_get

ARTIFACTS = "2.0/mlflow-artifacts/artifacts"


class ArtifactResponse(StreamingHttpResponse, HttpResponse):
    """A streaming response that the protocol dispatcher passes through as it is.

    The dispatcher sends anything that is not an `HttpResponse` as JSON, and a
    StreamingHttpResponse is not one; this class is both, behaving as the streaming
    one (its methods come first). Once the dispatcher checks for HttpResponseBase,
    plain StreamingHttpResponse will do."""

    @property
    def content(self) -> bytes:
        raise AttributeError("A streaming response has no `content`.")

    @content.setter
    def content(self, value: object) -> None:
        """HttpResponse.__init__ sets an empty body; the stream replaces it."""


def file_info(entry: ArtifactEntry, path: str) -> dict:
    """MLflow's FileInfo as protobuf's JSON writes it: no file_size for folders."""
    info: dict = {"path": path, "is_dir": entry.is_dir}
    if entry.file_size is not None:
        info["file_size"] = entry.file_size
    return info


def _file_path(call: Call, *, folder: bool = False) -> str:
    """The artifact path of the URL; a trailing slash only where a folder may be meant."""
    raw = call.args["artifact_path"]
    path = clean_artifact_path(raw)
    if not path or (raw.endswith("/") and not folder):
        raise InvalidParameter("Invalid path: an artifact file path is required.")
    return path


def _upload_too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(f"The artifact is larger than this server accepts ({limit} bytes).")


@route("PUT", f"{ARTIFACTS}/<path:artifact_path>", write=True, raw=True)
def upload_artifact(call: Call) -> dict:
    path = _file_path(call)
    limit = settings.ARTIFACT_MAX_UPLOAD_BYTES
    chunks = request_body_chunks(call.request, limit, lambda: _upload_too_large(limit))
    store_for(call.workspace).write(path, chunks)
    return {}


@route("GET", f"{ARTIFACTS}/<path:artifact_path>", raw=True)
def download_artifact(call: Call) -> ArtifactResponse:
    path = _file_path(call)
    reader = store_for(call.workspace).open(path)
    return file_response(
        reader, path, content_type=_guess_mime_type(path), response_class=ArtifactResponse
    )


@route("GET", ARTIFACTS, raw=True)
def list_artifacts(call: Call) -> dict:
    """Names relative to the listed folder, as `mlflow server` answers."""
    path = clean_artifact_path(call.str("path"))
    files = [file_info(e, e.name) for e in store_for(call.workspace).list(path)]
    return {"files": files} if files else {}


@route("DELETE", f"{ARTIFACTS}/<path:artifact_path>", write=True, raw=True)
def delete_artifact(call: Call) -> dict:
    store_for(call.workspace).delete(_file_path(call, folder=True))
    return {}


@route("GET", "2.0/mlflow/artifacts/list", raw=True)
def list_run_artifacts(call: Call) -> dict:
    """A run's artifacts, paths relative to the run's artifact root."""
    run_id = call.str("run_id") or call.str("run_uuid")
    if not run_id:
        raise missing("run_id")
    path = clean_artifact_path(call.str("path"))
    run = run_get(workspace=call.workspace, run_id=run_id)
    files = [file_info(e, e.path) for e in list_under_uri(call.workspace, run.artifact_uri, path)]
    response: dict = {"root_uri": run.artifact_uri}
    if files:
        response["files"] = files
    return response


# --- The legacy run-artifact endpoints mlflow server keeps for its UI ---------------------

# upload-artifact's own cap in mlflow server, with its message.
UPLOAD_ARTIFACT_MAX_BYTES = 10 * 1024 * 1024


def _run_file(run: Run, path: str) -> str:
    """A file below the run's artifact root, as the store names it."""
    return join(artifact_uri_path(run.artifact_uri), path)


@route("GET", "get-artifact", raw=True, prefixes=ROOT)
def get_run_artifact(call: Call) -> ArtifactResponse:
    """One file of a run, `?run_uuid=<run>&path=<path below its root>`, as an attachment."""
    run_id = call.str("run_id") or call.str("run_uuid")
    if not run_id:
        raise missing("run_id")
    if "path" not in call.data:
        raise missing("path")
    path = clean_artifact_path(call.str("path"))
    run = run_get(workspace=call.workspace, run_id=run_id)
    folder = f"Artifact path refers to a directory, not a file: '{path}'"
    with named_as_given(path, folder_message=folder):
        reader = store_for(call.workspace).open(_run_file(run, path))
    return file_response(
        reader, path, content_type=_guess_mime_type(path), response_class=ArtifactResponse
    )


@route("GET", "2.0/mlflow/logged-models/<model_id>/artifacts/files", raw=True, prefixes=AJAX_ONLY)
def get_logged_model_artifact(call: Call) -> ArtifactResponse:
    """One file of a logged model, `?artifact_file_path=<path below its root>`, as an
    attachment (the web UI's model page reads MLmodel so); only under ajax-api/, as there."""
    if not call.str("artifact_file_path"):
        raise InvalidParameter('Request must include the "artifact_file_path" query parameter.')
    path = clean_artifact_path(call.str("artifact_file_path"))
    model = logged_model_get(workspace=call.workspace, model_id=call.args["model_id"])
    folder = f"Artifact path refers to a directory, not a file: '{path}'"
    with named_as_given(path, folder_message=folder):
        reader = store_for(call.workspace).open(
            join(artifact_uri_path(model.artifact_location), path)
        )
    return file_response(
        reader, path, content_type=_guess_mime_type(path), response_class=ArtifactResponse
    )


@route("POST", "2.0/mlflow/upload-artifact", write=True, raw=True, prefixes=AJAX_ONLY)
def upload_run_artifact(call: Call) -> HttpResponse:
    """The body, stored as `path` below the run's artifact root (mlflow's UI uploads
    with it). mlflow's checks and words, its 10 MB cap (or the server's, if lower)."""
    run_uuid = call.str("run_uuid")
    if not run_uuid:
        raise InvalidParameter("Request must specify run_uuid.")
    raw_path = call.str("path")
    if not raw_path:
        raise InvalidParameter("Request must specify path.")
    path = clean_artifact_path(raw_path)
    if not path:
        raise InvalidParameter("Invalid path")
    limit = min(UPLOAD_ARTIFACT_MAX_BYTES, settings.ARTIFACT_MAX_UPLOAD_BYTES)

    def too_large() -> StudioError | MlflowException:
        if limit == UPLOAD_ARTIFACT_MAX_BYTES:
            return MlflowException.invalid_parameter_value(
                "Artifact size is too large. Max size is 10MB."
            )
        return _upload_too_large(limit)

    chunks = request_body_chunks(call.request, limit, too_large)
    run = run_get(workspace=call.workspace, run_id=run_uuid)
    store_for(call.workspace).write(_run_file(run, path), _not_empty(chunks))
    return HttpResponse(b"", content_type="application/json")


def _not_empty(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks; an empty body is refused, and the store keeps nothing of it."""
    empty = True
    for chunk in chunks:
        empty = False
        yield chunk
    if empty:
        raise InvalidParameter("Request must specify data.")


# Direct-to-storage transfers are not offered: every byte goes through this server,
# which checks access on each request. The client recognises these answers (501
# NOT_IMPLEMENTED, MLflow's messages) and falls back to the proxied calls above.


@route("POST", "2.0/mlflow-artifacts/mpu/create/<path:artifact_path>", write=True, raw=True)
@route("POST", "2.0/mlflow-artifacts/mpu/complete/<path:artifact_path>", write=True, raw=True)
@route("POST", "2.0/mlflow-artifacts/mpu/abort/<path:artifact_path>", write=True, raw=True)
def multipart_upload(call: Call) -> dict:
    raise _UnsupportedMultipartUploadException()


@route("GET", "2.0/mlflow-artifacts/presigned/<path:artifact_path>", raw=True)
def presigned_download(call: Call) -> dict:
    raise _UnsupportedMultipartDownloadException()


@route("POST", "2.0/mlflow/artifacts/presigned-upload-url", write=True, raw=True)
def presigned_upload_url(call: Call) -> dict:
    raise _UnsupportedPresignedUploadException()


@route("POST", "2.0/mlflow/artifacts/presigned-download-url", raw=True)
def presigned_download_url(call: Call) -> dict:
    raise _UnsupportedPresignedDownloadException()
