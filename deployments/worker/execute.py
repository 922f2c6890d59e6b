"""One remote run on this worker, from claim to end.

claim → (preparing) environment from the cache or built now, snapshot downloaded and
unpacked → (running) the script in the sandbox, its output streamed, the job's heart
beating (which is how a cancel arrives) → (finalizing) ./outputs uploaded →
completed | failed | canceled. Whatever goes wrong after the claim ends the job failed
with a reason: a claimed job is never left running."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from deployments.runner.envcache import EnvironmentBuildError, EnvironmentCache
from deployments.runner.envspec import EnvSpec
from deployments.runner.errors import SandboxError
from deployments.runner.sandbox import Limits, RunResult, Sandbox, job_env
from deployments.runner.snapshot import SnapshotError, unpack_snapshot
from deployments.worker.client import StudioClient, StudioError, StudioRefused, iter_files
from deployments.worker.logship import LogShipper

log = logging.getLogger(__name__)

BUILD_LOG_ARTIFACT = "logs/environment_build.txt"
MAX_OUTPUT_FILES = 1000


@dataclass
class WorkerConfig:
    """What a worker is: where it keeps things and the limits it gives every job."""

    studio_url: str
    hostname: str
    cache_dir: Path
    jobs_dir: Path
    hidden_paths: tuple[Path, ...] = ()
    memory_bytes: int | None = 4 << 30
    max_processes: int | None = 512
    max_file_bytes: int | None = 4 << 30
    cpu_seconds: int | None = None
    heartbeat_seconds: float = 5.0
    log_interval: float = 0.5
    require_sandbox: bool = False
    keep_job_dirs: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    uv_cache_dir: Path | None = None  # None: uv-cache/ in cache_dir

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir)
        self.jobs_dir = Path(self.jobs_dir)
        if self.uv_cache_dir is not None:
            self.uv_cache_dir = Path(self.uv_cache_dir)


class Runner:
    """A worker's lasting parts (its environment cache and sandbox), shared by its jobs."""

    def __init__(self, config: WorkerConfig, client: StudioClient):
        self.config = config
        self.client = client
        config.jobs_dir.mkdir(parents=True, exist_ok=True)
        config.jobs_dir.chmod(0o711)
        self.envs = EnvironmentCache(config.cache_dir, uv_cache_dir=config.uv_cache_dir)
        self.sandbox = Sandbox(
            hidden_paths=[config.jobs_dir, *config.hidden_paths],
            require_sandbox=config.require_sandbox,
        )

    def run(self, job_id: str) -> str:
        """Run the job; returns how it ended ("completed", "failed", "canceled"), or
        "skipped" when it was not ours to run. Raises client.Busy to be retried later."""
        claim = self.client.claim(job_id, self.config.hostname)
        if claim is None:
            log.info("job %s is not waiting to be claimed; message dropped", job_id)
            return "skipped"
        return _Job(self, claim).run()


class _Job:
    def __init__(self, runner: Runner, claim: dict):
        self.runner = runner
        self.client = runner.client
        self.config = runner.config
        self.claim = claim
        self.id = claim["job_id"]
        self.dir = self.config.jobs_dir / self.id
        self.cancel = threading.Event()
        self.ended_elsewhere = False
        self.stop_beating = threading.Event()
        self.logs = LogShipper(
            self.client,
            self.id,
            int(claim.get("log_offset") or 0),
            interval=self.config.log_interval,
        )

    # --- the parts ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.logs.write(f"[mlstudio] {text}\n")

    def _build_line(self, line: str) -> None:
        self.logs.write(line if line.endswith("\n") else line + "\n")

    def _beat(self) -> None:
        while not self.stop_beating.wait(self.config.heartbeat_seconds):
            try:
                state = self.client.job_heartbeat(self.id)
            except (StudioError, StudioRefused) as exc:
                log.warning("job %s: heartbeat failed: %s", self.id, exc)
                continue
            if state.get("cancel_requested") or state.get("ended"):
                self.ended_elsewhere = bool(state.get("ended"))
                self.cancel.set()

    def run(self) -> str:
        self.logs.start()
        beat = threading.Thread(target=self._beat, name=f"beat-{self.id[:8]}", daemon=True)
        beat.start()
        try:
            return self._run()
        except Exception as exc:  # anything unforeseen still ends the job, with a reason
            log.exception("job %s failed in the worker", self.id)
            return self._end("failed", error=f"The worker failed: {exc.__class__.__name__}: {exc}")
        finally:
            self.stop_beating.set()
            self.logs.close()
            if not self.config.keep_job_dirs:
                shutil.rmtree(self.dir, ignore_errors=True)

    def _end(self, stage: str, *, error: str = "", exit_code: int | None = None) -> str:
        self.logs.close()  # the whole log is in before the run ends
        try:
            state = self.client.report(self.id, stage, error=error or None, exit_code=exit_code)
        except StudioRefused as exc:
            log.warning("job %s: end not recorded: %s", self.id, exc)
            return stage
        return str(state.get("stage", stage))

    def _run(self) -> str:
        env_info = self.claim["environment"]
        self.dir.mkdir(mode=0o711)
        # Preparing: the environment, then the snapshot.
        spec = EnvSpec(
            python_version=env_info["spec"].get("python_version"),
            pip_packages=tuple(env_info["spec"].get("pip_packages") or ()),
            env_vars=env_info["spec"].get("env_vars") or {},
        )
        label = f"{env_info['name']}:{env_info['version']}"
        cached = self.runner.envs.get(spec)
        if cached is None:
            self.say(f"Building environment {label} with uv (build {spec.build_hash()[:12]})")
        try:
            env = self.runner.envs.ensure(spec, log=self._build_line if cached is None else None)
        except EnvironmentBuildError as exc:
            self._upload_build_log(exc.log_path)
            self.say(f"The environment {label} could not be built.")
            return self._end("failed", error=f"Environment build failed: {exc}")
        if env.built_now:
            self._upload_build_log(env.log_path)
            self.say(f"Environment {label} built in {env.seconds:.1f} s")
        else:
            self.say(f"Environment {label} ready (cached, Python {env.python_version})")
        if self.cancel.is_set():
            return self._end("canceled")
        archive = self.dir / "snapshot.zip"
        work = self.dir / "work"
        try:
            self.client.download_snapshot(self.id, archive)
            unpack_snapshot(archive, work)
        except SnapshotError as exc:
            return self._end("failed", error=f"The snapshot could not be unpacked: {exc}")
        script = work / self.claim["script"]
        if not script.is_file():
            return self._end(
                "failed", error=f"The snapshot has no file {self.claim['script']!r} to run."
            )
        # Running.
        sandboxed, why = self.runner.sandbox.sandbox_status()
        self.client.report(self.id, "running", sandboxed=sandboxed)
        if not sandboxed:
            self.say(f"Running WITHOUT a sandbox: {why}. Limits still apply.")
        self.say(f"Running {self.claim['script']} on {self.config.hostname}")
        result = self._execute(env, work)
        if isinstance(result, str):
            return self._end("failed", error=result)
        # Finalizing.
        if result.canceled and self.ended_elsewhere:
            return "canceled"
        self.client.report(self.id, "finalizing", exit_code=result.exit_code)
        self._upload_outputs(work / "outputs")
        for note in result.notes:
            self.say(note)
        self.say(f"Script {result.describe()} after {result.seconds:.1f} s")
        if result.canceled:
            return self._end("canceled", exit_code=result.exit_code)
        if result.ok:
            return self._end("completed", exit_code=0)
        error = result.describe()
        tail = self.logs.tail()
        if tail:
            error = f"{error}\n{tail}"
        return self._end("failed", error=error, exit_code=result.exit_code)

    def _execute(self, env, work: Path) -> RunResult | str:
        claim = self.claim
        extra = dict(claim["environment"]["spec"].get("env_vars") or {})
        extra.update(
            {
                "MLFLOW_TRACKING_URI": (
                    f"{self.config.studio_url.rstrip('/')}/mlflow/v1.0/{claim['workspace_path']}"
                ),
                "MLFLOW_TRACKING_TOKEN": claim["tracking_token"],
                "MLFLOW_RUN_ID": claim["run_id"],
                "MLFLOW_EXPERIMENT_ID": str(claim["experiment_id"]),
                "MLSTUDIO_COMPUTE": str(claim.get("compute", "")),
            }
        )
        limits = Limits(
            wall_seconds=float(claim["max_run_duration_seconds"]),
            cpu_seconds=self.config.cpu_seconds,
            memory_bytes=self.config.memory_bytes,
            max_processes=self.config.max_processes,
            max_file_bytes=self.config.max_file_bytes,
        )
        try:
            return self.runner.sandbox.run(
                [str(env.python), claim["script"], *claim["arguments"]],
                workdir=work,
                env=job_env(workdir=work, venv=env.path, extra=extra),
                limits=limits,
                on_output=self.logs.write,
                cancel=self.cancel,
                ro_paths=[env.path],
            )
        except SandboxError as exc:
            return f"The script could not be started: {exc}"

    def _upload_build_log(self, path: Path | None) -> None:
        if path is None or not path.is_file():
            return
        try:
            with open(path, "rb") as fh:
                self.client.put_artifact(self.id, BUILD_LOG_ARTIFACT, fh)
        except (StudioError, StudioRefused) as exc:
            log.warning("job %s: build log not uploaded: %s", self.id, exc)

    def _upload_outputs(self, outputs: Path) -> None:
        files = list(iter_files(outputs))
        if not files:
            return
        if len(files) > MAX_OUTPUT_FILES:
            self.say(f"outputs/ has {len(files)} files; the first {MAX_OUTPUT_FILES} are kept.")
            files = files[:MAX_OUTPUT_FILES]
        start = time.monotonic()
        sent = 0
        for path in files:
            rel = "outputs/" + path.relative_to(outputs).as_posix()
            try:
                with open(path, "rb") as fh:
                    self.client.put_artifact(self.id, rel, fh)
                sent += 1
            except (OSError, StudioRefused) as exc:
                self.say(f"{rel} was not kept: {exc}")
        self.say(f"Uploaded {sent} file(s) of outputs/ in {time.monotonic() - start:.1f} s")


def default_dirs() -> tuple[Path, Path]:
    """(cache dir, jobs dir): the sandbox's uid must reach both, so a root worker keeps
    them under /var (0755 all the way), others in their own cache folder."""
    if os.geteuid() == 0:
        return Path("/var/cache/mlstudio-worker"), Path("/var/lib/mlstudio-worker/jobs")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlstudio-worker"
    return base / "envs", base / "jobs"
