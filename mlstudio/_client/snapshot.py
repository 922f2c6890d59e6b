"""The snapshot of a run's source directory: a deterministic zip, uploaded once per content.

What goes in:

- every file below the source directory, except what its ignore files exclude: in each
  folder, ``.amlignore`` when there is one, else ``.gitignore``, with git's semantics
  (patterns relative to the file's folder; a deeper file's patterns win; ``!`` re-includes,
  but nothing inside an excluded folder can be re-included);
- never ``.git`` or ``__pycache__`` folders. ``outputs/`` is nothing special: ignore it
  like any other folder if it should not be sent;
- symbolic links are followed (the file they point to is stored); broken ones, sockets
  and pipes are left out.

Limits are the workers' (deployments.runner.snapshot): 300 MiB of files, 10,000 files,
names unique regardless of case. A tree past them is refused before anything is zipped,
naming what takes the room.

The zip is reproducible: entries sorted, fixed timestamps and modes (0644, or 0755 for
executables), so the same tree always has the same sha256 and is uploaded once
(``HEAD snapshots/{sha}``, then ``PUT`` only when the studio lacks it).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

import pathspec

from mlstudio._client.http import HttpClient
from mlstudio.exceptions import NotFoundError, UserErrorException

MAX_SNAPSHOT_BYTES = 300 * 1024 * 1024
MAX_SNAPSHOT_FILES = 10_000
IGNORE_FILES = (".amlignore", ".gitignore")
ALWAYS_SKIPPED = frozenset({".git", "__pycache__"})
# 1980-01-01, the earliest time a zip can hold: no entry carries the files' own times.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SPOOL_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


class SnapshotTooLarge(UserErrorException):
    """The source directory holds more than a snapshot may (see the module docstring)."""


@dataclass
class _Rules:
    """The ignore file of one folder: its patterns apply to paths relative to `base`."""

    base: str  # the folder, relative to the source directory ('' for the root)
    spec: pathspec.GitIgnoreSpec


@dataclass
class Snapshot:
    """A zipped source directory, ready to upload.

    Attributes:
        sha256: The zip's content hash (hex): its name on the studio.
        files: The files in it, as (path, size), sorted by path.
        size: The zip's size in bytes.
        skipped: Paths left out that were not ignored on purpose (broken links, sockets).
    """

    sha256: str
    files: list[tuple[str, int]]
    size: int
    stream: IO[bytes]
    skipped: list[str] = field(default_factory=list)

    @property
    def paths(self) -> set[str]:
        return {path for path, _ in self.files}

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_rules(folder: Path, base: str) -> _Rules | None:
    for name in IGNORE_FILES:
        path = folder / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            return _Rules(base, pathspec.GitIgnoreSpec.from_lines(lines))
    return None


def _ignored(rules: list[_Rules], rel: str, is_dir: bool) -> bool:
    """Whether `rel` (relative to the source directory) is ignored: the deepest ignore file
    with a pattern that matches it decides, as in git."""
    for rule in reversed(rules):
        inside = rel[len(rule.base) + 1 :] if rule.base else rel
        result = rule.spec.check_file(inside + "/" if is_dir else inside)
        if result.include is not None:
            return result.include
    return False


def _check_name(rel: str) -> None:
    if any(c == "\\" or ord(c) < 32 or ord(c) == 127 for c in rel):
        raise UserErrorException(
            f"{rel!r} cannot go into the snapshot: its name has a backslash or a control "
            "character (rename it or add it to .amlignore)."
        )


def collect_files(source_directory: str | os.PathLike) -> tuple[list[tuple[str, Path]], list[str]]:
    """The files a snapshot of `source_directory` holds, sorted, and what was skipped.

    Returns:
        ([(path in the zip, path on disk)], [skipped paths])

    Raises:
        UserErrorException: the folder does not exist, or holds names a worker refuses.
    """
    root = Path(source_directory).expanduser()
    if not root.is_dir():
        raise UserErrorException(f"The source directory {str(root)!r} is not a folder.")
    found: list[tuple[str, Path]] = []
    skipped: list[str] = []
    seen_dirs: set[str] = set()

    def walk(folder: Path, rel: str, rules: list[_Rules]) -> None:
        real = os.path.realpath(folder)
        if real in seen_dirs:  # a link back up the tree
            skipped.append(rel + "/")
            return
        seen_dirs.add(real)
        own = _read_rules(folder, rel)
        if own is not None:
            rules = [*rules, own]
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                child = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    mode = os.stat(entry.path).st_mode  # follows links
                except OSError:  # a broken link, or gone meanwhile
                    skipped.append(child)
                    continue
                if stat.S_ISDIR(mode):
                    if entry.name in ALWAYS_SKIPPED or _ignored(rules, child, is_dir=True):
                        continue
                    walk(Path(entry.path), child, rules)
                elif stat.S_ISREG(mode):
                    if not _ignored(rules, child, is_dir=False):
                        _check_name(child)
                        found.append((child, Path(entry.path)))
                else:
                    skipped.append(child)

    walk(root, "", [])
    found.sort(key=lambda item: item[0])
    return found, skipped


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def check_limits(files: list[tuple[str, int]]) -> None:
    """Refuse a tree no worker would unpack: too large, too many files, or two names that
    differ only in case.

    Raises:
        SnapshotTooLarge: past the size or file-count limit; the message names the largest
            files (or the folders with the most files).
        UserErrorException: names that repeat regardless of case.
    """
    total = sum(size for _, size in files)
    if total > MAX_SNAPSHOT_BYTES:
        biggest = sorted(files, key=lambda item: (-item[1], item[0]))[:5]
        listing = ", ".join(f"{path} ({_mib(size)})" for path, size in biggest)
        raise SnapshotTooLarge(
            f"The source directory holds {_mib(total)} of files; a snapshot may hold "
            f"{_mib(MAX_SNAPSHOT_BYTES)}. The largest: {listing}. Leave data and outputs "
            "out with an .amlignore (or .gitignore) file, and read data from the run."
        )
    if len(files) > MAX_SNAPSHOT_FILES:
        folders = Counter(str(PurePosixPath(path).parent) for path, _ in files)
        busiest = ", ".join(f"{folder}/ ({count})" for folder, count in folders.most_common(5))
        raise SnapshotTooLarge(
            f"The source directory holds {len(files)} files; a snapshot may hold "
            f"{MAX_SNAPSHOT_FILES}. The folders with most: {busiest}. Leave them out with an "
            ".amlignore (or .gitignore) file."
        )
    by_case: dict[str, str] = {}
    for path, _ in files:
        other = by_case.setdefault(path.casefold(), path)
        if other != path:
            raise UserErrorException(
                f"{other!r} and {path!r} differ only in case; a snapshot must unpack the same "
                "on every filesystem. Rename one or ignore it."
            )


def _zip_info(name: str, executable: bool, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.create_system = 3  # Unix, whatever the client's system: the modes below are Unix's
    info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = size
    return info


def build_snapshot(source_directory: str | os.PathLike) -> Snapshot:
    """Zip `source_directory` as the module docstring says.

    Returns:
        The snapshot; close it (or use it as a context manager) when done.

    Raises:
        SnapshotTooLarge: past a limit, checked before anything is zipped.
        UserErrorException: no such folder, or names a worker refuses.
    """
    found, skipped = collect_files(source_directory)
    sized = [(rel, path, path.stat()) for rel, path in found]
    files = [(rel, info.st_size) for rel, _, info in sized]
    check_limits(files)
    stream: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
    try:
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for rel, path, info in sized:
                member = _zip_info(rel, bool(info.st_mode & stat.S_IXUSR), info.st_size)
                with path.open("rb") as source, archive.open(member, "w") as target:
                    while chunk := source.read(_CHUNK):
                        target.write(chunk)
        size = stream.tell()
        stream.seek(0)
        digest = hashlib.sha256()
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
        stream.seek(0)
    except BaseException:
        stream.close()
        raise
    return Snapshot(digest.hexdigest(), files, size, stream, skipped)


def upload_snapshot(client: HttpClient, workspace_path: str, snapshot: Snapshot) -> bool:
    """Store the snapshot in the workspace unless the studio has it already.

    Returns:
        True when it was uploaded now, False when the studio had it.
    """
    path = f"{workspace_path}/snapshots/{snapshot.sha256}"
    try:
        client.request("HEAD", path)
        return False
    except NotFoundError:
        pass
    snapshot.stream.seek(0)
    client.request("PUT", path, data=snapshot.stream, headers={"Content-Type": "application/zip"})
    return True
