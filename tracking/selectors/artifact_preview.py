"""Artifact previews for the run page: text, JSON, CSV/TSV tables, images, MLmodel files.

Only the head of a file is ever read (PREVIEW_BYTES), so a multi-gigabyte log costs
what a small one does; the rest is a download away.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import posixpath
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import yaml
from mlflow.utils.mime_type_utils import _guess_mime_type, get_text_extensions

from tracking.artifacts import ArtifactReader, ArtifactStore

PREVIEW_BYTES = 1024 * 1024
TABLE_ROWS = 100
SNIFF_BYTES = 8192
MLMODEL = "MLmodel"

IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}
# Rendered by the browser itself without running anything of the file's.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}
TEXT_EXTENSIONS = {ext.lower() for ext in get_text_extensions()} | {
    "md",
    "markdown",
    "sh",
    "bash",
    "r",
    "sql",
    "html",
    "htm",
    "css",
    "ts",
    "java",
    "scala",
    "c",
    "h",
    "cpp",
    "go",
    "rs",
    "jsonl",
    "ndjson",
    "out",
    "stdout",
    "stderr",
    "env",
    "dockerfile",
    "gitignore",
    "requirements",
}
BINARY_EXTENSIONS = {
    "pkl", "pickle", "joblib", "skops", "bin", "pt", "pth", "onnx", "h5", "hdf5", "npy", "npz",
    "parquet", "feather", "arrow", "avro", "orc", "zip", "gz", "tgz", "bz2", "xz", "7z",
    "tar", "whl", "so", "dll", "exe", "pdf", "safetensors", "ckpt", "pb", "tflite",
    "mp3", "mp4", "wav", "avi", "mov", "bmp", "tif", "tiff", "ico",
}  # fmt: skip


@dataclass
class Preview:
    """What the preview pane shows for one file. `kind` picks the template block:
    text, json, table, image, mlmodel or none (no preview: download only)."""

    path: str
    size: int
    kind: str = "none"
    text: str = ""
    truncated: bool = False  # only the first PREVIEW_BYTES are shown
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    more_rows: bool = False
    model: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # why a file is shown in a plainer way than its name suggests

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def limit(self) -> int:
        return PREVIEW_BYTES


def extension(path: str) -> str:
    name = posixpath.basename(path)
    if name == MLMODEL:
        return MLMODEL
    base, dot, ext = name.rpartition(".")
    return ext.lower() if dot and base else name.lower()


def content_type(path: str) -> str:
    """The type a download is served as (MLflow's guess, as its own server answers)."""
    ext = extension(path)
    if ext in IMAGE_TYPES:
        return IMAGE_TYPES[ext]
    return _guess_mime_type(path)


def inline_safe(path: str) -> bool:
    return content_type(path) in INLINE_TYPES


def _read_head(reader: ArtifactReader, limit: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < limit:
        chunk = reader.read(min(limit - got, 256 * 1024))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _decode(data: bytes, *, complete: bool) -> str:
    """UTF-8 text of a file's head: a character cut in half at the end is dropped."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(data, final=complete)


def looks_like_text(data: bytes) -> bool:
    """Whether a file of unknown type is text: no NUL bytes, valid UTF-8 at its start."""
    sample = data[:SNIFF_BYTES]
    if b"\x00" in sample:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def artifact_preview(store: ArtifactStore, path: str) -> Preview:
    """The preview of the file at `path` (a store path that has been cleaned); raises
    NotFound / InvalidParameter as the store does."""
    ext = extension(path)
    with store.open(path) as reader:
        preview = Preview(path=path, size=reader.size)
        if ext in IMAGE_TYPES:
            preview.kind = "image"
            return preview
        if ext in BINARY_EXTENSIONS:
            return preview
        data = _read_head(reader, PREVIEW_BYTES + 1)
    preview.truncated = len(data) > PREVIEW_BYTES
    data = data[:PREVIEW_BYTES]
    if ext not in TEXT_EXTENSIONS and ext != MLMODEL and not looks_like_text(data):
        return preview
    preview.text = _decode(data, complete=not preview.truncated)
    preview.kind = "text"
    if ext == MLMODEL:
        _as_mlmodel(preview)
    elif ext == "json":
        _as_json(preview)
    elif ext in ("csv", "tsv"):
        _as_table(preview, "\t" if ext == "tsv" else ",")
    return preview


def _as_json(preview: Preview) -> None:
    if preview.truncated:
        preview.note = "Too large to format: the start of the file is shown as it is."
        return
    try:
        value = json.loads(preview.text)
    except ValueError:
        preview.note = "Not valid JSON: shown as text."
        return
    preview.kind = "json"
    preview.text = json.dumps(value, indent=2, ensure_ascii=False)


def _as_table(preview: Preview, delimiter: str) -> None:
    wanted = TABLE_ROWS + 2  # the header, the rows shown, and one to know more follow
    try:
        rows = list(islice(csv.reader(io.StringIO(preview.text), delimiter=delimiter), wanted))
    except csv.Error:
        preview.note = "Could not be read as a table: shown as text."
        return
    if preview.truncated and len(rows) < wanted:
        rows = rows[:-1]  # the last row read may be cut short
    if not rows:
        return
    preview.kind = "table"
    preview.header = rows[0]
    preview.rows = rows[1 : TABLE_ROWS + 1]
    preview.more_rows = len(rows) > TABLE_ROWS + 1 or preview.truncated
    width = max(len(row) for row in rows[: TABLE_ROWS + 1])
    preview.header += [""] * (width - len(preview.header))


# --- MLmodel ---------------------------------------------------------------------------------


def _scalars(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A flavor's settings flattened to (dotted key, text) pairs."""
    if isinstance(value, dict):
        pairs = []
        for key, inner in value.items():
            pairs += _scalars(inner, f"{prefix}{key}.")
        return pairs
    if value is None:
        return []
    text = json.dumps(value) if isinstance(value, list) else str(value)
    return [(prefix.rstrip("."), text)]


def _shape(shape: Any) -> str:
    """[-1, 2] → 'shape (-1, 2)'; -1 is any size, as MLflow writes it."""
    dims = shape if isinstance(shape, list | tuple) else [shape]
    return "shape (" + ", ".join(str(d) for d in dims) + ")"


def _signature_columns(raw: Any) -> list[dict[str, str]] | None:
    """Signature inputs/outputs/params (JSON strings in MLmodel) as table rows."""
    if raw in (None, ""):
        return None
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return [{"name": "", "type": str(raw), "detail": ""}]
    if not isinstance(specs, list):
        return [{"name": "", "type": json.dumps(specs), "detail": ""}]
    rows = []
    for spec in specs:
        if not isinstance(spec, dict):
            continue
        kind = str(spec.get("type", ""))
        details = []
        tensor = spec.get("tensor-spec")
        if isinstance(tensor, dict):
            kind = f"tensor of {tensor.get('dtype', '?')}"
            details.append(_shape(tensor.get("shape")))
        if "default" in spec:
            details.append(f"default {json.dumps(spec['default'])}")
        if spec.get("shape") is not None and not tensor:
            details.append(_shape(spec["shape"]))
        if spec.get("required") is False:
            details.append("optional")
        rows.append({"name": str(spec.get("name", "")), "type": kind, "detail": ", ".join(details)})
    return rows


def _as_mlmodel(preview: Preview) -> None:
    try:
        data = yaml.safe_load(preview.text)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict) or preview.truncated:
        preview.note = "Could not be read as an MLmodel file: shown as text."
        return
    flavors = data.get("flavors") if isinstance(data.get("flavors"), dict) else {}
    signature = data.get("signature") if isinstance(data.get("signature"), dict) else {}
    size = data.get("model_size_bytes")
    preview.kind = "mlmodel"
    preview.model = {
        "run_id": str(data.get("run_id") or ""),
        "model_uuid": str(data.get("model_uuid") or ""),
        "model_id": str(data.get("model_id") or ""),
        "created": str(data.get("utc_time_created") or ""),
        "mlflow_version": str(data.get("mlflow_version") or ""),
        "size": size if isinstance(size, int) else None,
        "artifact_path": str(data.get("artifact_path") or ""),
        "flavors": [(name, _scalars(settings)) for name, settings in flavors.items()],
        "inputs": _signature_columns(signature.get("inputs")),
        "outputs": _signature_columns(signature.get("outputs")),
        "params": _signature_columns(signature.get("params")),
    }
    preview.model["signature_parts"] = [
        (label, preview.model[part])
        for label, part in (("Inputs", "inputs"), ("Outputs", "outputs"), ("Params", "params"))
        if preview.model[part] is not None
    ]
