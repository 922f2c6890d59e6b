"""Source snapshots: a zip of the submitted directory, unpacked safely into a job's dir.

Decisions:

- **Every member is checked before anything is written.** A name is refused when it is
  absolute (`/x`, `C:x`), has a `..` component, a backslash, a NUL or control
  character; when it is a symlink, device, FIFO or socket
  (by the Unix mode bits in `external_attr`); when it repeats (case included: the tree
  must unpack the same on any filesystem); when a file's name is also used as a
  directory. A refused zip writes nothing.
- **Limits** on the file count and the total uncompressed size, checked first on the
  sizes the zip declares and again on the bytes actually written (zipfile stops a member
  at its declared size and checks its CRC, so a lying header fails either way).
- **Writes cannot be redirected**: files are created with `O_EXCL | O_NOFOLLOW` under
  directories this code made, in a destination that must be new or empty. Modes are
  0644, or 0755 when the zip marks a file executable; owners are the caller's.
- **On failure** the destination is left as it was found (removed if we created it,
  emptied if it was empty), and `SnapshotError` says which member and why.
- **Content addressing**: `snapshot_hash` is the sha256 of the zip's bytes, so the same
  zip is stored once. (Equal trees zipped twice may differ in timestamps; making the
  zip reproducible is the packer's job.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

__all__ = [
    "DEFAULT_MAX_FILES",
    "DEFAULT_MAX_TOTAL_BYTES",
    "SnapshotError",
    "SnapshotInfo",
    "inspect_snapshot",
    "snapshot_hash",
    "unpack_snapshot",
]

DEFAULT_MAX_FILES = 10_000
DEFAULT_MAX_TOTAL_BYTES = 300 * 1024 * 1024
_CHUNK = 1024 * 1024


class SnapshotError(Exception):
    """The snapshot cannot be unpacked; the message says which member and why."""


@dataclass(frozen=True)
class SnapshotInfo:
    files: int
    total_bytes: int
    hash: str


def snapshot_hash(source: bytes | Path | BinaryIO) -> str:
    """sha256 (hex) of a zip's bytes: given as bytes, a path, or a binary file object."""
    digest = hashlib.sha256()
    if isinstance(source, bytes | bytearray | memoryview):
        digest.update(source)
        return digest.hexdigest()
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            return _hash_stream(fh, digest)
    return _hash_stream(source, digest)


def _hash_stream(fh: BinaryIO, digest) -> str:
    while chunk := fh.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _safe_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    name = info.filename
    if not name or any(c == "\\" or ord(c) < 32 or ord(c) == 127 for c in name):
        raise SnapshotError(f"refused {name!r}: backslash or control character in the name")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        raise SnapshotError(f"refused {name!r}: absolute path")
    parts = tuple(p for p in path.parts if p not in ("", "."))
    if not parts or ".." in parts:
        raise SnapshotError(f"refused {name!r}: path leaves the snapshot")
    if ":" in parts[0]:
        raise SnapshotError(f"refused {name!r}: drive letter")
    return parts


def _member_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.is_dir():
        if mode and not stat.S_ISDIR(mode):
            raise SnapshotError(f"refused {info.filename!r}: not a plain directory")
        return "dir"
    if mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        kind = "symlink" if stat.S_ISLNK(mode) else "special file"
        raise SnapshotError(f"refused {info.filename!r}: a {kind}")
    return "file"


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    is_dir: bool
    executable: bool


def _plan(infos: Iterable[zipfile.ZipInfo], max_files: int, max_total_bytes: int) -> list[_Member]:
    members: list[_Member] = []
    seen: dict[str, str] = {}  # casefolded path -> "dir" | "file"
    files = total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise SnapshotError(f"refused {info.filename!r}: encrypted")
        parts = _safe_parts(info)
        kind = _member_kind(info)
        for depth in range(1, len(parts)):  # every parent is a directory
            parent = "/".join(parts[:depth]).casefold()
            if seen.setdefault(parent, "dir") != "dir":
                raise SnapshotError(f"refused {info.filename!r}: {parent!r} is a file")
        key = "/".join(parts).casefold()
        if key in seen and (kind == "file" or seen[key] == "file"):
            raise SnapshotError(f"refused {info.filename!r}: the name appears twice")
        seen[key] = kind
        if kind == "file":
            files += 1
            total += info.file_size
            if files > max_files:
                raise SnapshotError(f"the snapshot has more than {max_files} files")
            if total > max_total_bytes:
                raise SnapshotError(
                    f"the snapshot is larger than {_mib(max_total_bytes)} uncompressed"
                )
        executable = bool((info.external_attr >> 16) & 0o100)
        members.append(_Member(info, parts, kind == "dir", executable))
    return members


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MiB"


def inspect_snapshot(
    source: Path | BinaryIO,
    *,
    max_files: int = DEFAULT_MAX_FILES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
) -> list[tuple[str, int]]:
    """The files of a zip (a path or a seekable binary file), as (path, size), after the
    same checks `unpack_snapshot` makes on its central directory (names, kinds,
    duplicates, limits). Raises SnapshotError; reads no member's data."""
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"not a readable zip file: {exc}") from exc
    with archive:
        members = _plan(archive.infolist(), max_files, max_total_bytes)
    return [("/".join(m.parts), m.info.file_size) for m in members if not m.is_dir]


def unpack_snapshot(
    zip_path: Path,
    dest: Path,
    *,
    max_files: int = DEFAULT_MAX_FILES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
) -> SnapshotInfo:
    """Unpack `zip_path` into `dest` (new or empty). Raises SnapshotError, writing nothing
    that stays, when the zip is not safe or too large."""
    dest = Path(dest)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"not a readable zip file: {exc}") from exc
    with archive:
        members = _plan(archive.infolist(), max_files, max_total_bytes)
        created = _prepare_dest(dest)
        try:
            files, total = _extract(archive, members, dest, max_total_bytes)
        except BaseException:
            _undo(dest, created)
            raise
    return SnapshotInfo(files=files, total_bytes=total, hash=snapshot_hash(Path(zip_path)))


def _prepare_dest(dest: Path) -> bool:
    """Make `dest` or check it is an empty real directory; True when we made it."""
    if dest.is_symlink():
        raise SnapshotError(f"destination {dest} is a symlink")
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise SnapshotError(f"destination {dest} is not an empty directory")
        return False
    dest.mkdir(parents=True, mode=0o755)
    return True


def _undo(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _extract(
    archive: zipfile.ZipFile, members: list[_Member], dest: Path, max_total_bytes: int
) -> tuple[int, int]:
    files = total = 0
    made: set[tuple[str, ...]] = set()

    def ensure_dir(parts: tuple[str, ...]) -> None:
        for depth in range(1, len(parts) + 1):
            sub = parts[:depth]
            if sub not in made:
                path = dest.joinpath(*sub)
                try:
                    path.mkdir(mode=0o755)
                except FileExistsError:
                    if path.is_symlink() or not path.is_dir():
                        raise SnapshotError(f"refused {'/'.join(sub)!r}: not a directory") from None
                made.add(sub)

    for member in members:
        if member.is_dir:
            ensure_dir(member.parts)
            continue
        ensure_dir(member.parts[:-1])
        target = dest.joinpath(*member.parts)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o755 if member.executable else 0o644)
        try:
            with os.fdopen(fd, "wb") as out, archive.open(member.info) as src:
                while chunk := src.read(_CHUNK):
                    total += len(chunk)
                    if total > max_total_bytes:
                        raise SnapshotError(
                            f"the snapshot is larger than {_mib(max_total_bytes)} uncompressed"
                        )
                    out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise SnapshotError(f"cannot read member {member.info.filename!r}: {exc}") from exc
        files += 1
    return files, total
