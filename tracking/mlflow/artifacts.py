"""The proxied artifact API (`/api/2.0/mlflow-artifacts/...`) and run artifact listing.

Artifact paths are relative to the workspace's artifact root, so nothing of another
workspace can be named. Uploads stream the request body to the store in chunks
(never `request.body`); downloads stream the store to the client as attachments.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from mlflow.exceptions import (
    _UnsupportedMultipartDownloadException,
    _UnsupportedMultipartUploadException,
    _UnsupportedPresignedDownloadException,
    _UnsupportedPresignedUploadException,
)
from mlflow.utils.mime_type_utils import _guess_mime_type

from portal.errors import InvalidParameter, StudioError
from tracking.artifacts import (
    CHUNK_SIZE,
    ArtifactEntry,
    UploadTooLarge,
    clean_artifact_path,
    list_under_uri,
    store_for,
)
from tracking.artifacts.responses import file_response
from tracking.mlflow.protocol import Call, route
from tracking.selectors import run_get

ARTIFACTS = "2.0/mlflow-artifacts/artifacts"


class LengthRequired(StudioError):
    code = "INVALID_PARAMETER_VALUE"
    http_status = 411


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


def _body_chunks(call: Call, length: int, limit: int):
    """The request body in chunks, read from the stream; raises (so the store drops
    the partial file) past the limit or when the client stops short."""
    received = 0
    while chunk := call.request.read(min(CHUNK_SIZE, length - received)):
        received += len(chunk)
        if received > limit:
            raise _upload_too_large(limit)
        yield chunk
        if received >= length:
            break
    if received < length:
        raise InvalidParameter("The upload ended before its Content-Length was received.")


@route("PUT", f"{ARTIFACTS}/<path:artifact_path>", write=True, raw=True)
def upload_artifact(call: Call) -> dict:
    path = _file_path(call)
    raw_length = call.request.META.get("CONTENT_LENGTH") or ""
    if not raw_length.strip():
        if call.request.META.get("HTTP_TRANSFER_ENCODING"):
            raise LengthRequired("Artifact uploads need a Content-Length header.")
        raw_length = "0"
    try:
        length = int(raw_length)
    except ValueError:
        raise InvalidParameter("Invalid Content-Length header.") from None
    limit = settings.ARTIFACT_MAX_UPLOAD_BYTES
    if length > limit:
        raise _upload_too_large(limit)
    store_for(call.workspace).write(path, _body_chunks(call, length, limit))
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
    run_id = call.str("run_id") or call.str("run_uuid", required=True)
    path = clean_artifact_path(call.str("path"))
    run = run_get(workspace=call.workspace, run_id=run_id)
    files = [file_info(e, e.path) for e in list_under_uri(call.workspace, run.artifact_uri, path)]
    response: dict = {"root_uri": run.artifact_uri}
    if files:
        response["files"] = files
    return response


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
