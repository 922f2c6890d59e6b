"""Artifacts in a local folder (the embedded default).

Nothing here follows a symbolic link: a link found inside the root (put there by
someone with shell access, since the API cannot create one) is neither read,
listed, written through nor descended into, so it cannot reach outside the root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from portal.errors import InvalidParameter, NotFound
from tracking.artifacts.base import ArtifactEntry, ArtifactReader, ArtifactStore
from tracking.artifacts.paths import clean_artifact_path, join

# Uploads in progress: hidden from listings, refused as artifact names.
TEMP_PREFIX = ".mlstudio-upload-"


class LocalReader(ArtifactReader):
    def __init__(self, fd: int, size: int) -> None:
        self._file = os.fdopen(fd, "rb")
        self.size = size

    def read(self, n: int = -1) -> bytes:
        return self._file.read(n)

    def close(self) -> None:
        self._file.close()


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        if not root.is_absolute():
            raise ValueError("a local artifact root must be an absolute path")
        self.root = root

    def __repr__(self) -> str:
        return "LocalArtifactStore()"  # never show server paths

    # --- paths ---------------------------------------------------------------------

    def _real_root(self) -> str:
        return os.path.realpath(self.root)

    def _locate(self, path: str) -> tuple[str, list[str]]:
        """(absolute target, segments) for a relative path, refusing symlinks on the way."""
        path = clean_artifact_path(path)
        segments = path.split("/") if path else []
        if any(segment.startswith(TEMP_PREFIX) for segment in segments):
            raise InvalidParameter("Invalid path: this name is reserved.")
        root = self._real_root()
        current = root
        for segment in segments:
            current = os.path.join(current, segment)
            if os.path.islink(current):
                raise InvalidParameter("Invalid path: links are not followed.")
        # Defence in depth: the resolved target must still lie below the root.
        resolved = os.path.realpath(current)
        if resolved != root and not resolved.startswith(root.rstrip(os.sep) + os.sep):
            raise InvalidParameter("Invalid path: outside the artifact root.")
        return current, segments

    # --- reads ----------------------------------------------------------------------

    def list(self, path: str = "") -> list[ArtifactEntry]:
        target, _ = self._locate(path)
        path = clean_artifact_path(path)
        try:
            with os.scandir(target) as entries:
                found = [_entry(path, item) for item in entries]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted((e for e in found if e is not None), key=lambda e: e.path)

    def walk(self, path: str = "") -> Iterator[ArtifactEntry]:
        target, _ = self._locate(path)
        path = clean_artifact_path(path)
        try:
            with os.scandir(target) as scan:
                entries = sorted(scan, key=lambda item: item.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for item in entries:
            entry = _entry(path, item)
            if entry is None:
                continue
            if entry.is_dir:
                yield from self.walk(entry.path)
            else:
                yield entry

    def open(self, path: str) -> LocalReader:
        target, segments = self._locate(path)
        if not segments:
            raise InvalidParameter("Artifact path refers to a directory, not a file: ''")
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"No such artifact: '{join(*segments)}'") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InvalidParameter("Invalid path: links are not followed.") from None
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise InvalidParameter(
                f"Artifact path refers to a directory, not a file: '{join(*segments)}'"
            )
        return LocalReader(fd, info.st_size)

    def exists(self, path: str) -> bool:
        target, _ = self._locate(path)
        return os.path.lexists(target)

    # --- writes ---------------------------------------------------------------------

    def _make_parents(self, segments: list[str], created: list[str]) -> str:
        """Create the folders of a file path one level at a time, never through a link;
        the ones it made are appended to `created`."""
        current = self._real_root()
        os.makedirs(current, exist_ok=True)
        for segment in segments[:-1]:
            current = os.path.join(current, segment)
            try:
                os.mkdir(current)
                created.append(current)
            except FileExistsError:
                info = os.lstat(current)
                if stat.S_ISLNK(info.st_mode):
                    raise InvalidParameter("Invalid path: links are not followed.") from None
                if not stat.S_ISDIR(info.st_mode):
                    raise InvalidParameter(
                        f"Invalid path: '{segment}' is a file, not a folder."
                    ) from None
        return current

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        target, segments = self._locate(path)
        if not segments:
            raise InvalidParameter("Invalid path: a file needs a name.")
        created: list[str] = []
        try:
            return self._write(target, segments, chunks, created)
        except BaseException:
            # A failed upload (too large, cut short) leaves no folder it made behind,
            # so listings show nothing of it; ones filled meanwhile stay.
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
            raise

    def _write(
        self, target: str, segments: list[str], chunks: Iterable[bytes], created: list[str]
    ) -> int:
        folder = self._make_parents(segments, created)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
            os.chmod(temp, 0o644)
            if os.path.isdir(target) and not os.path.islink(target):
                raise InvalidParameter(
                    f"Invalid path: '{join(*segments)}' is a folder, not a file."
                )
            os.replace(temp, target)  # atomic; replaces a link itself, never its target
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return size

    def append(self, path: str, offset: int, data: bytes) -> int:
        """In place: the file is cut at `offset` and `data` written there (no rewrite)."""
        target, segments = self._locate(path)
        if not segments:
            raise InvalidParameter("Invalid path: a file needs a name.")
        self._make_parents(segments, [])
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(target, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InvalidParameter("Invalid path: links are not followed.") from None
            if exc.errno == errno.EISDIR:
                raise InvalidParameter(
                    f"Invalid path: '{join(*segments)}' is a folder, not a file."
                ) from None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise InvalidParameter(f"Invalid path: '{join(*segments)}' is not a file.")
            if info.st_size < offset:
                raise ValueError(
                    f"offset {offset} is past the end of the file ({info.st_size} bytes)"
                )
            os.ftruncate(fd, offset)
            written = 0
            while written < len(data):
                written += os.pwrite(fd, data[written:], offset + written)
            return offset + written
        finally:
            os.close(fd)

    def read_range(self, path: str, offset: int, limit: int) -> bytes:
        with self.open(path) as reader:
            reader._file.seek(offset)
            return reader.read(limit)

    def delete(self, path: str) -> None:
        target, segments = self._locate(path)
        if not segments:
            raise InvalidParameter("Invalid path: name what to delete.")
        _remove(target)

    def delete_prefix(self, prefix: str = "") -> None:
        target, _ = self._locate(prefix)
        _remove(target)


def _entry(parent: str, item: os.DirEntry) -> ArtifactEntry | None:
    if item.name.startswith(TEMP_PREFIX) or item.is_symlink():
        return None
    if item.is_dir(follow_symlinks=False):
        return ArtifactEntry(join(parent, item.name), True, None)
    if item.is_file(follow_symlinks=False):
        return ArtifactEntry(
            join(parent, item.name), False, item.stat(follow_symlinks=False).st_size
        )
    return None  # sockets, fifos, devices: not artifacts


def _remove(target: str) -> None:
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(target)  # unlinks links inside, never descends into them
    else:
        os.unlink(target)
