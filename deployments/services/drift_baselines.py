"""Drift baselines: where a monitor's reference rows come from, and their cache.

Three kinds (`DriftMonitor.BaselineKind`), named by `DriftMonitor.baseline_ref`:

- `run_input` — the training data of a run, logged with `mlflow.log_input`:
  `{"run_id": ..., "dataset_name": ... (optional), "artifact_path": ... (optional)}`.
  The tracking server keeps a dataset's name, digest, schema and *source*, not its rows,
  so the rows must be an artifact of the run: log the frame as a file next to the input,
  e.g. ``df.to_csv("train.csv"); mlflow.log_artifact("train.csv", "data");
  mlflow.log_input(mlflow.data.from_pandas(df, source="data/train.csv", name="train"))``.
  The file is found, in this order: `artifact_path` when given; the artifact the
  dataset's source names (`runs:/<this run>/<path>`, `mlflow-artifacts:/<path>` in the
  workspace, or a path that is an artifact of the run, or whose file name is one);
  else the run's only CSV/Parquet/JSON artifact whose columns include the dataset
  schema's. The dataset is the one named `dataset_name`, else the run's input tagged
  `mlflow.data.context=training`, else its first.
- `dataset` — a registered (evaluation) dataset: `{"dataset_id": "d-..."}`; each
  record's `inputs` is a row.
- `csv` — an uploaded CSV, stored in the workspace's artifact store under
  `drift-baselines/<service id>/<monitor name>/baseline.csv` (at most
  `MAX_UPLOAD_BYTES`): `{"path": ..., "filename": ...}`.

Rows are sampled to at most `MAX_ROWS` (a fixed seed, so every run compares with the
same rows) and cached per monitor as Parquet under DATA_DIR/drift-baselines, keyed by
what names the baseline (and a registered dataset's digest, which changes on upserts).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from django.conf import settings
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from deployments.models import DriftMonitor
from portal.errors import InvalidParameter, NotFound
from portal.models import Workspace
from tracking.artifacts import artifact_uri_path, clean_artifact_path, join, store_for
from tracking.models import Dataset, EvaluationDatasetRecord, Run, RunInput
from tracking.selectors.core import run_get
from tracking.selectors.evaluation_datasets import evaluation_dataset_get

log = logging.getLogger(__name__)

Kind = DriftMonitor.BaselineKind
MAX_ROWS = 100_000
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # an uploaded CSV
MAX_ARTIFACT_BYTES = 200 * 1024 * 1024  # a run's data file read as the baseline
MAX_ARTIFACTS_SCANNED = 500
TABULAR = (".csv", ".parquet", ".pq", ".json")
SAMPLE_SEED = 0
CSV_PREFIX = "drift-baselines"


# --- Reading files -------------------------------------------------------------------------


def read_table(data: bytes, name: str) -> pd.DataFrame:
    """A CSV, Parquet or JSON file (`mlflow.log_table`'s split orient, or records) as a
    frame; InvalidParameter when it is none of those."""
    suffix = PurePosixPath(name).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(io.BytesIO(data))
        if suffix == ".json":
            parsed = json.loads(data)
            if isinstance(parsed, dict) and "columns" in parsed and "data" in parsed:
                return pd.DataFrame(parsed["data"], columns=parsed["columns"])
            return pd.DataFrame(parsed)
        return pd.read_csv(io.BytesIO(data))
    except (ValueError, TypeError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidParameter(
            f"The baseline file '{posixpath.basename(name)}' could not be read as a table: "
            f"{str(exc)[:200]}"
        ) from None
    except ImportError:  # a Parquet engine missing
        raise InvalidParameter("Parquet baselines need pyarrow on the server.") from None


def _read_artifact(workspace: Workspace, path: str, limit: int = MAX_ARTIFACT_BYTES) -> bytes:
    store = store_for(workspace)
    with store.open(path) as reader:
        if reader.size > limit:
            raise InvalidParameter(
                f"The baseline file is {reader.size} bytes; at most {limit} are read."
            )
        return b"".join(reader)


def sample(frame: pd.DataFrame, rows: int = MAX_ROWS) -> pd.DataFrame:
    if len(frame) > rows:
        frame = frame.sample(n=rows, random_state=SAMPLE_SEED)
    return frame.reset_index(drop=True)


# --- Run inputs ----------------------------------------------------------------------------


def _run_dataset(run: Run, dataset_name: str | None) -> Dataset | None:
    inputs = list(RunInput.objects.filter(run=run).select_related("dataset").order_by("pk"))
    if dataset_name:
        named = [i for i in inputs if i.dataset.name == dataset_name]
        if not named:
            raise NotFound(f"The run {run.run_uuid} has no input dataset named '{dataset_name}'.")
        return named[-1].dataset
    for run_input in inputs:
        tags = {t.get("key"): t.get("value") for t in run_input.tags if isinstance(t, dict)}
        if tags.get(MLFLOW_DATASET_CONTEXT) == "training":
            return run_input.dataset
    return inputs[0].dataset if inputs else None


def schema_columns(schema_text: str) -> list[str]:
    """Column names of an mlflow dataset schema (`{"mlflow_colspec": [{"name": ...}]}`)."""
    try:
        schema = json.loads(schema_text or "{}")
    except ValueError:
        return []
    specs = schema.get("mlflow_colspec") if isinstance(schema, dict) else None
    if not isinstance(specs, list):
        return []
    return [s["name"] for s in specs if isinstance(s, dict) and isinstance(s.get("name"), str)]


def _source_uri(dataset: Dataset) -> str:
    try:
        source = json.loads(dataset.source or "{}")
    except ValueError:
        return dataset.source or ""
    if isinstance(source, dict):
        for key in ("uri", "path", "url"):
            if isinstance(source.get(key), str):
                return source[key]
    return ""


def _run_files(workspace: Workspace, root: str) -> list[str]:
    """The run's tabular artifacts, relative to its artifact root (bounded)."""
    found = []
    for count, entry in enumerate(store_for(workspace).walk(root)):
        if count >= MAX_ARTIFACTS_SCANNED:
            break
        relative = entry.path[len(root) :].lstrip("/") if root else entry.path
        if relative.lower().endswith(TABULAR):
            found.append(relative)
    return sorted(found)


def _source_artifact(run: Run, root: str, uri: str, files: list[str]) -> str | None:
    """The workspace path of the artifact a dataset source names, if it names one."""
    if not uri:
        return None
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/") :].partition("/")
        if run_id == run.run_uuid and path:
            return join(root, clean_artifact_path(path))
        return None
    if uri.startswith("mlflow-artifacts:"):
        try:
            return artifact_uri_path(uri)
        except InvalidParameter:
            return None
    if "://" in uri:
        return None
    relative = uri.lstrip("./")
    if relative in files:
        return join(root, relative)
    base = posixpath.basename(uri.replace("\\", "/"))
    matches = [f for f in files if posixpath.basename(f) == base]
    return join(root, matches[0]) if len(matches) == 1 else None


def run_input_frame(workspace: Workspace, ref: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """The rows of a run's logged training data, and the artifact they came from."""
    run = run_get(workspace=workspace, run_id=str(ref.get("run_id") or ""))
    root = artifact_uri_path(run.artifact_uri)
    if ref.get("artifact_path"):
        path = join(root, clean_artifact_path(str(ref["artifact_path"])))
        return read_table(_read_artifact(workspace, path), path), path
    dataset = _run_dataset(run, ref.get("dataset_name"))
    files = _run_files(workspace, root)
    if dataset is not None:
        path = _source_artifact(run, root, _source_uri(dataset), files)
        if path is not None and store_for(workspace).exists(path):
            return read_table(_read_artifact(workspace, path), path), path
    wanted = set(schema_columns(dataset.schema)) if dataset is not None else set()
    for relative in files:
        path = join(root, relative)
        try:
            frame = read_table(_read_artifact(workspace, path), path)
        except InvalidParameter:
            continue
        if not wanted or wanted <= {str(c) for c in frame.columns}:
            return frame, path
    raise InvalidParameter(
        f"No data for the baseline in the run {run.run_uuid}: log the frame as a CSV, "
        "Parquet or JSON artifact of the run (and name it as the dataset's source, or give "
        "artifact_path)."
    )


# --- Registered datasets and uploads -------------------------------------------------------


def dataset_frame(workspace: Workspace, ref: dict[str, Any]) -> pd.DataFrame:
    dataset = evaluation_dataset_get(workspace=workspace, dataset_id=str(ref.get("dataset_id")))
    records = EvaluationDatasetRecord.objects.filter(dataset=dataset).order_by(
        "created_time", "record_id"
    )
    rows = [r for r in records.values_list("inputs", flat=True)[:MAX_ROWS] if isinstance(r, dict)]
    frame = pd.DataFrame.from_records(rows)
    # Nested inputs (lists, dicts) are no feature of a table.
    flat = [
        c for c in frame.columns if not frame[c].map(lambda v: isinstance(v, list | dict)).any()
    ]
    return frame[flat]


def csv_path(service_id: int, monitor_name: str) -> str:
    return join(CSV_PREFIX, str(service_id), clean_artifact_path(monitor_name), "baseline.csv")


def csv_store(workspace: Workspace, path: str, data: bytes) -> None:
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidParameter(
            f"The baseline CSV is {len(data)} bytes; at most {MAX_UPLOAD_BYTES} are accepted."
        )
    store_for(workspace).write(path, [data])


def csv_delete(workspace: Workspace, path: str) -> None:
    store_for(workspace).delete(path)


# --- Any kind, cached ----------------------------------------------------------------------


def csv_frame(data: bytes) -> pd.DataFrame:
    """An uploaded CSV's rows (sampled), before it is stored."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidParameter(
            f"The baseline CSV is {len(data)} bytes; at most {MAX_UPLOAD_BYTES} are accepted."
        )
    return _prepared(read_table(data, "baseline.csv"))


def load(workspace: Workspace, kind: str, ref: dict[str, Any]) -> pd.DataFrame:
    """The baseline's rows (sampled), read from where they are kept."""
    if kind == Kind.RUN_INPUT:
        frame, _ = run_input_frame(workspace, ref)
    elif kind == Kind.DATASET:
        frame = dataset_frame(workspace, ref)
    elif kind == Kind.CSV:
        frame = read_table(_read_artifact(workspace, ref["path"], MAX_UPLOAD_BYTES), "b.csv")
    else:
        raise InvalidParameter(f"Unknown baseline kind '{kind}'.")
    return _prepared(frame)


def _prepared(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty or not len(frame.columns):
        raise InvalidParameter("The baseline has no rows.")
    return sample(frame)


def _cache_key(monitor: DriftMonitor) -> str:
    ref = dict(monitor.baseline_ref)
    ref.pop("columns", None)
    ref.pop("rows", None)
    if monitor.baseline_kind == Kind.DATASET:
        digest = (
            monitor.workspace.evaluation_datasets.filter(dataset_id=ref.get("dataset_id"))
            .values_list("digest", flat=True)
            .first()
        )
        ref["digest"] = digest
    text = json.dumps([monitor.baseline_kind, ref], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cache_dir() -> Path:
    return Path(settings.DATA_DIR) / "drift-baselines"


def cached_frame(monitor: DriftMonitor) -> pd.DataFrame:
    """The monitor's baseline rows, from this host's cache when it holds them."""
    key = _cache_key(monitor)
    folder = cache_dir()
    path = folder / f"{monitor.pk}-{key}.parquet"
    if path.exists():
        try:
            return pd.read_parquet(path)
        except Exception:  # a torn or foreign file: read the baseline again
            log.warning("Unreadable drift baseline cache %s; reloading", path.name)
    frame = load(monitor.workspace, monitor.baseline_kind, monitor.baseline_ref)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{monitor.pk}-*.parquet"):
        old.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        _parquet_safe(frame).to_parquet(tmp, index=False)
        tmp.replace(path)
    except Exception:  # the cache is an optimisation: never a reason to fail
        log.warning("Could not cache the baseline of drift monitor %s", monitor.pk, exc_info=True)
        tmp.unlink(missing_ok=True)
    return frame


def cache_forget(monitor_pk: int) -> None:
    for old in cache_dir().glob(f"{monitor_pk}-*.parquet"):
        old.unlink(missing_ok=True)


def cache_prune(live: set[int]) -> None:
    """Remove cached baselines of monitors not in `live`."""
    for cached in cache_dir().glob("*-*.parquet"):
        owner = cached.name.split("-", 1)[0]
        if owner.isdigit() and int(owner) not in live:
            cached.unlink(missing_ok=True)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns of mixed types as text (what the categorical statistics compare)."""
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object:
            out[name] = out[name].map(lambda v: None if v is None else str(v))
    return out
