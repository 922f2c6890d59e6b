"""Source snapshots: the zip of a run's source directory, stored once per content.

Stored in the workspace's artifact store at `snapshots/<sha256>.zip`, after the checks
the worker's unpacker makes on its central directory (deployments.runner.snapshot), so
a zip no worker would unpack is refused at upload with the reason.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser

from deployments.runner.snapshot import (
    DEFAULT_MAX_TOTAL_BYTES,
    SnapshotError,
    inspect_snapshot,
)
from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from portal.services import audit_record
from tracking.artifacts import CHUNK_SIZE, UploadTooLarge, store_for

HASH_RE = re.compile(r"^[0-9a-f]{64}$")
# The upload (compressed) may be no larger than what it may unpack to.
MAX_UPLOAD_BYTES = DEFAULT_MAX_TOTAL_BYTES


def snapshot_path(snapshot_hash: str) -> str:
    if not isinstance(snapshot_hash, str) or not HASH_RE.match(snapshot_hash):
        raise InvalidParameter("A snapshot hash is 64 lowercase hexadecimal characters.")
    return f"snapshots/{snapshot_hash}.zip"


Source = bytes | BinaryIO | Iterable[bytes]


def _chunks(source: Source) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        for start in range(0, len(data), CHUNK_SIZE):
            yield data[start : start + CHUNK_SIZE]
        return
    if not hasattr(source, "read"):  # chunks already (a request body being streamed)
        yield from source
        return
    while chunk := source.read(CHUNK_SIZE):
        yield chunk


def snapshot_too_large() -> UploadTooLarge:
    return UploadTooLarge(
        f"The snapshot is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB; leave large "
        "data out of the source directory and read it from storage in the script."
    )


def snapshot_store(
    *,
    actor: AbstractBaseUser | None,
    workspace: Workspace,
    source: Source,
    expected_hash: str | None = None,
) -> dict:
    """Store a source zip (bytes, a binary stream or an iterable of chunks); returns
    {hash, files, size, stored} — `stored` is False when the same bytes were stored
    before. With `expected_hash` (the hash the uploader named it by), bytes of another
    hash are refused. Past MAX_UPLOAD_BYTES: UploadTooLarge (413)."""
    if expected_hash is not None:
        snapshot_path(expected_hash)  # its form, before anything is read
    digest = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        for chunk in _chunks(source):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise snapshot_too_large()
            digest.update(chunk)
            spool.write(chunk)
        snapshot_hash = digest.hexdigest()
        if expected_hash is not None and snapshot_hash != expected_hash:
            raise InvalidParameter(
                f"The uploaded bytes have sha256 {snapshot_hash}, not {expected_hash}: "
                "the upload was changed or cut short."
            )
        spool.seek(0)
        try:
            files = inspect_snapshot(spool)
        except SnapshotError as exc:
            raise InvalidParameter(f"The snapshot was refused: {exc}") from None
        path = snapshot_path(snapshot_hash)
        store = store_for(workspace)
        stored = not store.exists(path)
        if stored:
            spool.seek(0)
            store.write(path, _chunks(spool))
            audit_record(
                actor=actor,
                action="snapshot_upload",
                target=workspace,
                changes={"snapshot": snapshot_hash, "files": len(files), "bytes": size},
            )
    return {"hash": snapshot_hash, "files": len(files), "size": size, "stored": stored}


def snapshot_exists(*, workspace: Workspace, snapshot_hash: str) -> bool:
    return store_for(workspace).exists(snapshot_path(snapshot_hash))


def snapshot_files(*, workspace: Workspace, snapshot_hash: str) -> list[dict]:
    """The files of a stored snapshot: [{path, size}], in the zip's order."""
    path = snapshot_path(snapshot_hash)
    store = store_for(workspace)
    if not store.exists(path):
        raise NotFound(f"No snapshot {snapshot_hash} in this workspace.")
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        with store.open(path) as reader:
            for chunk in reader:
                spool.write(chunk)
        spool.seek(0)
        try:
            members = inspect_snapshot(spool)
        except SnapshotError as exc:  # stored before a limit was lowered
            raise InvalidParameter(f"The stored snapshot cannot be read: {exc}") from None
    return [{"path": name, "size": size} for name, size in members]
