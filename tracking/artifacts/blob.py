"""Artifacts in Azure Blob Storage: a container URL with an optional prefix.

`https://<account>.blob.core.windows.net/<container>[/<prefix>]`, or path style as
Azurite serves it, `http://127.0.0.1:10000/<account>/<container>[/<prefix>]`.
Credentials, first found: a SAS in the URL's query, AZURE_STORAGE_CONNECTION_STRING
(account key or SAS), DefaultAzureCredential. None of them ever reaches a response.
"""

from __future__ import annotations

import functools
import threading
import uuid
from base64 import b64encode
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobPrefix, ContainerClient, ContentSettings
from django.conf import settings
from mlflow.utils.mime_type_utils import _guess_mime_type

from portal.errors import InvalidParameter, NotFound
from tracking.artifacts.base import CHUNK_SIZE, ArtifactEntry, ArtifactReader, ArtifactStore
from tracking.artifacts.paths import clean_artifact_path, join

BLOCK_SIZE = 4 * 1024 * 1024  # what one upload request carries; also the download window
DELETE_BATCH = 256  # the most one batch request may hold


@dataclass(frozen=True)
class BlobLocation:
    account_url: str
    container: str
    prefix: str
    sas: str  # "" when the URL carries none


def parse_blob_url(url: str) -> BlobLocation:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not a Blob container URL")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    base = f"{parts.scheme}://{parts.netloc}"
    if ".blob." not in parts.hostname:  # path style: the account is the first segment
        if not segments:
            raise ValueError("a path-style Blob URL names the account first")
        base = f"{base}/{segments.pop(0)}"
    if not segments:
        raise ValueError("a Blob URL must name a container")
    prefix = clean_artifact_path("/".join(segments[1:]))
    return BlobLocation(base, segments[0], prefix, parts.query)


def _connection_string_credential(value: str) -> Any:
    fields = {}
    for item in value.split(";"):
        key, sep, val = item.partition("=")
        if sep:
            fields[key.strip().lower()] = val.strip()
    if fields.get("accountname") and fields.get("accountkey"):
        return {"account_name": fields["accountname"], "account_key": fields["accountkey"]}
    if fields.get("sharedaccesssignature"):
        return fields["sharedaccesssignature"]
    return None


_default_credential = None
_default_credential_lock = threading.Lock()


def _azure_default_credential() -> Any:
    """One DefaultAzureCredential per process: it caches its tokens."""
    global _default_credential
    with _default_credential_lock:
        if _default_credential is None:
            from azure.identity import DefaultAzureCredential

            _default_credential = DefaultAzureCredential()
        return _default_credential


@functools.lru_cache(maxsize=64)
def _container_client(
    account_url: str, container: str, sas: str, connection_string: str
) -> ContainerClient:
    credential = sas or (
        _connection_string_credential(connection_string) if connection_string else None
    )
    if credential is None:
        credential = _azure_default_credential()
    return ContainerClient(
        account_url,
        container,
        credential=credential,
        max_single_get_size=BLOCK_SIZE,
        max_chunk_get_size=BLOCK_SIZE,
        max_single_put_size=BLOCK_SIZE,
        max_block_size=BLOCK_SIZE,
    )


class BlobReader(ArtifactReader):
    def __init__(self, downloader: Any) -> None:
        self.size = downloader.size
        self._chunks = downloader.chunks()
        self._buffer = b""

    def read(self, n: int = CHUNK_SIZE) -> bytes:
        if n is None or n < 0:
            return self._buffer + b"".join(self._chunks)
        while len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        result, self._buffer = self._buffer[:n], self._buffer[n:]
        return result

    def __iter__(self) -> Iterator[bytes]:
        if self._buffer:
            yield self._buffer
            self._buffer = b""
        yield from self._chunks

    def close(self) -> None:
        self._chunks = iter(())
        self._buffer = b""


class BlobArtifactStore(ArtifactStore):
    def __init__(self, container: ContainerClient, prefix: str = "") -> None:
        self.container = container
        self.prefix = clean_artifact_path(prefix)

    @classmethod
    def from_url(cls, url: str) -> BlobArtifactStore:
        location = parse_blob_url(url)
        connection_string = getattr(settings, "AZURE_STORAGE_CONNECTION_STRING", "") or ""
        client = _container_client(
            location.account_url, location.container, location.sas, connection_string
        )
        return cls(client, location.prefix)

    def __repr__(self) -> str:
        return f"BlobArtifactStore({self.container.container_name!r})"

    def _name(self, path: str) -> str:
        return join(self.prefix, clean_artifact_path(path))

    def _relative(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def _blobs_under(self, name: str, **kwargs: Any) -> Iterator[Any]:
        below = f"{name}/" if name else ""
        return iter(self.container.list_blobs(name_starts_with=below or None, **kwargs))

    def _has_blobs_under(self, name: str) -> bool:
        return next(self._blobs_under(name, results_per_page=1), None) is not None

    # --- reads ----------------------------------------------------------------------

    def list(self, path: str = "") -> list[ArtifactEntry]:
        path = clean_artifact_path(path)
        name = self._name(path)
        below = f"{name}/" if name else ""
        folders: dict[str, ArtifactEntry] = {}
        files: dict[str, ArtifactEntry] = {}
        items = self.container.walk_blobs(
            name_starts_with=below or None, delimiter="/", include=["metadata"]
        )
        for item in items:
            child = item.name[len(below) :].rstrip("/")
            if not child or "/" in child:
                continue
            if isinstance(item, BlobPrefix):
                folders[child] = ArtifactEntry(join(path, child), True, None)
            elif not _is_folder_marker(item):
                files[child] = ArtifactEntry(join(path, child), False, item.size)
        # Hierarchical-namespace accounts list a folder both ways; it is a folder.
        entries = list(folders.values()) + [e for n, e in files.items() if n not in folders]
        return sorted(entries, key=lambda e: e.path)

    def walk(self, path: str = "") -> Iterator[ArtifactEntry]:
        for blob in self._blobs_under(self._name(path), include=["metadata"]):
            if not _is_folder_marker(blob):
                yield ArtifactEntry(self._relative(blob.name), False, blob.size)

    def open(self, path: str) -> BlobReader:
        path = clean_artifact_path(path)
        if not path:
            raise InvalidParameter("Artifact path refers to a directory, not a file: ''")
        name = self._name(path)
        try:
            downloader = self.container.get_blob_client(name).download_blob(max_concurrency=1)
        except ResourceNotFoundError:
            if self._has_blobs_under(name):
                raise InvalidParameter(
                    f"Artifact path refers to a directory, not a file: '{path}'"
                ) from None
            raise NotFound(f"No such artifact: '{path}'") from None
        return BlobReader(downloader)

    def exists(self, path: str) -> bool:
        name = self._name(path)
        if name and self.container.get_blob_client(name).exists():
            return True
        return self._has_blobs_under(name)

    # --- writes ---------------------------------------------------------------------

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        path = clean_artifact_path(path)
        if not path:
            raise InvalidParameter("Invalid path: a file needs a name.")
        blob = self.container.get_blob_client(self._name(path))
        content = ContentSettings(content_type=_guess_mime_type(path))
        blocks = _blocks(chunks)
        first = next(blocks, b"")
        second = next(blocks, None)
        if second is None:  # small: one request
            blob.upload_blob(first, overwrite=True, content_settings=content)
            return len(first)
        # Large: stage blocks one at a time and commit them at the end, so memory
        # stays at one block and the blob changes only when the whole file is in.
        ids = []
        size = 0
        for block in _chain(first, second, blocks):
            block_id = b64encode(uuid.uuid4().hex.encode()).decode()
            blob.stage_block(block_id, block, length=len(block))
            ids.append(BlobBlock(block_id=block_id))
            size += len(block)
        blob.commit_block_list(ids, content_settings=content)
        return size

    def delete(self, path: str) -> None:
        if not clean_artifact_path(path):
            raise InvalidParameter("Invalid path: name what to delete.")
        self._delete_tree(self._name(path))

    def delete_prefix(self, prefix: str = "") -> None:
        self._delete_tree(self._name(prefix))

    def _delete_tree(self, name: str) -> None:
        """Delete the blob `name` and every blob below it, in batches, streaming the
        listing. Folder markers (hierarchical-namespace accounts) go last, deepest
        first, since a folder must be empty to be deleted."""
        markers: list[str] = []

        def files() -> Iterator[str]:
            for blob in self._blobs_under(name, include=["metadata"]):
                if _is_folder_marker(blob):
                    markers.append(blob.name)
                else:
                    yield blob.name

        self._delete_names(files())
        markers.sort(key=lambda n: n.count("/"), reverse=True)
        self._delete_names([*markers, name] if name else markers)

    def _delete_names(self, names: Iterable[str]) -> None:
        names = iter(names)
        while batch := list(islice(names, DELETE_BATCH)):
            for response in self.container.delete_blobs(*batch, raise_on_any_failure=False):
                if response.status_code not in (200, 202, 404):
                    raise RuntimeError(f"Blob delete failed with HTTP {response.status_code}")


def _is_folder_marker(blob: Any) -> bool:
    return (blob.metadata or {}).get("hdi_isfolder") == "true"


def _blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Regroup a stream's chunks into blocks of BLOCK_SIZE (the last may be shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= BLOCK_SIZE:
            yield bytes(buffer[:BLOCK_SIZE])
            del buffer[:BLOCK_SIZE]
    if buffer:
        yield bytes(buffer)


def _chain(first: bytes, second: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield second
    yield from rest
