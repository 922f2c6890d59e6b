"""Snapshots unpack the submitted tree, and refuse zips that would write outside it,
smuggle links or devices, or are too large."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest

from deployments.runner.snapshot import SnapshotError, snapshot_hash, unpack_snapshot


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def test_a_tree_unpacks_with_its_dirs_and_exec_bits(tmp_path: Path):
    archive = make_zip(
        tmp_path / "s.zip",
        [
            ("train.py", b"print('hi')\n"),
            ("pkg/", b""),
            ("pkg/__init__.py", b""),
            ("pkg/data/table.csv", b"a,b\n1,2\n"),
            (with_mode("run.sh", stat.S_IFREG | 0o755), b"#!/bin/sh\n"),
            ("./dot/slash.txt", b"x"),
        ],
    )
    info = unpack_snapshot(archive, tmp_path / "src")
    src = tmp_path / "src"
    assert (src / "train.py").read_text() == "print('hi')\n"
    assert (src / "pkg" / "data" / "table.csv").read_bytes() == b"a,b\n1,2\n"
    assert (src / "dot" / "slash.txt").exists()
    assert (src / "run.sh").stat().st_mode & 0o111
    assert not (src / "train.py").stat().st_mode & 0o111
    assert (info.files, info.total_bytes) == (5, 12 + 8 + 10 + 1)
    assert info.hash == hashlib.sha256(archive.read_bytes()).hexdigest()


def test_the_hash_is_the_sha256_of_the_bytes_however_given(tmp_path: Path):
    archive = make_zip(tmp_path / "s.zip", [("a.py", b"1")])
    data = archive.read_bytes()
    expected = hashlib.sha256(data).hexdigest()
    assert snapshot_hash(data) == snapshot_hash(archive) == snapshot_hash(io.BytesIO(data))
    assert snapshot_hash(data) == expected
    assert snapshot_hash(data + b"\0") != expected


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.py", "leaves the snapshot"),
        ("ok/../../evil.py", "leaves the snapshot"),
        ("/etc/evil.py", "absolute"),
        ("..\\evil.py", "backslash"),
        ("C:/evil.py", "drive letter"),
        ("bad\nname.py", "control character"),
    ],
)
def test_names_that_leave_the_tree_are_refused(tmp_path: Path, name: str, why: str):
    archive = make_zip(tmp_path / "s.zip", [("fine.py", b"1"), (zipfile.ZipInfo(name), b"x")])
    dest = tmp_path / "src"
    with pytest.raises(SnapshotError, match=why):
        unpack_snapshot(archive, dest)
    assert not dest.exists()  # nothing was written, not even the good member
    assert not (tmp_path / "evil.py").exists()


def test_symlinks_and_special_files_are_refused(tmp_path: Path):
    link = make_zip(
        tmp_path / "l.zip", [(with_mode("passwd", stat.S_IFLNK | 0o777), b"/etc/passwd")]
    )
    with pytest.raises(SnapshotError, match="symlink"):
        unpack_snapshot(link, tmp_path / "a")
    fifo = make_zip(tmp_path / "f.zip", [(with_mode("pipe", stat.S_IFIFO | 0o644), b"")])
    with pytest.raises(SnapshotError, match="special file"):
        unpack_snapshot(fifo, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_link_planted_in_the_destination_is_not_followed(tmp_path: Path):
    """The destination must be empty, so a link left there cannot redirect a write."""
    dest = tmp_path / "src"
    dest.mkdir()
    (dest / "train.py").symlink_to(tmp_path / "outside.py")
    archive = make_zip(tmp_path / "s.zip", [("train.py", b"x")])
    with pytest.raises(SnapshotError, match="not an empty directory"):
        unpack_snapshot(archive, dest)
    assert not (tmp_path / "outside.py").exists()


def test_duplicate_and_clashing_names_are_refused(tmp_path: Path):
    dup = make_zip(tmp_path / "d.zip", [("a.py", b"1"), ("A.py", b"2")])
    with pytest.raises(SnapshotError, match="appears twice"):
        unpack_snapshot(dup, tmp_path / "x")
    clash = make_zip(tmp_path / "c.zip", [("a", b"1"), ("a/b.py", b"2")])
    with pytest.raises(SnapshotError, match="is a file"):
        unpack_snapshot(clash, tmp_path / "y")


def test_size_and_count_limits(tmp_path: Path):
    many = make_zip(tmp_path / "m.zip", [(f"f{i}.py", b"x") for i in range(11)])
    with pytest.raises(SnapshotError, match="more than 10 files"):
        unpack_snapshot(many, tmp_path / "a", max_files=10)
    unpack_snapshot(many, tmp_path / "b", max_files=11)

    # 8 MiB of zeros compresses to a few KiB: the limit is on what it unpacks to.
    bomb = make_zip(tmp_path / "z.zip", [("zeros.bin", b"\0" * (8 << 20))])
    assert bomb.stat().st_size < 64 * 1024
    with pytest.raises(SnapshotError, match="larger than 4 MiB"):
        unpack_snapshot(bomb, tmp_path / "c", max_total_bytes=4 << 20)
    assert not (tmp_path / "c").exists()


def test_a_lying_size_header_is_caught_while_writing(tmp_path: Path):
    archive = make_zip(tmp_path / "s.zip", [("ok.py", b"1"), ("a.bin", b"y" * 5000)])
    raw = bytearray(archive.read_bytes())
    # Shrink a.bin's declared size in the central directory to pass the up-front check.
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("a.bin").file_size == 10
    with pytest.raises(SnapshotError, match=r"cannot read member 'a\.bin'"):
        unpack_snapshot(archive, tmp_path / "new", max_total_bytes=100)
    assert not (tmp_path / "new").exists()  # made by us: removed
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(SnapshotError):
        unpack_snapshot(archive, existing, max_total_bytes=100)
    assert existing.is_dir() and list(existing.iterdir()) == []  # given empty: emptied


def test_not_a_zip_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "s.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SnapshotError, match="not a readable zip"):
        unpack_snapshot(bad, tmp_path / "src")


def test_an_empty_existing_destination_is_used(tmp_path: Path):
    dest = tmp_path / "src"
    dest.mkdir()
    good = make_zip(tmp_path / "g.zip", [("a.py", b"1"), ("b/c.py", b"2")])
    unpack_snapshot(good, dest)
    assert (dest / "b" / "c.py").read_text() == "2"
