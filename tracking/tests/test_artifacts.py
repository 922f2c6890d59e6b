"""Artifact storage and the proxied artifact API, through real boundaries: the real
`mlflow` client and raw HTTP against a live server, a local folder and Azure Blob
Storage (Azurite, started by the suite)."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from portal.errors import InvalidParameter, NotFound
from tracking.artifacts import (
    BlobArtifactStore,
    LocalArtifactStore,
    clean_artifact_path,
    store_for,
)
from tracking.artifacts.local import TEMP_PREFIX

pytest_plugins = ["tracking.tests.azurite"]

ARTIFACTS = "2.0/mlflow-artifacts/artifacts"


# --- Fixtures and helpers -------------------------------------------------------------


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    """Workspaces created by the test get their artifact roots under tmp_path."""
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")


def api(tracking, who: str | None, method: str, path: str, *, workspace=None, **kwargs):
    uri = tracking.uri_for(workspace) if workspace is not None else tracking.uri
    headers = kwargs.pop("headers", {})
    if who:
        headers["Authorization"] = f"Bearer {tracking.tokens[who]}"
    return requests.request(method, f"{uri}/api/{path}", headers=headers, timeout=60, **kwargs)


def raw(tracking, method: str, raw_path: str, *, who: str = "owner", body: bytes | None = None):
    """A request whose path goes out byte for byte (requests would remove dot segments)."""
    url = urlsplit(tracking.uri)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request(
            method,
            f"{url.path}/api/{ARTIFACTS}/{raw_path}",
            body=body,
            headers={"Authorization": f"Bearer {tracking.tokens[who]}"},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def make_run(workspace, name: str = "exp"):
    from tracking.models import Experiment, Run

    now = int(time.time() * 1000)
    experiment = Experiment.objects.create(
        workspace=workspace,
        name=f"{name}-{uuid.uuid4().hex[:6]}",
        artifact_location="",
        creation_time=now,
        last_update_time=now,
    )
    experiment.artifact_location = f"mlflow-artifacts:/{experiment.id}"
    experiment.save(update_fields=["artifact_location"])
    run_uuid = uuid.uuid4().hex
    return Run.objects.create(
        run_uuid=run_uuid,
        workspace=workspace,
        experiment=experiment,
        artifact_uri=f"mlflow-artifacts:/{experiment.id}/{run_uuid}/artifacts",
        start_time=now,
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_random(path: Path, size: int) -> Path:
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        for i in range(size // len(block)):
            f.write(i.to_bytes(8, "big") + block[8:])
        f.write(block[: size % len(block)])
    return path


# --- Paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_path", "clean"),
    [
        ("", ""),
        (None, ""),
        ("a", "a"),
        ("a/b.txt", "a/b.txt"),
        ("a/b/", "a/b"),
        ("with space/x y.txt", "with space/x y.txt"),
        ("a%20b", "a b"),
        ("unicodé/名前.txt", "unicodé/名前.txt"),
        ("..a/b..", "..a/b.."),
    ],
)
def test_clean_artifact_path_accepts(raw_path, clean):
    assert clean_artifact_path(raw_path) == clean
    assert clean_artifact_path(clean) == clean  # stable: layers may clean again


@pytest.mark.parametrize(
    "raw_path",
    [
        "..",
        "../x",
        "a/../../x",
        "a/..",
        "%2e%2e/x",
        "%2E%2E%2Fx",
        "%252e%252e/x",
        "%25252e%25252e%25252fx",
        "/etc/passwd",
        "%2fetc/passwd",
        "//server/share",
        "a\\b",
        "..\\x",
        "a%5cb",
        "C:/Windows",
        "c:x",
        "a\x00b",
        "a%00b",
        "a\nb",
        "a//b",
        "./a",
        "a/./b",
        "x" * 300,
        "a/" * 600,
    ],
)
def test_clean_artifact_path_refuses(raw_path):
    with pytest.raises(InvalidParameter):
        clean_artifact_path(raw_path)


# --- The local store ---------------------------------------------------------------------


def test_local_store_operations(tmp_path):
    store = LocalArtifactStore(tmp_path / "root")
    assert store.list() == [] and not store.exists("a")
    assert store.write("a/b/c.txt", [b"hello ", b"world"]) == 11
    store.write("a/top.bin", iter([b"\x00" * 10]))
    assert [(e.path, e.is_dir, e.file_size) for e in store.list("a")] == [
        ("a/b", True, None),
        ("a/top.bin", False, 10),
    ]
    assert store.list("a/top.bin") == [] and store.list("missing") == []
    assert [e.path for e in store.walk()] == ["a/b/c.txt", "a/top.bin"]
    with store.open("a/b/c.txt") as reader:
        assert reader.size == 11 and b"".join(reader) == b"hello world"
    with pytest.raises(NotFound):
        store.open("a/nope.txt")
    with pytest.raises(InvalidParameter):
        store.open("a/b")
    with pytest.raises(InvalidParameter):
        store.write("a/top.bin/x", [b"x"])  # a file is in the way
    with pytest.raises(InvalidParameter):
        store.write("a/b", [b"x"])  # a folder is in the way
    store.delete("a/b")
    assert not store.exists("a/b") and store.exists("a/top.bin")
    store.delete("a/absent")  # no error, as mlflow answers
    store.delete_prefix("")
    assert not (tmp_path / "root").exists()
    assert "root" not in repr(store)  # never shows server paths


def test_local_write_is_atomic(tmp_path):
    store = LocalArtifactStore(tmp_path)
    store.write("f.txt", [b"old"])

    def failing():
        yield b"new part"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.write("f.txt", failing())
    assert (tmp_path / "f.txt").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.txt"]  # no temporary file left behind
    with pytest.raises(InvalidParameter):
        store.write(f"{TEMP_PREFIX}x", [b"x"])


@pytest.mark.parametrize("in_place", [True, False], ids=["local", "rewrite-fallback"])
def test_append_writes_at_an_offset_and_reads_ranges(tmp_path, in_place):
    from tracking.artifacts import ArtifactStore

    store = LocalArtifactStore(tmp_path)

    def append(path, offset, data):
        if in_place:
            return store.append(path, offset, data)
        return ArtifactStore.append(store, path, offset, data)  # what Blob Storage uses

    assert append("logs/std_log.txt", 0, b"one\n") == 4
    assert append("logs/std_log.txt", 4, b"two\n") == 8
    assert append("logs/std_log.txt", 4, b"TWO\n") == 8  # a retry overwrites, never doubles
    assert (tmp_path / "logs" / "std_log.txt").read_bytes() == b"one\nTWO\n"
    with pytest.raises(ValueError, match="past the end"):
        append("logs/std_log.txt", 99, b"x")
    assert store.read_range("logs/std_log.txt", 4, 3) == b"TWO"
    assert ArtifactStore.read_range(store, "logs/std_log.txt", 4, 100) == b"TWO\n"
    assert store.read_range("logs/std_log.txt", 8, 10) == b""


def test_local_append_never_follows_links(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.txt").symlink_to(outside)
    with pytest.raises(InvalidParameter):
        LocalArtifactStore(root).append("link.txt", 0, b"x")
    assert outside.read_text() == "secret"


def test_local_store_never_follows_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "escape").symlink_to(outside)
    (root / "sub" / "link.txt").symlink_to(outside / "secret.txt")
    store = LocalArtifactStore(root)
    for action in (
        lambda: store.open("escape/secret.txt"),
        lambda: store.open("sub/link.txt"),
        lambda: store.list("escape"),
        lambda: store.write("escape/new.txt", [b"x"]),
        lambda: store.write("escape/deeper/new.txt", [b"x"]),
        lambda: store.write("sub/link.txt", [b"overwritten"]),
        lambda: store.delete("escape/secret.txt"),
        lambda: store.exists("escape/secret.txt"),
    ):
        with pytest.raises(InvalidParameter):
            action()
    assert [e.path for e in store.list()] == ["sub"]  # links are not listed
    assert store.list("sub") == [] and list(store.walk()) == []
    store.delete("sub")  # removes the link, not its target
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


# --- The API, raw ----------------------------------------------------------------------


def test_upload_download_list_delete(tracking, cast, backend):
    put = api(tracking, "contributor", "PUT", f"{ARTIFACTS}/1/r/artifacts/dir/a b.txt", data=b"hi!")
    assert put.status_code == 200, put.text
    assert put.json() == {}
    got = api(tracking, "reader", "GET", f"{ARTIFACTS}/1/r/artifacts/dir/a b.txt")
    assert got.status_code == 200 and got.content == b"hi!"
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Length"] == "3"
    listing = api(tracking, "reader", "GET", ARTIFACTS, params={"path": "1/r/artifacts"})
    assert listing.json() == {"files": [{"path": "dir", "is_dir": True}]}
    listing = api(tracking, "reader", "GET", ARTIFACTS, params={"path": "1/r/artifacts/dir"})
    assert listing.json() == {"files": [{"path": "a b.txt", "is_dir": False, "file_size": 3}]}
    assert api(tracking, "reader", "GET", ARTIFACTS, params={"path": "nothing"}).json() == {}
    missing = api(tracking, "reader", "GET", f"{ARTIFACTS}/1/r/artifacts/nope.txt")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    trailing = api(tracking, "contributor", "PUT", f"{ARTIFACTS}/1/r/artifacts/dir/", data=b"")
    assert trailing.status_code == 400
    deleted = api(tracking, "contributor", "DELETE", f"{ARTIFACTS}/1/r/artifacts/dir/")
    assert deleted.status_code == 200 and deleted.json() == {}
    assert api(tracking, "reader", "GET", ARTIFACTS, params={"path": "1/r/artifacts"}).json() == {}


def test_html_is_never_rendered_inline(tracking, cast):
    page = b"<html><script>alert(document.cookie)</script></html>"
    assert api(tracking, "owner", "PUT", f"{ARTIFACTS}/x/page.html", data=page).ok
    got = api(tracking, "owner", "GET", f"{ARTIFACTS}/x/page.html")
    assert got.content == page
    assert got.headers["Content-Disposition"] == 'attachment; filename="page.html"'
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]


def test_run_artifact_listing(tracking, cast, backend):
    run = make_run(cast.workspace)
    store = store_for(cast.workspace)
    base = run.artifact_uri.removeprefix("mlflow-artifacts:/")
    store.write(f"{base}/model/MLmodel", [b"flavors: {}"])
    store.write(f"{base}/metrics.json", [b"{}"])
    listed = api(
        tracking, "reader", "GET", "2.0/mlflow/artifacts/list", params={"run_id": run.run_uuid}
    )
    assert listed.json() == {
        "root_uri": run.artifact_uri,
        "files": [
            {"path": "metrics.json", "is_dir": False, "file_size": 2},
            {"path": "model", "is_dir": True},
        ],
    }
    nested = api(
        tracking,
        "reader",
        "GET",
        "2.0/mlflow/artifacts/list",
        params={"run_id": run.run_uuid, "path": "model"},
    )
    assert nested.json()["files"] == [{"path": "model/MLmodel", "is_dir": False, "file_size": 11}]
    bad = api(
        tracking,
        "reader",
        "GET",
        "2.0/mlflow/artifacts/list",
        params={"run_id": run.run_uuid, "path": "../../other"},
    )
    assert bad.status_code == 400
    other_run = make_run(cast.other_workspace)
    hidden = api(
        tracking, "owner", "GET", "2.0/mlflow/artifacts/list", params={"run_id": other_run.run_uuid}
    )
    assert hidden.status_code == 404


def test_upload_limit(tracking, cast, settings):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 1000
    too_big = api(tracking, "owner", "PUT", f"{ARTIFACTS}/big/file.bin", data=b"x" * 1001)
    assert too_big.status_code == 413
    assert too_big.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert api(tracking, "owner", "PUT", f"{ARTIFACTS}/big/ok.bin", data=b"x" * 1000).ok
    assert [e.path for e in store_for(cast.workspace).walk()] == ["big/ok.bin"]


def test_an_upload_cut_short_leaves_nothing(tracking, cast):
    url = urlsplit(tracking.uri)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(
            (
                f"PUT {url.path}/api/{ARTIFACTS}/cut/file.bin HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\nAuthorization: Bearer {tracking.tokens['owner']}\r\n"
                "Content-Length: 100000\r\nConnection: close\r\n\r\n"
            ).encode()
            + b"x" * 5000
        )
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert b" 400 " in answer.split(b"\r\n", 1)[0]
    root = Path(cast.workspace.artifact_root)
    assert list(store_for(cast.workspace).walk()) == []
    assert not any(p.is_file() for p in root.rglob("*"))  # the partial file is gone


def test_roles(tracking, cast):
    path = f"{ARTIFACTS}/roles/file.txt"
    assert api(tracking, "contributor", "PUT", path, data=b"c").status_code == 200
    assert api(tracking, "reader", "GET", path).content == b"c"
    for method in ("PUT", "DELETE"):
        denied = api(tracking, "reader", method, path, data=b"r")
        assert denied.status_code == 403
        assert denied.json()["error_code"] == "PERMISSION_DENIED"
    for method in ("GET", "PUT", "DELETE"):
        assert api(tracking, "outsider", method, path, data=b"o").status_code == 404
        assert api(tracking, None, method, path, data=b"o").status_code == 401
    listing = api(tracking, "outsider", "GET", ARTIFACTS, params={"path": "roles"})
    assert listing.status_code == 404
    assert api(tracking, "reader", "GET", path).content == b"c"


def test_workspaces_are_isolated(tracking, cast, backend):
    own = f"{ARTIFACTS}/shared/name.txt"
    assert api(tracking, "owner", "PUT", own, data=b"mine").ok
    theirs = api(tracking, "outsider", "PUT", own, data=b"theirs", workspace=cast.other_workspace)
    assert theirs.ok
    assert api(tracking, "owner", "GET", own).content == b"mine"
    assert (
        api(tracking, "outsider", "GET", own, workspace=cast.other_workspace).content == b"theirs"
    )
    assert cast.workspace.artifact_root != cast.other_workspace.artifact_root
    # The other workspace's root cannot be named from this one.
    other_id = str(cast.other_workspace.id)
    for attempt in (f"../{other_id}/shared/name.txt", f"%2e%2e/{other_id}/shared/name.txt"):
        status, _ = raw(tracking, "GET", attempt)
        assert status == 400


TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/secret.txt",
    "%252e%252e/%252e%252e/secret.txt",
    "%252e%252e%252f%252e%252e%252fsecret.txt",
    "a/../../secret.txt",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "..%5c..%5csecret.txt",
    "a%5c..%5c..%5csecret.txt",
    "C:/secret.txt",
    "a%00b.txt",
    "a//b.txt",
]


@pytest.mark.parametrize("attack", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_traversal_is_refused(tracking, cast, tmp_path, attack, method):
    (tmp_path / "secret.txt").write_text("secret")
    status, body = raw(tracking, method, attack, body=b"pwned" if method == "PUT" else None)
    assert status == 400, body
    assert b"INVALID_PARAMETER_VALUE" in body
    assert (tmp_path / "secret.txt").read_text() == "secret"
    assert str(tmp_path).encode() not in body  # no server paths in answers


@pytest.mark.parametrize("attack", ["..", "../..", "%2e%2e", "%252e%252e", "/etc", "a\\..\\.."])
def test_listing_traversal_is_refused(tracking, cast, attack):
    listed = api(tracking, "owner", "GET", ARTIFACTS, params={"path": attack})
    assert listed.status_code == 400
    assert listed.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_links_inside_the_root_are_not_followed(tracking, cast, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = Path(cast.workspace.artifact_root)
    root.mkdir(parents=True)
    (root / "escape").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "secret.txt")
    for method, path in [
        ("GET", "escape/secret.txt"),
        ("GET", "file-link"),
        ("PUT", "escape/new.txt"),
        ("PUT", "file-link"),
        ("DELETE", "escape/secret.txt"),
        ("DELETE", "escape"),
    ]:
        status, body = raw(tracking, method, path, body=b"x" if method == "PUT" else None)
        assert status == 400, (method, path, body)
    listing = api(tracking, "owner", "GET", ARTIFACTS, params={"path": "escape"})
    assert listing.status_code == 400
    assert api(tracking, "owner", "GET", ARTIFACTS).json() == {}  # links are not listed
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


def test_direct_transfers_are_declined_so_clients_fall_back(tracking, cast):
    for method, path in [
        ("POST", "2.0/mlflow-artifacts/mpu/create/x/f.bin"),
        ("POST", "2.0/mlflow-artifacts/mpu/complete/x/f.bin"),
        ("POST", "2.0/mlflow-artifacts/mpu/abort/x/f.bin"),
        ("GET", "2.0/mlflow-artifacts/presigned/x/f.bin"),
        ("POST", "2.0/mlflow/artifacts/presigned-upload-url"),
        ("POST", "2.0/mlflow/artifacts/presigned-download-url"),
    ]:
        answer = api(tracking, "owner", method, path, json={"path": "f.bin"})
        assert answer.status_code == 501, (path, answer.text)
        assert answer.json()["error_code"] == "NOT_IMPLEMENTED"
        assert "is not supported" in answer.json()["message"]
    assert api(tracking, "reader", "POST", "2.0/mlflow-artifacts/mpu/create/x/f").status_code == 403


# --- The real mlflow client --------------------------------------------------------------


def test_mlflow_client_round_trip(tracking, cast, backend, monkeypatch, tmp_path):
    import mlflow
    from mlflow.artifacts import download_artifacts
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    tracking.use("contributor", monkeypatch)
    source = tmp_path / "source"
    (source / "nested" / "deeper").mkdir(parents=True)
    (source / "top.txt").write_text("top")
    (source / "nested" / "n.json").write_text('{"n": 1}')
    (source / "nested" / "deeper" / "d.bin").write_bytes(b"\x00\x01\x02")
    single = tmp_path / "single.csv"
    single.write_text("a,b\n1,2\n")
    mlflow.set_experiment("artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifact(str(single), artifact_path="tables")
        mlflow.log_artifacts(str(source), artifact_path="tree")
        mlflow.log_text("some notes", "notes/readme.md")
        mlflow.log_dict({"k": "v"}, "config.json")
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")

    client = mlflow.MlflowClient()
    top = [(f.path, f.is_dir) for f in client.list_artifacts(run_id)]
    assert top == [
        ("config.json", False),
        ("notes", True),
        ("single.csv", False),
        ("tables", True),
        ("tree", True),
    ]
    tree = [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "tree/nested")]
    assert tree == [("tree/nested/deeper", True, None), ("tree/nested/n.json", False, 8)]
    assert client.list_artifacts(run_id, "single.csv") == []  # a file lists as nothing

    out = Path(
        download_artifacts(run_id=run_id, artifact_path="tree", dst_path=str(tmp_path / "d"))
    )
    assert (out / "top.txt").read_text() == "top"
    assert (out / "nested" / "deeper" / "d.bin").read_bytes() == b"\x00\x01\x02"
    everything = Path(download_artifacts(run_id=run_id, dst_path=str(tmp_path / "all")))
    assert (everything / "notes" / "readme.md").read_text() == "some notes"
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/readme.md") == "some notes"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json") == {"k": "v"}

    repo = get_artifact_repository(run.info.artifact_uri)
    repo.delete_artifacts("tree/nested")
    assert [f.path for f in client.list_artifacts(run_id, "tree")] == ["tree/top.txt"]
    repo.delete_artifacts("single.csv")
    assert "single.csv" not in [f.path for f in client.list_artifacts(run_id)]

    tracking.use("reader", monkeypatch)
    with pytest.raises(requests.HTTPError, match="PERMISSION_DENIED"):
        get_artifact_repository(run.info.artifact_uri).log_artifact(str(single))
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/tree/top.txt") == "top"


def test_large_file_streams_through(tracking, cast, backend, monkeypatch, tmp_path, settings):
    """50 MB, far past DATA_UPLOAD_MAX_MEMORY_SIZE, with request.body made unreadable:
    the upload has to stream."""
    import mlflow
    from django.http import HttpRequest

    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE < 50 * 1024 * 1024
    big = write_random(tmp_path / "big.bin", 50 * 1024 * 1024 + 123)
    mlflow.set_experiment("large")
    with mlflow.start_run() as run:
        pass

    def no_body(request):
        raise AssertionError("the artifact upload read request.body")

    with monkeypatch.context() as patch:
        patch.setattr(HttpRequest, "body", property(no_body))
        mlflow.log_artifact(str(big), artifact_path="data", run_id=run.info.run_id)

    files = mlflow.MlflowClient().list_artifacts(run.info.run_id, "data")
    assert [(f.path, f.file_size) for f in files] == [("data/big.bin", big.stat().st_size)]
    out = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="data/big.bin", dst_path=str(tmp_path / "out")
    )
    assert sha256(Path(out)) == sha256(big)


def test_client_falls_back_when_multipart_is_forced(tracking, cast, monkeypatch, tmp_path):
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1")
    data = tmp_path / "f.bin"
    data.write_bytes(b"multipart?" * 100)
    mlflow.set_experiment("fallback")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(data))
    out = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="f.bin", dst_path=str(tmp_path / "out")
    )
    assert Path(out).read_bytes() == data.read_bytes()


# --- Azure Blob Storage (Azurite) ---------------------------------------------------------


def test_blob_store_operations(azurite, blob_root, cast):
    blob_root(cast.workspace)
    store = store_for(cast.workspace)
    assert isinstance(store, BlobArtifactStore)
    assert store.list() == [] and not store.exists("a")
    assert store.write("a/b/c.txt", [b"hello ", b"world"]) == 11
    store.write("a/top.bin", iter([b"\x00" * 10]))
    store.write("a/empty", [])
    assert [(e.path, e.is_dir, e.file_size) for e in store.list("a")] == [
        ("a/b", True, None),
        ("a/empty", False, 0),
        ("a/top.bin", False, 10),
    ]
    assert store.list("a/top.bin") == [] and store.list("missing") == []
    assert [e.path for e in store.walk()] == ["a/b/c.txt", "a/empty", "a/top.bin"]
    with store.open("a/b/c.txt") as reader:
        assert reader.size == 11 and reader.read(5) == b"hello" and reader.read() == b" world"
    with pytest.raises(NotFound):
        store.open("a/nope.txt")
    with pytest.raises(InvalidParameter):
        store.open("a/b")
    assert store.exists("a/b") and store.exists("a/top.bin")
    store.delete("a/b")
    assert not store.exists("a/b") and store.exists("a/top.bin")
    store.delete("a/absent")
    store.delete_prefix("")
    assert list(store.walk()) == []


def test_blob_large_write_is_staged_and_atomic(azurite, blob_root, cast):
    blob_root(cast.workspace)
    store = store_for(cast.workspace)
    store.write("f.bin", [b"old"])
    block = b"y" * (1 << 20)

    def failing():
        for _ in range(9):  # past two blocks, then the client goes away
            yield block
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.write("f.bin", failing())
    with store.open("f.bin") as reader:
        assert b"".join(reader) == b"old"
    assert store.write("f.bin", (block for _ in range(9))) == 9 << 20
    with store.open("f.bin") as reader:
        assert reader.size == 9 << 20 and sum(len(c) for c in reader) == 9 << 20


def test_blob_roots_of_workspaces_do_not_overlap(azurite, blob_root, cast):
    blob_root(cast.workspace)
    blob_root(cast.other_workspace)
    store_for(cast.other_workspace).write("x.txt", [b"other"])
    assert store_for(cast.workspace).list() == []
    store_for(cast.workspace).delete_prefix("")
    assert [e.path for e in store_for(cast.other_workspace).walk()] == ["x.txt"]


def test_blob_errors_leak_no_secrets(tracking, cast, azurite, settings):
    settings.AZURE_STORAGE_CONNECTION_STRING = azurite.connection_string
    cast.workspace.artifact_root = azurite.container_url("no-such-container", "p")
    cast.workspace.save(update_fields=["artifact_root"])
    for method in ("GET", "PUT"):
        answer = api(tracking, "owner", method, f"{ARTIFACTS}/x.txt", data=b"x")
        assert answer.status_code in (404, 500), answer.text
        body = answer.text
        assert azurite.connection_string.split("AccountKey=")[1].split(";")[0] not in body
        assert "AccountKey" not in body and "no-such-container" not in body


@pytest.mark.parametrize(
    ("url", "account_url", "container", "prefix", "sas"),
    [
        ("https://acct.blob.core.windows.net/c", "https://acct.blob.core.windows.net", "c", "", ""),
        (
            "https://acct.blob.core.windows.net/c/a/b%20c?sv=1&sig=x",
            "https://acct.blob.core.windows.net",
            "c",
            "a/b c",
            "sv=1&sig=x",
        ),
        (
            "http://127.0.0.1:10000/devstoreaccount1/c/p",
            "http://127.0.0.1:10000/devstoreaccount1",
            "c",
            "p",
            "",
        ),
    ],
)
def test_parse_blob_url(url, account_url, container, prefix, sas):
    from tracking.artifacts.blob import BlobLocation, parse_blob_url

    assert parse_blob_url(url) == BlobLocation(account_url, container, prefix, sas)


@pytest.mark.parametrize(
    "url",
    [
        "https://acct.blob.core.windows.net/",
        "http://127.0.0.1:10000/devstoreaccount1",
        "https://acct.blob.core.windows.net/c/../other",
        "ftp://host/c",
    ],
)
def test_parse_blob_url_refuses(url):
    from tracking.artifacts.blob import parse_blob_url

    with pytest.raises((ValueError, InvalidParameter)):
        parse_blob_url(url)


def test_blob_credentials_in_order(monkeypatch, settings):
    """A SAS in the root URL, else the connection string, else DefaultAzureCredential."""
    from azure.core.credentials import AccessToken

    from tracking.artifacts import blob

    class FakeIdentity:
        def get_token(self, *scopes, **kwargs):
            return AccessToken("token", 2**31)

    identity = FakeIdentity()
    monkeypatch.setattr(blob, "_azure_default_credential", lambda: identity)
    blob._container_client.cache_clear()
    url = "https://acct.blob.core.windows.net/c/p"
    settings.AZURE_STORAGE_CONNECTION_STRING = ""
    assert store_for_url(url).container.credential is identity
    settings.AZURE_STORAGE_CONNECTION_STRING = "AccountName=acct;AccountKey=a2V5;Foo=bar"
    shared_key = store_for_url(url).container.credential
    assert shared_key.account_name == "acct" and shared_key.account_key == "a2V5"
    settings.AZURE_STORAGE_CONNECTION_STRING = "BlobEndpoint=x;SharedAccessSignature=sv=2&sig=s"
    assert store_for_url(url).container.url.endswith("sv=2&sig=s")
    assert store_for_url(f"{url}?sv=9&sig=u").container.url.endswith("sv=9&sig=u")
    assert "AccountKey" not in repr(store_for_url(url))
    blob._container_client.cache_clear()


def store_for_url(url: str):
    from tracking.artifacts import store_for_root

    return store_for_root(url)


# --- Bodies without Content-Length (chunked), under every server we run ------------------


@pytest.fixture(params=["live_server", "gunicorn"])
def served_by(request, transactional_db):
    """Start the studio, `served_by(ARTIFACT_MAX_UPLOAD_BYTES="1000")`, under Django's own
    server (the tests' live server, as runserver) or under gunicorn (as `make run`): the
    first hands the application chunked bodies undecoded (portal.chunked decodes them),
    the second decoded. (transactional_db: the gunicorn process must see the cast.)"""
    if request.param == "gunicorn":
        return request.getfixturevalue("gunicorn_tracking")
    tracking = request.getfixturevalue("tracking")
    settings = request.getfixturevalue("settings")

    def start(**environment: str):
        for name, value in environment.items():
            setattr(settings, name, int(value))
        return tracking

    return start


def _chunks(total: int, size: int = 64 * 1024):
    """A body `requests` can only send chunked: a generator."""
    block = bytes(range(256)) * (size // 256)
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece


def _bytes_of(total: int) -> bytes:
    return b"".join(_chunks(total))


def test_chunked_uploads_stream_in(served_by, cast, monkeypatch, tmp_path):
    """The mlflow client uploads an empty file chunked (requests sends a body of unknown
    or zero length so); a streamed body is read to its end, byte for byte."""
    import mlflow

    served = served_by()
    served.use("contributor", monkeypatch)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    mlflow.set_experiment("chunked")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(empty))
        mlflow.log_artifact(str(empty), artifact_path="nested")
    files = mlflow.MlflowClient().list_artifacts(run.info.run_id)
    assert [(f.path, f.is_dir, f.file_size) for f in files] == [
        ("empty.txt", False, 0),
        ("nested", True, None),
    ]
    root = run.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    put = api(
        served, "contributor", "PUT", f"{ARTIFACTS}/{root}/streamed.bin", data=_chunks(3_000_000)
    )
    assert put.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in put.request.headers
    assert put.status_code == 200, put.text
    got = api(served, "reader", "GET", f"{ARTIFACTS}/{root}/streamed.bin")
    assert got.content == _bytes_of(3_000_000)
    denied = api(served, "reader", "PUT", f"{ARTIFACTS}/{root}/no.bin", data=_chunks(10))
    assert denied.status_code == 403
    # The UI's upload-artifact reads its body the same way.
    ui = requests.post(
        f"{served.uri}/ajax-api/2.0/mlflow/upload-artifact",
        params={"run_uuid": run.info.run_id, "path": "ui/streamed.bin"},
        data=_chunks(200_000),
        headers={"Authorization": f"Bearer {served.tokens['contributor']}"},
        timeout=60,
    )
    assert ui.request.headers.get("Transfer-Encoding") == "chunked"
    assert ui.status_code == 200, ui.text
    got = api(served, "reader", "GET", f"{ARTIFACTS}/{root}/ui/streamed.bin")
    assert got.content == _bytes_of(200_000)
    # One session for all: each answer came whole, and the next request went out fine.
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {served.tokens['contributor']}"
        for n in range(3):
            url = f"{served.uri}/api/{ARTIFACTS}/{root}/session/{n}.bin"
            assert session.put(url, data=_chunks(70_000 * n), timeout=60).status_code == 200
            assert session.get(url, timeout=60).content == _bytes_of(70_000 * n)


def test_a_chunked_upload_over_the_limit_is_refused_like_a_sized_one(served_by, cast):
    """The limit holds while reading: the same 413 as a sized upload gets before reading,
    and nothing of the body is left, neither the file nor the folders made for it."""
    served = served_by(ARTIFACT_MAX_UPLOAD_BYTES="1000000")
    sized = api(served, "owner", "PUT", f"{ARTIFACTS}/big/a/file.bin", data=b"x" * 1_000_001)
    chunked = api(served, "owner", "PUT", f"{ARTIFACTS}/big/b/file.bin", data=_chunks(3_000_000))
    assert chunked.request.headers.get("Transfer-Encoding") == "chunked"
    assert (chunked.status_code, chunked.json()) == (sized.status_code, sized.json())
    assert sized.status_code == 413
    assert sized.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    just_fits = api(served, "owner", "PUT", f"{ARTIFACTS}/ok/file.bin", data=_chunks(1_000_000))
    assert just_fits.status_code == 200, just_fits.text
    assert [(e.path, e.file_size) for e in store_for(cast.workspace).walk()] == [
        ("ok/file.bin", 1_000_000)
    ]
    root = Path(cast.workspace.artifact_root)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "ok",
        "ok/file.bin",
    ]


def _stored(cast, path: str) -> bytes:
    with store_for(cast.workspace).open(path) as reader:
        return b"".join(reader)


def _chunked_put(served, path: str, framed: bytes, *, keep_alive: bool = False) -> bytes:
    """Everything the server answers to a PUT of the already framed chunked `framed`,
    up to its closing the connection (a server that keeps it open fails the test)."""
    url = urlsplit(served.uri)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            (
                f"PUT {url.path}/api/{ARTIFACTS}/{path} HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\nAuthorization: Bearer {served.tokens['owner']}\r\n"
                "Transfer-Encoding: chunked\r\n"
                + ("" if keep_alive else "Connection: close\r\n")
                + "\r\n"
            ).encode()
            + framed
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_chunk_extensions_and_trailers_are_read_past(served_by, cast):
    served = served_by()
    framed = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"
    answer = _chunked_put(served, "framed/file.txt", framed)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert _stored(cast, "framed/file.txt") == b"hello world"


@pytest.mark.parametrize(
    "framed",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",  # not a size
        b"5\r\nhelloXX0\r\n\r\n",  # no line end after the data
        b"5\r\nhel",  # cut short: the client says no more (Connection: close) and waits
    ],
)
def test_a_malformed_chunked_body_is_refused_at_once(served_by, cast, framed):
    """A 400 that says what is wrong, in well under the client's patience, and nothing
    of the body kept."""
    served = served_by()
    started = time.monotonic()
    answer = (
        _chunked_put(served, "bad/file.bin", framed)
        if framed != b"5\r\nhel"
        else _chunked_put_then_stop(served, "bad/file.bin", framed)
    )
    assert time.monotonic() - started < 5
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"chunked" in body
    assert list(store_for(cast.workspace).walk()) == []


def test_a_chunk_size_line_that_does_not_end_is_refused(tracking, cast):
    """Under Django's server the decoder waits for a line no longer than it may be.
    (gunicorn's decoder, which is gunicorn's own, waits for the end of the line.)"""
    started = time.monotonic()
    answer = _chunked_put(tracking, "bad/file.bin", b"1" * 70_000)
    assert time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"chunk-size line or the trailers exceed 16384 bytes" in answer
    assert list(store_for(cast.workspace).walk()) == []


def test_a_body_framed_two_ways_is_refused_under_djangos_server(tracking, cast):
    """Transfer-Encoding besides chunked, or with Content-Length too: which bytes are
    the body is not certain, so nothing is read as one (gunicorn refuses it too)."""
    url = urlsplit(tracking.uri)
    both = "Transfer-Encoding: chunked\r\nContent-Length: 5"
    for framing in ("Transfer-Encoding: gzip, chunked", both):
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(
                (
                    f"PUT {url.path}/api/{ARTIFACTS}/two/file.bin HTTP/1.1\r\n"
                    f"Host: {url.netloc}\r\nAuthorization: Bearer {tracking.tokens['owner']}"
                    f"\r\n{framing}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                ).encode()
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
        assert answer.count(b"HTTP/1.1 ") == 1
    assert list(store_for(cast.workspace).walk()) == []


def _chunked_put_then_stop(served, path: str, framed: bytes) -> bytes:
    """As _chunked_put, but the client ends its side after `framed` (an upload whose
    sender went away mid-body)."""
    url = urlsplit(served.uri)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            (
                f"PUT {url.path}/api/{ARTIFACTS}/{path} HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\nAuthorization: Bearer {served.tokens['owner']}\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            ).encode()
            + framed
        )
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_no_byte_of_a_chunked_body_is_taken_for_a_next_request(tracking, cast):
    """Under Django's own server, a chunked request's connection ends with its answer: a
    body left unread (here malformed, carrying what looks like a request) cannot be
    served as the next request, and a well-formed one is answered and closed too."""
    smuggled = (
        f"GET {urlsplit(tracking.uri).path}/api/2.0/mlflow/experiments/search?max_results=1"
        f" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tracking.tokens['owner']}\r\n\r\n"
    ).encode()
    answer = _chunked_put(tracking, "s/file.bin", b"zz\r\n" + smuggled, keep_alive=True)
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nConnection: close\r\n" in answer
    answer = _chunked_put(tracking, "s/file.bin", b"2\r\nok\r\n0\r\n\r\n", keep_alive=True)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 ") == 1, answer
    assert _stored(cast, "s/file.bin") == b"ok"


# --- The legacy run-artifact endpoints of mlflow's UI ---------------------------------------


def legacy(tracking, who: str | None, method: str, path: str, **kwargs):
    """A call below the tracking URI itself (get-artifact) or under ajax-api/."""
    headers = {"Authorization": f"Bearer {tracking.tokens[who]}"} if who else {}
    return requests.request(method, f"{tracking.uri}/{path}", headers=headers, timeout=60, **kwargs)


def test_get_artifact_serves_a_file_of_the_run(tracking, cast, backend):
    run = make_run(cast.workspace)
    base = run.artifact_uri.removeprefix("mlflow-artifacts:/")
    store = store_for(cast.workspace)
    store.write(f"{base}/model/MLmodel", [b"flavors: {}"])
    store.write(f"{base}/page.html", [b"<script>alert(1)</script>"])

    def get(who="reader", **params):
        return legacy(tracking, who, "GET", "get-artifact", params=params)

    got = get(run_uuid=run.run_uuid, path="model/MLmodel")
    assert got.status_code == 200, got.text
    assert got.content == b"flavors: {}"
    assert got.headers["Content-Disposition"] == 'attachment; filename="MLmodel"'
    assert get(run_id=run.run_uuid, path="model/MLmodel").content == b"flavors: {}"
    page = get(run_uuid=run.run_uuid, path="page.html")
    assert page.headers["Content-Disposition"] == 'attachment; filename="page.html"'
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in page.headers["Content-Security-Policy"]

    folder = get(run_uuid=run.run_uuid, path="model")
    assert (folder.status_code, folder.json()) == (
        400,
        {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": "Artifact path refers to a directory, not a file: 'model'",
        },
    )
    missing = get(run_uuid=run.run_uuid, path="model/nope")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    for bad in ({"run_uuid": run.run_uuid}, {"path": "model/MLmodel"}):
        assert get(**bad).json()["error_code"] == "INVALID_PARAMETER_VALUE"
    for attack in ("../../other/file", "/etc/passwd", "%2e%2e/x"):
        refused = get(run_uuid=run.run_uuid, path=attack)
        assert (refused.status_code, refused.json()["error_code"]) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
    # Another workspace's run is not there; access is the protocol's.
    other = make_run(cast.other_workspace)
    store_for(cast.other_workspace).write(
        f"{other.artifact_uri.removeprefix('mlflow-artifacts:/')}/secret.txt", [b"secret"]
    )
    hidden = get("owner", run_uuid=other.run_uuid, path="secret.txt")
    assert (hidden.status_code, hidden.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert get("outsider", run_uuid=run.run_uuid, path="model/MLmodel").status_code == 404
    assert get(None, run_uuid=run.run_uuid, path="model/MLmodel").status_code == 401


def test_upload_artifact_stores_what_the_ui_sends(tracking, cast, settings, tmp_path):
    import mlflow

    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("ui-upload")).info.run_id
    path = "2.0/mlflow/upload-artifact"

    def post(params, data=b"\x89PNG plot", who="contributor", prefix="ajax-api"):
        return legacy(tracking, who, "POST", f"{prefix}/{path}", params=params, data=data)

    stored = post({"run_uuid": run_id, "path": "images/plot.png"})
    assert stored.status_code == 200, stored.text
    assert stored.content == b""  # as mlflow server answers
    files = client.list_artifacts(run_id, "images")
    assert [(f.path, f.file_size) for f in files] == [("images/plot.png", 9)]
    out = client.download_artifacts(run_id, "images/plot.png", str(tmp_path))
    assert Path(out).read_bytes() == b"\x89PNG plot"

    def refused(response) -> tuple:
        return response.status_code, response.json()["error_code"], response.json()["message"]

    invalid = (400, "INVALID_PARAMETER_VALUE")
    assert refused(post({"path": "a.txt"})) == (*invalid, "Request must specify run_uuid.")
    assert refused(post({"run_uuid": run_id})) == (*invalid, "Request must specify path.")
    assert refused(post({"run_uuid": run_id, "path": "e.txt"}, data=b"")) == (
        *invalid,
        "Request must specify data.",
    )
    assert refused(post({"run_uuid": run_id, "path": "big.bin"}, data=b"x" * (10 * 2**20 + 1))) == (
        *invalid,
        "Artifact size is too large. Max size is 10MB.",
    )
    assert refused(post({"run_uuid": run_id, "path": "../../escape.txt"}))[:2] == invalid
    assert refused(post({"run_uuid": "no-such-run", "path": "a.txt"}))[:2] == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert post({"run_uuid": run_id, "path": "r.txt"}, who="reader").status_code == 403
    assert post({"run_uuid": run_id, "path": "o.txt"}, who="outsider").status_code == 404
    # mlflow server has it under ajax-api/ only.
    assert refused(post({"run_uuid": run_id, "path": "a.txt"}, prefix="api"))[:2] == (
        404,
        "ENDPOINT_NOT_FOUND",
    )
    # A server limit below mlflow's 10 MB applies as it does to every upload.
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 100
    assert refused(post({"run_uuid": run_id, "path": "c.bin"}, data=b"x" * 101))[:2] == (
        413,
        "REQUEST_LIMIT_EXCEEDED",
    )
    assert [f.path for f in client.list_artifacts(run_id)] == ["images"]
