"""Artifact paths from URLs, made safe before any store sees them, and store errors that
name a path as the user gave it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlparse

from portal.errors import InvalidParameter, NotFound

MAX_PATH_LENGTH = 1024  # Blob names are at most 1,024 characters
MAX_SEGMENT_BYTES = 255  # a file name on common file systems
_DRIVE = re.compile(r"^[A-Za-z]:")


def _fully_unquoted(raw: str) -> str:
    """Unquote until nothing changes, so %252e%252e is caught as `..`."""
    value = raw
    for _ in range(8):
        decoded = unquote(value)
        if decoded == value:
            return value
        value = decoded
    raise InvalidParameter("Invalid path: too many levels of percent-encoding.")


def clean_artifact_path(raw: str | None) -> str:
    """A relative artifact path ("dir/file.txt", "" for the root), or INVALID_PARAMETER_VALUE.

    Idempotent: the result is stable under another round of decoding, so layers may
    call it again. A trailing slash is dropped; everything that could point
    elsewhere than below the root (`..`, absolute paths, backslashes, drive
    letters, control characters, empty or `.` segments) is refused."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidParameter("Invalid path: expected a string.")
    path = _fully_unquoted(raw)
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in path):
        raise InvalidParameter("Invalid path: control characters are not allowed.")
    if "\\" in path:
        raise InvalidParameter("Invalid path: backslashes are not allowed.")
    if path.startswith("/") or _DRIVE.match(path):
        raise InvalidParameter("Invalid path: artifact paths are relative.")
    path = path.rstrip("/")
    if not path:
        return ""
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidParameter(f"Invalid path: longer than {MAX_PATH_LENGTH} characters.")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidParameter("Invalid path: empty, '.' and '..' segments are not allowed.")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidParameter("Invalid path: a name is longer than 255 bytes.")
    return path


def join(*parts: str) -> str:
    """Join clean relative paths; empty parts (the root) vanish."""
    return "/".join(part for part in parts if part)


def artifact_uri_path(uri: str) -> str:
    """The path below the workspace root of an `mlflow-artifacts:/<path>` URI
    (a run's artifact_uri, a logged model's artifact_location)."""
    parsed = urlparse(uri)
    if parsed.scheme != "mlflow-artifacts":
        raise InvalidParameter("Only mlflow-artifacts:/ locations are served by this server.")
    return clean_artifact_path(parsed.path.lstrip("/"))


def require_clean_path(raw: str | None, *, file: bool = False) -> str:
    path = clean_artifact_path(raw)
    if file and not path:
        raise InvalidParameter("Say which file: ?path=<artifact path>.")
    return path


@contextmanager
def named_as_given(path: str, *, folder_message: str) -> Iterator[None]:
    """Store errors that name the path as the user gave it, not as the store holds it
    (below the experiment's and the run's folders); a folder opened as a file answers
    `folder_message`."""
    try:
        yield
    except NotFound:
        raise NotFound(f"No such artifact: '{path}'.") from None
    except InvalidParameter as exc:
        if "directory" in exc.message:
            raise InvalidParameter(folder_message) from None
        raise
