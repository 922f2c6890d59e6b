"""What every artifact store offers: list, stream out, stream in, delete."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from portal.errors import StudioError

CHUNK_SIZE = 1024 * 1024  # what streams move at a time, both ways


@dataclass(frozen=True)
class ArtifactEntry:
    """One entry of a listing. `path` is relative to the store's root (the workspace's
    artifact root), as MLflow's artifact repositories list them."""

    path: str
    is_dir: bool
    file_size: int | None = None  # None for folders

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class UploadTooLarge(StudioError):
    code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 413


class ArtifactReader(abc.ABC):
    """An open artifact: iterate it for chunks, or read(n); close it when done.
    Streaming responses close it when the client has it all (or goes away)."""

    size: int

    @abc.abstractmethod
    def read(self, n: int = CHUNK_SIZE) -> bytes: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_SIZE):
            yield chunk

    def __enter__(self) -> ArtifactReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArtifactStore(abc.ABC):
    """A workspace's artifacts. Every `path` is a relative artifact path that has
    been through `clean_artifact_path` ("" is the root); stores check it again.

    Errors: portal.errors.InvalidParameter for a path that is not acceptable,
    NotFound for a file that does not exist."""

    @abc.abstractmethod
    def list(self, path: str = "") -> list[ArtifactEntry]:
        """The direct children of folder `path`, sorted by path; [] when `path` is a
        file or does not exist (as MLflow's repositories answer)."""

    @abc.abstractmethod
    def walk(self, path: str = "") -> Iterator[ArtifactEntry]:
        """Every file below folder `path`, recursively (no folder entries)."""

    @abc.abstractmethod
    def open(self, path: str) -> ArtifactReader:
        """The file at `path` for streaming; NotFound if there is none, InvalidParameter
        if it is a folder."""

    @abc.abstractmethod
    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        """Store the file at `path` from `chunks` (replacing any), returning its size.
        Nothing is left behind when `chunks` raises: readers see the old file or the
        whole new one, never a part."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove the file or the folder (recursively) at `path`; no error when absent."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str = "") -> None:
        """Purge everything under `prefix`; "" purges the whole root (workspace purge)."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a file or a folder is at `path` (Blob Storage has no empty folders)."""

    def append(self, path: str, offset: int, data: bytes) -> int:
        """Write `data` at byte `offset` of the file at `path` (made if absent), dropping
        whatever lay at or past `offset`; returns the new size. For a log that grows in
        batches (a remote run's output). This one rewrites the file; stores that can
        write in place do better. The caller serialises appends to one file."""
        head = self.read_range(path, 0, offset) if self.exists(path) else b""
        if len(head) < offset:
            raise ValueError(f"offset {offset} is past the end of the file ({len(head)} bytes)")
        return self.write(path, [head, data])

    def read_range(self, path: str, offset: int, limit: int) -> bytes:
        """Up to `limit` bytes of the file at `path` from byte `offset` (for tailing)."""
        out = bytearray()
        skipped = 0
        with self.open(path) as reader:
            for chunk in reader:
                if skipped + len(chunk) <= offset:
                    skipped += len(chunk)
                    continue
                start = max(offset - skipped, 0)
                skipped += len(chunk)
                out += chunk[start : start + limit - len(out)]
                if len(out) >= limit:
                    break
        return bytes(out)
