"""Images: a logged model packaged with our scoring server (`build_image`).

`image_build_request` resolves the model URI in the workspace's registry (registering a
version for a `runs:/` URI, as `mlflow.register_model` does), writes the next version of
the named Image and an ImageBuildJob (kind "image_build"), whose message goes on commit.
The job (`image_build_run`, in the studio's Celery worker) does, reporting each phase:

1. copy the model directory out of the workspace's artifact store into a build folder;
2. read the model's MLmodel, python_env.yaml and requirements.txt (signature, Python,
   pinned requirements) and add the scoring server's requirements;
3. write the build context (Dockerfile, model/, requirements.txt, mlstudio_scoring/) and
   store it zipped under the workspace's artifact root, `images/<name>/<version>/`;
4. build the Python environment with uv through the runner's environment cache (the one
   remote runs use) → Image.env_hash;
5. when a Docker engine is reachable, build the container image offline (a wheelhouse made
   on the host, `pip install --no-index` in the Dockerfile) and push it when
   IMAGE_REGISTRY is set. Without an engine the image still succeeds: the local runtime
   runs the scoring server in the uv environment (`image_local`).

Every phase goes to the job's log and the image's build log.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.utils.models import _parse_model_uri

from deployments.images import context as ctx
from deployments.images import engine
from deployments.models import Image, ImageBuildJob
from deployments.runner.envcache import EnvironmentBuildError, EnvironmentCache, EnvSpec
from portal import registry
from portal.errors import InvalidParameter, NotFound, StudioError
from portal.models import Job, Workspace
from portal.services import audit_record, job_create
from portal.services.jobs import describe_text, job_heartbeat, job_log
from tracking.artifacts import artifact_uri_path, join, store_for
from tracking.models import RegisteredModel
from tracking.selectors.registry import model_version_resolve
from tracking.services.model_sources import resolve_source
from tracking.services.registry import model_version_create, registered_model_create

log = logging.getLogger(__name__)

KIND = "image_build"
# Lowercase letters, digits, dashes and periods, 3–32 characters, starting and ending with
# a letter or digit, no two periods in a row: the reference's rule, and one a Docker
# repository name accepts as it is.
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]|\.(?!\.)){1,30}[a-z0-9]$")
MAX_TAGS = 50
BUILD_LOG_LIMIT = 200_000  # characters of Image.build_log kept (the newest)
PHASES = 5
CONTEXT_NAME = "context.zip"
LOCAL_MARKER = ".mlstudio-context.json"


class ImageBuildFailed(StudioError):
    """The model cannot become an image (its files, its requirements, the engine)."""

    code = "INVALID_PARAMETER_VALUE"


# --- Settings -------------------------------------------------------------------------------


def base_image_default() -> str:
    return getattr(settings, "IMAGE_BASE", "") or "mlstudio/python:3.11-bookworm"


def _images_dir() -> Path:
    return Path(settings.DATA_DIR) / "images"


def _env_cache_root() -> Path:
    return Path(getattr(settings, "IMAGE_ENV_CACHE_DIR", "") or Path(settings.DATA_DIR) / "envs")


def env_cache() -> EnvironmentCache:
    """The uv environment cache images are built in: the runner's, under
    IMAGE_ENV_CACHE_DIR (default DATA_DIR/envs)."""
    uv_cache = getattr(settings, "IMAGE_UV_CACHE_DIR", "") or None
    return EnvironmentCache(_env_cache_root(), uv_cache_dir=Path(uv_cache) if uv_cache else None)


def docker_tag(image: Image) -> str:
    """`mlstudio/<workspace-slug>-<name>:<version>`; the slug carries the workspace id, so
    workspaces of the same name in two resource groups never share a tag."""
    slug = re.sub(r"[^a-z0-9]+", "-", image.workspace.name.lower()).strip("-") or "ws"
    return f"mlstudio/{slug}-{image.workspace_id}-{image.name}:{image.version}"


def context_path(image: Image) -> str:
    """The context zip's path below the workspace's artifact root (no run's folder)."""
    return join("images", image.name, str(image.version), CONTEXT_NAME)


# --- Request --------------------------------------------------------------------------------


def check_image_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        shown = name[:40] if isinstance(name, str) else name
        raise InvalidParameter(
            f"Invalid image name {shown!r}: use 3 to 32 lowercase letters, digits, dashes "
            "and periods, starting and ending with a letter or digit."
        )
    return name


def _check_tags(tags: dict | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
        raise InvalidParameter(f"tags must be an object of at most {MAX_TAGS} string pairs.")
    out = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > 250 or not isinstance(value, str):
            raise InvalidParameter("Each tag is a non-empty string key (≤250) with a string value.")
        out[key] = value[:5000]
    return out


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    version: int
    source: str  # mlflow-artifacts:/… in this workspace


def _model_has_files(workspace: Workspace, location: str) -> bool:
    try:
        root = artifact_uri_path(location)
    except InvalidParameter:
        return False
    return store_for(workspace).exists(join(root, "MLmodel"))


def _ensure_registered_model(workspace: Workspace, name: str, actor) -> None:
    if not RegisteredModel.objects.filter(workspace=workspace, name=name).exists():
        registered_model_create(workspace=workspace, name=name, actor=actor)


def resolve_model(
    *, actor: AbstractBaseUser | None, workspace: Workspace, model_uri: str, model_name: str
) -> ResolvedModel:
    """The registered model version the image packages: a `runs:/<run>/<path>` URI becomes
    a new version of `model_name` (the registered model made when missing); a
    `models:/<name>/<version>` or `models:/<name>@<alias>` URI is that version, or a new
    version of `model_name` from it when the names differ."""
    if not isinstance(model_uri, str) or not model_uri.strip():
        raise InvalidParameter("model_uri is required: runs:/<run_id>/<path> or models:/…")
    model_uri = model_uri.strip()
    if not model_uri.startswith(("runs:/", "models:/")):
        raise InvalidParameter(
            f"Unsupported model_uri {model_uri[:100]!r}: use runs:/<run_id>/<path>, "
            "models:/<name>/<version> or models:/<name>@<alias>."
        )
    if model_uri.startswith("models:/"):
        try:
            parsed = _parse_model_uri(model_uri)
        except MlflowException:
            raise InvalidParameter(f"Invalid model_uri {model_uri[:100]!r}.") from None
        if parsed.model_id is not None:
            raise InvalidParameter(
                "models:/<model_id> is not supported here; use models:/<name>/<version>, "
                "models:/<name>@<alias> or runs:/<run_id>/<path>."
            )
        version = model_version_resolve(
            workspace=workspace,
            uri_name=parsed.name,
            version=parsed.version,
            stage=parsed.stage,
            alias=parsed.alias,
        )
        location = version.storage_location or version.source
        if not _model_has_files(workspace, location):
            raise NotFound(f"The files of {model_uri[:100]} are not in this workspace.")
        name = version.registered_model.name
        if not model_name or model_name == name:
            return ResolvedModel(name, version.version, location)
        _ensure_registered_model(workspace, model_name, actor)
        created = model_version_create(
            workspace=workspace, name=model_name, source=f"models:/{name}/{version.version}"
        )
        return ResolvedModel(model_name, created.version, location)
    # runs:/<run_id>/<path>
    source = resolve_source(workspace=workspace, source=model_uri, run_id="", model_id="")
    if not source.storage_location:
        raise NotFound(f"No run '{source.run_id[:40]}' in this workspace.")
    if not _model_has_files(workspace, source.storage_location):
        raise NotFound(f"No MLflow model at {model_uri[:200]} (no MLmodel file there).")
    if not model_name:
        raise InvalidParameter("model_name is required to register the model of a runs:/ URI.")
    _ensure_registered_model(workspace, model_name, actor)
    created = model_version_create(
        workspace=workspace,
        name=model_name,
        source=model_uri,
        run_id=source.run_id,
        model_id=source.model_id,
        user_id=actor.get_username() if actor is not None else "",
    )
    return ResolvedModel(model_name, created.version, source.storage_location)


@transaction.atomic
def image_build_request(
    *,
    actor: AbstractBaseUser | None,
    workspace: Workspace,
    model_uri: str,
    model_name: str,
    image_name: str,
    description: str = "",
    tags: dict | None = None,
    base_image: str | None = None,
) -> Image:
    """Register the model version and queue the build of the next version of
    `image_name`. The caller checked the contributor role."""
    check_image_name(image_name)
    tags = _check_tags(tags)
    description = str(description or "")
    if len(description) > 500:
        raise InvalidParameter("description must be at most 500 characters.")
    base = (base_image or "").strip() or base_image_default()
    if len(base) > 300 or not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$", base):
        raise InvalidParameter(f"Invalid base image {base[:80]!r}.")
    model_name = (model_name or "").strip()
    resolved = resolve_model(
        actor=actor, workspace=workspace, model_uri=model_uri, model_name=model_name
    )
    # One version at a time per name: lock the name's rows (or the workspace's, first time).
    Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
    top = Image.objects.filter(workspace=workspace, name=image_name).aggregate(top=Max("version"))
    image = Image.objects.create(
        workspace=workspace,
        name=image_name,
        version=(top["top"] or 0) + 1,
        description=description,
        tags=tags,
        model_uri=model_uri.strip(),
        model_name=resolved.name,
        model_version=resolved.version,
        model_source=resolved.source,
        base_image=base,
        created_by=actor,
    )
    job_create(
        ImageBuildJob,
        kind=KIND,
        actor=actor,
        label=f"Image {image.id_label}",
        image=image,
        workspace=workspace,
    )
    audit_record(
        actor=actor,
        action="create",
        target=image,
        changes={"model": f"{resolved.name}:{resolved.version}", "model_uri": model_uri[:300]},
    )
    return image


# --- Reads ----------------------------------------------------------------------------------


def image_get(*, workspace: Workspace, name: str, version: int | None = None) -> Image:
    images = Image.objects.filter(workspace=workspace, name=name)
    image = (
        images.filter(version=version).first()
        if version is not None
        else images.order_by("-version").first()
    )
    if image is None:
        where = f"version {version} of " if version is not None else ""
        raise NotFound(f"No {where}image '{str(name)[:40]}' in this workspace.")
    return image


def image_latest_list(*, workspace: Workspace) -> list[Image]:
    """The newest version of each image name, by name."""
    latest = Image.objects.filter(workspace=workspace).values("name").annotate(top=Max("version"))
    wanted = {(row["name"], row["top"]) for row in latest}
    rows = Image.objects.filter(workspace=workspace, name__in=[n for n, _ in wanted])
    return sorted((i for i in rows if (i.name, i.version) in wanted), key=lambda i: i.name)


def image_versions(*, workspace: Workspace, name: str) -> list[Image]:
    images = list(Image.objects.filter(workspace=workspace, name=name).order_by("-version"))
    if not images:
        raise NotFound(f"No image '{str(name)[:40]}' in this workspace.")
    return images


def image_build_job(image: Image) -> ImageBuildJob | None:
    return image.build_jobs.order_by("-created_at").first()


# --- The build job --------------------------------------------------------------------------


class _BuildLog:
    """Lines for the image's build log and the job's log: paths of the server blanked,
    written in batches (a docker build prints hundreds of lines)."""

    FLUSH_SECONDS = 1.0

    def __init__(self, job: ImageBuildJob, image: Image) -> None:
        self.job, self.image = job, image
        self.text = image.build_log
        self.pending: list[str] = []
        self.flushed_at = time.monotonic()

    def __call__(self, line: str) -> None:
        self.pending.append(describe_text(str(line))[:2000])
        if time.monotonic() - self.flushed_at > self.FLUSH_SECONDS or len(self.pending) > 200:
            self.flush()

    def flush(self) -> None:
        self.flushed_at = time.monotonic()
        if not self.pending:
            return
        block = "\n".join(self.pending)
        self.pending = []
        stamp = timezone.now().strftime("%H:%M:%S")
        self.text = (self.text + f"{stamp} {block}\n")[-BUILD_LOG_LIMIT:]
        Image.objects.filter(pk=self.image.pk).update(
            build_log=self.text, updated_at=timezone.now()
        )
        job_log(self.job, block)
        job_heartbeat(self.job)  # a long uv or docker build is alive while it prints


def _update(image: Image, **fields) -> None:
    for key, value in fields.items():
        setattr(image, key, value)
    image.updated_at = timezone.now()
    Image.objects.filter(pk=image.pk).update(**fields, updated_at=image.updated_at)


def _copy_model(image: Image, dest: Path) -> int:
    """The model's files from the artifact store (local folder or Blob) into `dest`."""
    store = store_for(image.workspace)
    root = artifact_uri_path(image.model_source)
    count = 0
    for entry in store.walk(root):
        relative = entry.path[len(root) :].lstrip("/") if root else entry.path
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with store.open(entry.path) as reader, target.open("wb") as out:
            for chunk in reader:
                out.write(chunk)
        count += 1
    if not (dest / "MLmodel").is_file():
        raise ImageBuildFailed("The model's files are gone from the artifact store.")
    return count


def _store_context(image: Image, context: Path, scratch: Path) -> tuple[str, int]:
    archive = scratch / CONTEXT_NAME
    size = ctx.zip_context(context, archive)
    path = context_path(image)

    def chunks() -> Iterator[bytes]:
        with archive.open("rb") as source:
            while block := source.read(1024 * 1024):
                yield block

    store_for(image.workspace).write(path, chunks())
    archive.unlink()
    return f"mlflow-artifacts:/{path}", size


def _env_spec(image: Image) -> EnvSpec:
    try:
        return EnvSpec(image.python_version or None, tuple(image.requirements))
    except ValueError as exc:
        raise ImageBuildFailed(f"The model's requirements cannot be installed: {exc}") from None


def image_build_run(job: Job, progress: registry.Progress) -> None:
    """The job kind's `run`: see the module docstring. Idempotent: a second attempt
    builds again from the model's files."""
    image = Image.objects.select_related("workspace").get(pk=job.image_id)
    if image.state == Image.State.SUCCEEDED:
        return
    _update(image, state=Image.State.RUNNING, error="", build_log="")
    blog = _BuildLog(job, image)
    scratch = _images_dir() / "build" / f"{image.pk}-{uuid.uuid4().hex[:8]}"
    context = scratch / "context"
    try:
        (context / "model").mkdir(parents=True)
        phase = "Copying the model"
        progress(1, phase)
        blog(f"== {phase}: {image.model_name}:{image.model_version} ({image.model_uri})")
        count = _copy_model(image, context / "model")
        blog(f"{count} files")

        phase = "Reading the model's requirements"
        progress(1, phase)
        blog(f"== {phase}")
        try:
            info = ctx.read_model(
                context / "model", default_python=f"{sys.version_info[0]}.{sys.version_info[1]}"
            )
        except ctx.ContextError as exc:
            raise ImageBuildFailed(str(exc)) from None
        _update(
            image,
            python_version=info.python_version,
            requirements=info.requirements,
            signature=info.signature,
        )
        blog(f"Python {info.python_full} (environment: {info.python_version})")
        blog(f"Flavors: {', '.join(info.flavors)}; signature: {'yes' if info.signature else 'no'}")
        for req in info.requirements:
            blog(f"  {req}")

        phase = "Writing the build context"
        progress(1, phase)
        blog(f"== {phase} (FROM {image.base_image})")
        try:
            ctx.write_context(
                context,
                name=image.name,
                base_image=image.base_image,
                requirements=info.requirements,
            )
        except ctx.ContextError as exc:
            raise ImageBuildFailed(str(exc)) from None
        uri, size = _store_context(image, context, scratch)
        _update(image, context_uri=uri)
        blog(f"Stored the context ({size // 1024} KiB) as {uri}")

        phase = "Building the Python environment"
        progress(1, phase)
        blog(f"== {phase} with uv")
        blog.flush()
        spec = _env_spec(image)
        try:
            env = env_cache().ensure(spec, log=blog)
        except EnvironmentBuildError as exc:
            blog(exc.log_tail)
            raise ImageBuildFailed(f"The Python environment could not be built: {exc}") from None
        _update(image, env_hash=spec.build_hash())
        blog(
            f"Environment {env.hash[:12]} "
            + ("built" if env.built_now else "cached")
            + f" in {env.seconds:.1f} s (Python {env.python_version})"
        )

        phase = "Building the container image"
        progress(1, phase)
        blog.flush()
        _docker_phase(image, context, blog)
        _update(image, state=Image.State.SUCCEEDED)
        blog("== Done")
    except Exception as exc:
        blog(f"Failed: {exc}")
        raise
    finally:
        blog.flush()
        shutil.rmtree(scratch, ignore_errors=True)


def _docker_phase(image: Image, context: Path, blog: _BuildLog) -> None:
    mode = getattr(settings, "DOCKER_ENABLED", "auto")
    try:
        client = engine.connect(mode)
    except engine.EngineError as exc:
        raise ImageBuildFailed(str(exc)) from None
    if client is None:
        reason = "DOCKER_ENABLED=0" if str(mode) in ("0", "false") else "Docker was not found"
        blog(f"== No container image: {reason}; the local runtime runs this image's environment.")
        _update(image, image_location=f"local environment {image.env_hash[:12]}")
        return
    try:
        tag = docker_tag(image)
        blog(f"== Building the container image {tag} on {engine.where(client)}")
        # Wheelhouses are cached beside the environments: both are made from the same
        # requirements and outlive any one build.
        engine.wheelhouse(image.requirements, context / "wheelhouse", _env_cache_root(), blog)
        image_id = engine.build(client, context, tag, blog)
        location = tag
        _update(image, docker_tag=tag, docker_image_id=image_id, image_location=location)
        blog(f"Built {tag} ({image_id[:19]})")
        registry_url = getattr(settings, "IMAGE_REGISTRY", "")
        if registry_url:
            blog(f"== Pushing to {registry_url}")
            location = engine.push(client, tag, registry_url, blog)
            _update(image, image_location=location)
            blog(f"Pushed {location}")
    except engine.EngineError as exc:
        raise ImageBuildFailed(str(exc)) from None
    finally:
        client.close()


def image_build_failed(job: Job) -> None:
    """The kind's `on_fail`: the image shows the job's error."""
    Image.objects.filter(pk=job.image_id).update(
        state=Image.State.FAILED, error=job.error[:2000], updated_at=timezone.now()
    )


# --- On this host ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalImage:
    python: Path  # the uv environment's interpreter
    context_dir: Path  # the unpacked context: cwd and PYTHONPATH of `-m mlstudio_scoring`
    model_dir: Path


def image_local(image: Image) -> LocalImage:
    """The image materialised on this host, idempotently: its context unpacked under
    DATA_DIR/images/local/ and its uv environment in the cache (built if missing)."""
    if image.state != Image.State.SUCCEEDED or not image.context_uri:
        raise InvalidParameter(f"Image {image.id_label} is not built ({image.state}).")
    dest = _images_dir() / "local" / str(image.workspace_id) / image.name / str(image.version)
    marker = dest / LOCAL_MARKER
    if not marker.is_file():
        tmp = dest.with_name(f".tmp-{image.version}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        try:
            archive = tmp / CONTEXT_NAME
            stored = store_for(image.workspace).open(artifact_uri_path(image.context_uri))
            with stored as reader, archive.open("wb") as out:
                for chunk in reader:
                    out.write(chunk)
            ctx.unzip_context(archive, tmp / "context")
            archive.unlink()
            (tmp / LOCAL_MARKER).write_text(json.dumps({"image": image.id_label}))
            if dest.exists():  # a half-made one from before
                shutil.rmtree(dest)
            try:
                tmp.rename(dest)
            except OSError:  # another process made it meanwhile
                if not marker.is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    env = env_cache().ensure(_env_spec(image))
    context_dir = dest / "context"
    return LocalImage(python=env.python, context_dir=context_dir, model_dir=context_dir / "model")


# --- Workspace purge ------------------------------------------------------------------------


def images_purge(*, workspace: Workspace, progress: registry.Progress) -> None:
    """The purge step: stop unfinished builds, remove the workspace's container images
    (when an engine is there) and its local copies. The stored contexts go with the
    workspace's artifacts (tracking's step), but are removed here too, so this step is
    complete on its own. Idempotent. One unit of progress when the workspace had images,
    none otherwise (images_units counted it so)."""
    had_images = Image.objects.filter(workspace=workspace).exists()
    for job in ImageBuildJob.objects.filter(workspace=workspace, status__in=Job.UNFINISHED):
        ImageBuildJob.objects.filter(pk=job.pk, status__in=Job.UNFINISHED).update(
            status=Job.Status.FAILED,
            error="Canceled: the workspace is being deleted",
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
    tags = [
        tag
        for tag in Image.objects.filter(workspace=workspace).values_list("docker_tag", flat=True)
        if tag
    ]
    if tags:
        client = engine.connect(getattr(settings, "DOCKER_ENABLED", "auto"))
        if client is not None:
            try:
                engine.remove(client, tags)
            finally:
                client.close()
    shutil.rmtree(_images_dir() / "local" / str(workspace.pk), ignore_errors=True)
    store_for(workspace).delete_prefix("images")
    if had_images:
        progress(1, "Removing images")


def images_units(workspace: Workspace) -> int:
    return 1 if Image.objects.filter(workspace=workspace).exists() else 0


def register() -> None:
    """Called from DeploymentsConfig.ready()."""
    registry.register_job_kind(
        registry.JobKind(
            name=KIND,
            label="Image build",
            model=ImageBuildJob,
            run=image_build_run,
            units=lambda job: PHASES,
            done_phase="Succeeded",
            max_attempts=2,
            retry_delays=(10,),
            stale_after=timedelta(minutes=30),
            on_fail=image_build_failed,
        )
    )
    # After the web services stop (their step's order is lower: a running service uses
    # its image), before tracking (100) removes the workspace's artifacts.
    registry.register_purge_step(
        registry.PurgeStep(
            name="deployments-images", order=80, run=images_purge, units=images_units
        )
    )


__all__ = [
    "KIND",
    "LocalImage",
    "image_build_request",
    "image_get",
    "image_latest_list",
    "image_local",
    "image_versions",
]
