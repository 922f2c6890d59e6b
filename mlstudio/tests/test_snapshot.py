"""The snapshot of a source directory, without a server: what goes in (ignore files with
git's semantics), the limits, and a zip that is the same for the same tree and that the
workers' unpacker accepts."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from deployments.runner.snapshot import inspect_snapshot, unpack_snapshot
from mlstudio import UserErrorException
from mlstudio._client import snapshot as snap
from mlstudio._client.snapshot import SnapshotTooLarge, build_snapshot, collect_files


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def names(root: Path) -> list[str]:
    return [rel for rel, _ in collect_files(root)[0]]


def test_gitignore_semantics(tmp_path):
    root = tree(
        tmp_path / "src",
        {
            "train.py": "print(1)\n",
            ".gitignore": "# comment\n*.log\n!keep.log\ndata/\n!data/wanted.csv\n/top.txt\n",
            "run.log": "x",
            "keep.log": "x",
            "top.txt": "x",
            "data/big.csv": "x",
            "data/wanted.csv": "x",  # inside an ignored folder: git cannot re-include it
            "sub/top.txt": "x",  # '/top.txt' is anchored to the root
            "sub/deep.log": "x",
            "sub/data/x.csv": "x",  # 'data/' matches a folder at any depth
            "other/.gitignore": "!*.log\n",
            "other/kept.log": "x",  # a deeper file's pattern wins
            "outputs/model.pkl": "x",  # nothing special
            ".git/HEAD": "ref",
            "pkg/__pycache__/m.cpython-311.pyc": "x",
            "pkg/m.py": "x",
        },
    )
    assert names(root) == [
        ".gitignore",
        "keep.log",
        "other/.gitignore",
        "other/kept.log",
        "outputs/model.pkl",
        "pkg/m.py",
        "sub/top.txt",
        "train.py",
    ]


def test_amlignore_wins_over_gitignore_in_its_folder(tmp_path):
    root = tree(
        tmp_path / "src",
        {
            "train.py": "",
            ".gitignore": "*.csv\n",
            ".amlignore": "outputs/\n",
            "a.csv": "",
            "outputs/x": "",
            "sub/.gitignore": "*.txt\n",
            "sub/b.txt": "",
            "sub/c.csv": "",
        },
    )
    # The root's .amlignore replaces its .gitignore; sub/ has only a .gitignore.
    assert names(root) == [
        ".amlignore",
        ".gitignore",
        "a.csv",
        "sub/.gitignore",
        "sub/c.csv",
        "train.py",
    ]


def test_links_are_followed_and_broken_ones_skipped(tmp_path):
    outside = tree(tmp_path / "shared", {"helpers.py": "H = 1\n"})
    root = tree(tmp_path / "src", {"train.py": ""})
    os.symlink(outside / "helpers.py", root / "helpers.py")
    os.symlink(outside, root / "lib")
    os.symlink(root, root / "loop")  # a link back up the tree is not walked twice
    os.symlink(root / "missing.py", root / "broken.py")
    found, skipped = collect_files(root)
    assert [rel for rel, _ in found] == ["helpers.py", "lib/helpers.py", "train.py"]
    assert sorted(skipped) == ["broken.py", "loop/"]
    with build_snapshot(root) as built, zipfile.ZipFile(built.stream) as archive:
        assert archive.read("lib/helpers.py") == b"H = 1\n"
        # Links are stored as the files they point to: the worker refuses links.
        assert all((i.external_attr >> 16) & 0o170000 == 0o100000 for i in archive.infolist())


def test_the_same_tree_zips_to_the_same_bytes(tmp_path):
    files = {"train.py": "print('hi')\n", "pkg/a.py": "A = 1\n", "pkg/b.py": "B = 2\n"}
    first = tree(tmp_path / "one", files)
    second = tree(tmp_path / "two", dict(reversed(list(files.items()))))  # made in another order
    os.utime(second / "train.py", (1_000_000_000, 1_000_000_000))
    with build_snapshot(first) as a, build_snapshot(second) as b:
        assert a.sha256 == b.sha256
        assert a.stream.read() == b.stream.read()
        assert a.files == [("pkg/a.py", 6), ("pkg/b.py", 6), ("train.py", 12)]
    (second / "train.py").chmod(0o755)  # the mode is part of the content
    with build_snapshot(first) as a, build_snapshot(second) as b:
        assert a.sha256 != b.sha256


def test_the_workers_unpacker_accepts_it(tmp_path):
    root = tree(tmp_path / "src", {"train.py": "print(1)\n", "bin/run.sh": "#!/bin/sh\n"})
    (root / "bin" / "run.sh").chmod(0o755)
    with build_snapshot(root) as built:
        zip_path = tmp_path / "s.zip"
        zip_path.write_bytes(built.stream.read())
        assert built.size == zip_path.stat().st_size
    assert inspect_snapshot(zip_path) == [("bin/run.sh", 10), ("train.py", 9)]
    info = unpack_snapshot(zip_path, tmp_path / "out")
    assert info.hash == built.sha256 and info.files == 2
    assert (tmp_path / "out" / "bin" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "train.py").stat().st_mode & 0o777 == 0o644


def test_size_limit_names_the_largest_files_before_zipping(tmp_path, monkeypatch):
    root = tree(tmp_path / "src", {"train.py": "", "data/small.csv": "x" * 10})
    with (root / "data" / "huge.bin").open("wb") as handle:  # sparse: no disk space taken
        handle.truncate(snap.MAX_SNAPSHOT_BYTES + 1)
    zipped: list = []
    monkeypatch.setattr(snap.zipfile, "ZipFile", lambda *a, **k: zipped.append(a))
    with pytest.raises(SnapshotTooLarge) as caught:
        build_snapshot(root)
    message = str(caught.value)
    assert "300.0 MiB" in message and "data/huge.bin (300.0 MiB)" in message
    assert message.index("data/huge.bin") < message.index("data/small.csv")
    assert ".amlignore" in message and zipped == []
    assert isinstance(caught.value, UserErrorException)


def test_file_count_limit_names_the_busiest_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(snap, "MAX_SNAPSHOT_FILES", 5)
    root = tree(tmp_path / "src", {"train.py": "", **{f"venv/lib/f{i}.py": "" for i in range(6)}})
    with pytest.raises(
        SnapshotTooLarge, match=r"7 files; a snapshot may hold 5\..*venv/lib/ \(6\)"
    ):
        build_snapshot(root)
    (root / ".amlignore").write_text("venv/\n")
    with build_snapshot(root) as built:
        assert [path for path, _ in built.files] == [".amlignore", "train.py"]


def test_names_a_worker_would_refuse(tmp_path):
    root = tree(tmp_path / "src", {"Train.py": "", "train.py": ""})
    with pytest.raises(UserErrorException, match="differ only in case"):
        build_snapshot(root)
    other = tree(tmp_path / "other", {"bad\nname.py": ""})
    with pytest.raises(UserErrorException, match="control character"):
        build_snapshot(other)
    with pytest.raises(UserErrorException, match="is not a folder"):
        build_snapshot(tmp_path / "missing")
