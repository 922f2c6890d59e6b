"""REST API v1: source snapshots, uploaded as raw zip bytes named by their sha256."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest

from deployments.services import snapshots
from deployments.tests.factories import make_zip
from portal.models import AuditEntry
from portal.tests.api import api, assert_error
from tracking.artifacts import UploadTooLarge, store_for
from tracking.tests.api_v1 import isolate, url


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path) -> None:
    isolate(settings, tmp_path)


def _put(client, cast, data: bytes, sha256: str | None = None):
    sha256 = sha256 or hashlib.sha256(data).hexdigest()
    return client.put(url(cast, "api-snapshot", sha256=sha256), data, "application/zip")


def _stored(cast) -> list[str]:
    return sorted(e.path for e in store_for(cast.workspace).walk())


def test_upload_then_head_then_list(cast) -> None:
    client = api(cast, "contributor")
    data = make_zip({"train.py": "print(1)\n", "pkg/util.py": "X = 1\n"})
    sha256 = hashlib.sha256(data).hexdigest()
    assert client.head(url(cast, "api-snapshot", sha256=sha256)).status_code == 404
    response = _put(client, cast, data)
    assert response.status_code == 201, response.content
    assert response.json() == {"snapshot_hash": sha256, "size": len(data), "files": 2}
    assert _stored(cast) == [f"snapshots/{sha256}.zip"]
    # Stored once: the same bytes again are a 200, and not audited twice.
    again = _put(client, cast, data)
    assert again.status_code == 200 and again.json() == response.json()
    assert AuditEntry.objects.filter(action="snapshot_upload").count() == 1
    reader = api(cast, "reader")
    head = reader.head(url(cast, "api-snapshot", sha256=sha256))
    assert head.status_code == 200 and head.content == b""
    listed = reader.get(url(cast, "api-snapshot", sha256=sha256))
    assert listed.json() == {
        "snapshot_hash": sha256,
        "files": [{"path": "train.py", "size": 9}, {"path": "pkg/util.py", "size": 6}],
    }


def test_bytes_of_another_hash_are_refused_and_not_stored(cast) -> None:
    client = api(cast)
    data = make_zip()
    other = hashlib.sha256(b"something else").hexdigest()
    response = _put(client, cast, data, sha256=other)
    message = assert_error(response, 400, "INVALID_PARAMETER_VALUE")["message"]
    assert hashlib.sha256(data).hexdigest() in message and other in message
    assert _stored(cast) == []
    assert client.head(url(cast, "api-snapshot", sha256=other)).status_code == 404


@pytest.mark.parametrize("name", ["ABC", "0" * 63, "F" * 64, "g" * 64, "0" * 65])
def test_a_malformed_hash_is_a_400(cast, name) -> None:
    client = api(cast)
    message = assert_error(_put(client, cast, make_zip(), sha256=name), 400)["message"]
    assert "64 lowercase hexadecimal" in message
    assert_error(client.get(url(cast, "api-snapshot", sha256=name)), 400)
    assert client.head(url(cast, "api-snapshot", sha256=name)).status_code == 400


def _zip_with(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "x")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a zip at all", "refused"),
        (b"", "refused"),
        (_zip_with("../escape.py"), "refused"),
        (_zip_with("/etc/passwd"), "refused"),
    ],
)
def test_a_zip_no_worker_would_unpack_is_refused_with_the_reason(cast, data, reason) -> None:
    message = assert_error(_put(api(cast), cast, data), 400)["message"]
    assert reason in message
    assert _stored(cast) == []


def test_past_the_size_limit_is_a_413_before_anything_is_read(cast, monkeypatch) -> None:
    monkeypatch.setattr(snapshots, "MAX_UPLOAD_BYTES", 1000)
    data = make_zip({"big.bin": os.urandom(5000)})
    body = assert_error(_put(api(cast), cast, data), 413, "REQUEST_LIMIT_EXCEEDED")
    assert "larger than" in body["message"]
    assert _stored(cast) == []


def test_the_service_stops_a_stream_past_the_limit(cast, monkeypatch) -> None:
    """A stream without a known length (chunked) is cut where it passes the limit."""
    monkeypatch.setattr(snapshots, "MAX_UPLOAD_BYTES", 1000)
    chunks = iter([b"x" * 600, b"x" * 600, b"never read"])
    with pytest.raises(UploadTooLarge):
        snapshots.snapshot_store(actor=cast.owner, workspace=cast.workspace, source=chunks)
    assert next(chunks) == b"never read"
    assert _stored(cast) == []


def test_the_body_is_streamed_not_held_in_memory(cast, settings) -> None:
    """Django refuses `request.body` past DATA_UPLOAD_MAX_MEMORY_SIZE; the upload reads
    the stream in chunks, so a snapshot may be far larger than that."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    data = make_zip({"data.bin": os.urandom(200_000)})
    assert _put(api(cast), cast, data).status_code == 201


def test_unknown_snapshots_are_404(cast) -> None:
    client = api(cast)
    sha256 = hashlib.sha256(b"nothing").hexdigest()
    assert_error(client.get(url(cast, "api-snapshot", sha256=sha256)), 404)
    assert client.head(url(cast, "api-snapshot", sha256=sha256)).status_code == 404
