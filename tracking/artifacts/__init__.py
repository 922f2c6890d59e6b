"""Artifact storage: one store per workspace, chosen by its `artifact_root`.

A local folder (the embedded default) or an Azure Blob container URL. Paths are
relative to the workspace's root, so nothing of another workspace is reachable:

    store = store_for(workspace)
    store.write("1/<run>/artifacts/model/MLmodel", chunks)
    for entry in store.list("1/<run>/artifacts"): ...
    with store.open("1/<run>/artifacts/model/MLmodel") as reader: data = b"".join(reader)
    store.delete_prefix(f"{experiment_id}/{run_uuid}")   # purges

Paths that come from users go through `clean_artifact_path` first.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from tracking.artifacts.base import (
    CHUNK_SIZE,
    ArtifactEntry,
    ArtifactReader,
    ArtifactStore,
    UploadTooLarge,
)
from tracking.artifacts.blob import BlobArtifactStore
from tracking.artifacts.local import LocalArtifactStore
from tracking.artifacts.paths import artifact_uri_path, clean_artifact_path, join


def store_for_root(artifact_root: str) -> ArtifactStore:
    """The store for an artifact root (a workspace's, or one kept after its row is gone)."""
    parsed = urlparse(artifact_root)
    if parsed.scheme in ("http", "https"):
        return BlobArtifactStore.from_url(artifact_root)
    if parsed.scheme == "file":
        return LocalArtifactStore(Path(parsed.path))
    if parsed.scheme == "":
        return LocalArtifactStore(Path(artifact_root))
    raise ValueError("unsupported artifact root")


def store_for(workspace) -> ArtifactStore:
    """The workspace's artifact store; paths given to it are relative to its root."""
    return store_for_root(workspace.artifact_root)


def list_under_uri(workspace, root_uri: str, path: str = "") -> list[ArtifactEntry]:
    """List folder `path` of an `mlflow-artifacts:/...` location (a run's artifact_uri,
    a logged model's artifact_location), with paths relative to that location, as
    MLflow's `artifacts/list` answers."""
    root = artifact_uri_path(root_uri)
    path = clean_artifact_path(path)
    return [
        ArtifactEntry(join(path, entry.name), entry.is_dir, entry.file_size)
        for entry in store_for(workspace).list(join(root, path))
    ]


__all__ = [
    "CHUNK_SIZE",
    "ArtifactEntry",
    "ArtifactReader",
    "ArtifactStore",
    "BlobArtifactStore",
    "LocalArtifactStore",
    "UploadTooLarge",
    "artifact_uri_path",
    "clean_artifact_path",
    "join",
    "list_under_uri",
    "store_for",
    "store_for_root",
]
