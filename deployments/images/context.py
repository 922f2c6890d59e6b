"""An image's build context: what is in it and how it is written.

    Dockerfile            FROM the base image; installs requirements.txt from wheelhouse/
    requirements.txt      the model's pinned requirements plus the scoring server's
    model/                the MLflow model directory, as logged
    mlstudio_scoring/     our scoring server (a copy of deployments/scoring, no Django)
    scoring-config.json   a default config: this model, no auth, no telemetry
    wheelhouse/           only in a Docker build, never in the stored zip (it is big and
                          made again from the wheel cache in seconds)

Pure functions over folders: no database, no Django settings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

SCORING_SOURCE = Path(__file__).resolve().parent.parent / "scoring"
SCORING_PACKAGE = "mlstudio_scoring"
# What the scoring server imports besides the model's own requirements, when
# deployments/scoring/requirements.txt does not say.
SCORING_REQUIREMENTS_DEFAULT = ("uvicorn", "orjson")
# The port the scoring server listens on inside a container.
CONTAINER_PORT = 5001
CONFIG_NAME = "scoring-config.json"
# Folders of a context that are never stored in its zip.
NOT_STORED = ("wheelhouse",)


class ContextError(Exception):
    """The model's files cannot make an image (no MLmodel, an unusable requirement)."""


@dataclass(frozen=True)
class ModelInfo:
    python_version: str  # major.minor, what the environment is built with
    python_full: str  # as the model recorded it
    requirements: list[str]  # pinned, normalised, ours included
    signature: dict | None
    flavors: list[str]


def _minor(version: str) -> str:
    parts = str(version).strip().split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise ContextError(f"The model records an unusable Python version {version!r}.")
    return ".".join(parts[:2])


def _requirement_lines(text: str) -> list[Requirement]:
    out = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            # An option (-r, --index-url, -e) would reach pip as one: refuse it here,
            # as the environment cache would.
            raise ContextError(f"The model's requirements.txt has an option line: {line[:80]!r}.")
        try:
            out.append(Requirement(line))
        except InvalidRequirement as exc:
            raise ContextError(f"The model's requirements.txt has {line[:80]!r}: {exc}") from None
    return out


def _installed_pin(name: str) -> str:
    """`name==<the studio's version>`: the scoring server is tested with those."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


def scoring_requirements() -> list[Requirement]:
    """What the scoring server needs: its own requirements.txt when it has one, else
    uvicorn and orjson; unpinned ones pinned to the studio's installed versions."""
    listed = SCORING_SOURCE / "requirements.txt"
    lines = (
        listed.read_text().splitlines() if listed.is_file() else list(SCORING_REQUIREMENTS_DEFAULT)
    )
    out = []
    for req in _requirement_lines("\n".join(lines)):
        out.append(req if req.specifier or req.url else Requirement(_installed_pin(req.name)))
    return out


def merge_requirements(model: list[Requirement], ours: list[Requirement]) -> list[str]:
    """The model's pins, then ours for what the model does not name.

    `mlflow` becomes `mlflow-skinny` of the same version: the scoring server only loads
    pyfunc models, and full mlflow adds the tracking server, its UI, pyarrow, matplotlib
    and more — several times the download and the image. pandas, which pyfunc needs and
    skinny does not bring, is added when the model does not pin it."""
    by_name: dict[str, Requirement] = {}
    for req in model:
        if canonicalize_name(req.name) == "mlflow":
            req = Requirement(str(req).replace(req.name, "mlflow-skinny", 1))
        by_name.setdefault(canonicalize_name(req.name), req)
    extra = [*ours, Requirement(_installed_pin("pandas"))]
    if "mlflow-skinny" not in by_name:
        extra.append(Requirement(_installed_pin("mlflow-skinny")))
    for req in extra:
        by_name.setdefault(canonicalize_name(req.name), req)
    return [str(by_name[name]) for name in sorted(by_name)]


def read_model(model_dir: Path, *, default_python: str) -> ModelInfo:
    """The model's MLmodel (flavors, signature), python_env.yaml (Python version) and
    requirements.txt (pinned by mlflow when it was logged)."""
    mlmodel_path = model_dir / "MLmodel"
    if not mlmodel_path.is_file():
        raise ContextError("The model directory has no MLmodel file; is it an MLflow model?")
    try:
        mlmodel = yaml.safe_load(mlmodel_path.read_text()) or {}
    except yaml.YAMLError:
        raise ContextError("The model's MLmodel file is not valid YAML.") from None
    flavors = sorted((mlmodel.get("flavors") or {}).keys())
    if "python_function" not in flavors:
        raise ContextError(
            "The model has no python_function flavor, so the scoring server cannot load it."
        )
    signature = None
    if isinstance(mlmodel.get("signature"), dict):
        # MLmodel keeps inputs/outputs as JSON strings, as ModelSignature.to_dict() does.
        signature = {k: v for k, v in mlmodel["signature"].items() if v is not None}
    python_full = default_python
    env_file = model_dir / "python_env.yaml"
    if env_file.is_file():
        try:
            env = yaml.safe_load(env_file.read_text()) or {}
        except yaml.YAMLError:
            raise ContextError("The model's python_env.yaml is not valid YAML.") from None
        python_full = str(env.get("python") or default_python)
    req_file = model_dir / "requirements.txt"
    model_reqs = _requirement_lines(req_file.read_text()) if req_file.is_file() else []
    if not model_reqs:
        model_reqs = [Requirement(_installed_pin("mlflow"))]
    return ModelInfo(
        python_version=_minor(python_full),
        python_full=python_full,
        requirements=merge_requirements(model_reqs, scoring_requirements()),
        signature=signature,
        flavors=flavors,
    )


def dockerfile(base_image: str) -> str:
    return f"""\
# Built by ML Studio. Offline: every package comes from wheelhouse/, made on the host.
FROM {base_image}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt /app/requirements.txt
COPY wheelhouse /wheelhouse
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-index --find-links /wheelhouse -r /app/requirements.txt \\
 && rm -rf /wheelhouse
COPY {SCORING_PACKAGE} /app/{SCORING_PACKAGE}
COPY model /app/model
COPY {CONFIG_NAME} /app/{CONFIG_NAME}
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app
EXPOSE {CONTAINER_PORT}
CMD ["python", "-m", "{SCORING_PACKAGE}", "--config", "/app/{CONFIG_NAME}", \\
     "--host", "0.0.0.0", "--port", "{CONTAINER_PORT}"]
"""


def default_config(name: str, model_dir: str = "/app/model") -> dict:
    """A config that serves the model without keys or telemetry: what `docker run` of the
    bare image does. Deployed services get their own config from the studio."""
    return {
        "service": name,
        "service_id": 0,
        "model_dir": model_dir,
        "auth_enabled": False,
        "key_hashes": [],
        "token_secret": "",
        "telemetry_url": None,
        "telemetry_token": None,
        "telemetry_interval_s": 5,
        "sample_rate": 0.0,
        "sample_max_rows": 100,
    }


def copy_scoring_package(dest: Path) -> None:
    """deployments/scoring as the top-level package mlstudio_scoring (its imports are
    relative, so it runs under either name)."""
    if not (SCORING_SOURCE / "__init__.py").is_file():
        raise ContextError("The scoring server package (deployments/scoring) is missing.")
    shutil.copytree(
        SCORING_SOURCE,
        dest / SCORING_PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "test_*"),
        dirs_exist_ok=True,
    )


def write_context(context: Path, *, name: str, base_image: str, requirements: list[str]) -> None:
    """Everything but model/ (copied in first) and wheelhouse/ (a Docker build's)."""
    (context / "Dockerfile").write_text(dockerfile(base_image))
    (context / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    (context / CONFIG_NAME).write_text(json.dumps(default_config(name), indent=2) + "\n")
    copy_scoring_package(context)


def zip_context(context: Path, dest: Path) -> int:
    """The context as a zip (wheelhouse/ left out), files in a stable order; its size."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(context.rglob("*")):
            rel = path.relative_to(context)
            if rel.parts[0] in NOT_STORED or not path.is_file() or path.is_symlink():
                continue
            archive.write(path, rel.as_posix())
    return dest.stat().st_size


_SAFE_MEMBER = re.compile(r"^[^\x00-\x1f\\]+$")


def unzip_context(archive_path: Path, dest: Path) -> None:
    """Unpack a stored context, refusing members that would land outside `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zipfile.ZipFile(archive_path) as archive:
        for member in archive.infolist():
            name = member.filename
            target = (root / name).resolve()
            if (
                not _SAFE_MEMBER.match(name)
                or name.startswith("/")
                or ".." in Path(name).parts
                or not str(target).startswith(str(root) + os.sep)
            ):
                raise ContextError(f"The stored build context has an unsafe entry {name[:80]!r}.")
            archive.extract(member, root)
