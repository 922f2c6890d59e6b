"""Remote runs end to end with a real compute worker process (`python -m
deployments.worker`): it consumes a real Redis broker, reaches the studio (the test's live
server) over HTTP with its worker token only, builds the job's environment with uv, runs
the script under bubblewrap and streams its output back."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from mlflow.utils.mlflow_tags import MLFLOW_SOURCE_TYPE

from deployments.models import ComputeTarget, RemoteJob, Stage
from deployments.services import compute, jobs
from deployments.tests.compute_support import (
    private_redis,  # noqa: F401 - fixture
    producer_on_redis,  # noqa: F401 - fixture
    start_compute_worker,
    studio_worker_token,
    wait_for_stage,
)
from deployments.tests.factories import stored_snapshot, submit
from deployments.tests.runner_support import processes_with, require_bwrap
from portal.models import ApiToken
from portal.services.jobs import jobs_recover
from tracking.artifacts import artifact_uri_path, join, store_for
from tracking.models import Run, RunStatus

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ENV = "mlstudio-sklearn"

TRAIN = """
import argparse, os, time
import mlflow, mlflow.sklearn
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=1.0)
args = parser.parse_args()
X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
print("training ridge with alpha", args.alpha)
with mlflow.start_run():
    mlflow.log_param("alpha", args.alpha)
    model = Ridge(alpha=args.alpha).fit(X_train, y_train)
    rmse = mean_squared_error(y_test, model.predict(X_test)) ** 0.5
    for step in range(5):
        mlflow.log_metric("loss", rmse * (5 - step), step=step)
    mlflow.log_metric("rmse", rmse)
    mlflow.sklearn.log_model(model, name="model")
os.makedirs("outputs/plots", exist_ok=True)
with open("outputs/predictions.csv", "w") as fh:
    fh.write("\\n".join(str(v) for v in model.predict(X_test[:10])))
open("outputs/plots/summary.txt", "w").write(f"rmse={rmse}")
print("rmse", round(rmse, 3))
"""

TICKS = """
import time
for i in range(600):
    print(f"tick {i} at {time.time():.3f}", flush=True)
    time.sleep(0.25)
"""


@pytest.fixture
def studio(live_server, producer_on_redis, cast, tmp_path):  # noqa: F811
    """The live studio, its `local` target allowed 4 jobs at once, and a way to start
    workers of it."""
    require_bwrap()
    import redis

    redis.Redis.from_url(producer_on_redis.url).flushall()  # no message of an earlier test
    local = compute.compute_target_local(workspace=cast.workspace)
    compute.compute_target_update(actor=cast.owner, target=local, max_nodes=4)
    started = []

    def worker(**options):
        options.setdefault("token", studio_worker_token())
        w = start_compute_worker(
            studio_url=live_server.url,
            broker_url=producer_on_redis.url,
            folder=tmp_path,
            **options,
        )
        started.append(w)
        return w

    yield worker
    for w in started:
        w.stop()


def _run(job: RemoteJob) -> Run:
    return Run.objects.select_related("workspace").get(pk=job.run_id)


def _log(job: RemoteJob) -> str:
    return jobs.remote_job_log_read(job_id=job.pk, limit=1024 * 1024)["text"]


def _artifact(run: Run, path: str) -> bytes:
    store = store_for(run.workspace)
    with store.open(join(artifact_uri_path(run.artifact_uri), path)) as reader:
        return reader.read()


def _submit(cast, files: dict[str, str], **options) -> RemoteJob:
    options.setdefault("environment", ENV)
    options.setdefault("arguments", [])
    return submit(cast, snapshot_hash=stored_snapshot(cast, files), **options)


def test_a_training_script_logs_params_metrics_a_model_and_outputs(cast, studio):
    worker = studio()
    job = _submit(cast, {"train.py": TRAIN, "data/readme.txt": "x"}, arguments=["--alpha", 0.5])
    job = wait_for_stage(job, {Stage.COMPLETED, Stage.FAILED, Stage.CANCELED}, worker, 300)
    log = _log(job)
    assert job.stage == Stage.COMPLETED, f"{job.error}\n{log}"
    assert job.exit_code == 0 and job.sandboxed is True and job.worker_hostname
    assert "training ridge with alpha 0.5" in log and "rmse " in log
    run = _run(job)
    assert run.status == RunStatus.FINISHED and run.end_time
    assert dict(run.params.values_list("key", "value")) == {"alpha": "0.5"}
    metrics = {m.key: m.value for m in run.latest_metrics.all()}
    assert set(metrics) == {"loss", "rmse"} and 40 < metrics["rmse"] < 80
    assert run.tags.get(key=MLFLOW_SOURCE_TYPE).value == "JOB"
    # The model went where the client put it; outputs/ and the log became artifacts.
    assert run.logged_models.filter(name="model").exists() or _artifact(run, "model/MLmodel") != b""
    assert len(_artifact(run, "outputs/predictions.csv").splitlines()) == 10
    assert _artifact(run, "outputs/plots/summary.txt").startswith(b"rmse=")
    assert b"training ridge" in _artifact(run, "logs/std_log.txt")
    # The script's token lived as long as the job, and no longer.
    token = ApiToken.objects.get(pk=job.tracking_token_id)
    assert token.revoked_at is not None and token.workspace_id == cast.workspace.pk
    # The job's work dir goes once it has ended.
    deadline = time.monotonic() + 15
    while list(worker.jobs_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(worker.jobs_dir.iterdir())


def test_a_failing_script_a_timeout_and_a_memory_limit(cast, studio):
    worker = studio(extra_args=("--memory-mb", "300"))
    failing = _submit(
        cast, {"train.py": "print('about to fail')\nimport sys\n1/0\n"}, run_name="boom"
    )
    slow = _submit(cast, {"train.py": TICKS}, max_run_duration_seconds=3)
    hungry = _submit(
        cast,
        {"train.py": "print('allocating')\nblocks = [bytearray(50 << 20) for _ in range(40)]\n"},
    )
    ended = {Stage.COMPLETED, Stage.FAILED, Stage.CANCELED}
    failing = wait_for_stage(failing, ended, worker)
    assert failing.stage == Stage.FAILED and failing.exit_code == 1, failing.error
    assert "exit code 1" in failing.error and "ZeroDivisionError" in failing.error
    assert "about to fail" in _log(failing)
    assert _run(failing).status == RunStatus.FAILED

    slow = wait_for_stage(slow, ended, worker)
    assert slow.stage == Stage.FAILED and "wall-clock limit" in slow.error
    assert "tick 3" in _log(slow)

    hungry = wait_for_stage(hungry, ended, worker)
    assert hungry.stage == Stage.FAILED, _log(hungry)
    assert "out of memory" in hungry.error or "MemoryError" in hungry.error


def test_output_streams_live_and_cancel_kills_the_script(cast, studio):
    worker = studio()
    marker = f"marker-{time.monotonic_ns()}"
    job = _submit(cast, {"train.py": TICKS}, arguments=[marker])
    job = wait_for_stage(job, {Stage.RUNNING}, worker)
    # A printed line is readable in the studio within about two seconds.
    lags = []
    offset = 0
    deadline = time.monotonic() + 30
    while len(lags) < 5 and time.monotonic() < deadline:
        page = jobs.remote_job_log_read(job_id=job.pk, offset=offset)
        offset = page["next_offset"]
        now = time.time()
        lags += [
            now - float(line.rsplit(" ", 1)[1])
            for line in page["text"].splitlines()
            if line.startswith("tick ")
        ]
        time.sleep(0.1)
    assert lags and max(lags[-5:]) < 2.5, lags
    assert processes_with(marker)
    started = time.monotonic()
    jobs.remote_job_cancel(actor=cast.contributor, job=job)
    job = wait_for_stage(job, {Stage.CANCELED, Stage.FAILED, Stage.COMPLETED}, worker, 60)
    assert job.stage == Stage.CANCELED and time.monotonic() - started < 15
    assert _run(job).status == RunStatus.KILLED
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_with(marker)


ESCAPE = """
import glob, os, sys
found = []
def attempt(name, fn):
    try:
        result = fn()
    except Exception as exc:
        print(f"{name}: refused ({exc.__class__.__name__})")
    else:
        found.append(name)
        print(f"{name}: ESCAPED {result!r}"[:300])

attempt("write /etc", lambda: open("/etc/mlstudio-escape", "w").write("x"))
attempt("write /usr", lambda: open("/usr/mlstudio-escape", "w").write("x"))
attempt("read the data folder", lambda: open(os.environ["SECRET_PATH"]).read())
def other_jobs():
    own = os.path.basename(os.path.dirname(os.getcwd()))  # <jobs dir>/<job id>/work
    others = [n for n in os.listdir(os.environ["JOBS_DIR"]) if n != own]
    if not others:
        raise FileNotFoundError("only this job's own folder is there")
    return others
attempt("list other jobs", other_jobs)
attempt("read another job", lambda: open(os.environ["OTHER_JOB_FILE"]).read())
leaked = [k for k in os.environ if k in {
    "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MLSTUDIO_WORKER_TOKEN"}]
print("leaked variables:", leaked)
environs = []
for path in glob.glob("/proc/[0-9]*/environ"):
    try:
        data = open(path, "rb").read()
    except OSError:
        continue
    if b"MLSTUDIO_WORKER_TOKEN" in data or b"SECRET_KEY" in data:
        environs.append(path)
print("readable secret environs:", environs)
print("uid", os.getuid(), "escaped:", found)
sys.exit(1 if found or leaked or environs else 0)
"""


def test_escape_attempts_find_nothing(cast, studio, tmp_path):
    secret = Path(settings.DATA_DIR) / "escape-test-secret.txt"
    secret.write_text("the server's secret")
    worker = studio(
        hide=(Path(settings.DATA_DIR),),
        extra_env={
            "SECRET_KEY": "s" * 60,
            "DATABASE_URL": "postgres://user:pw@db/x",
            "REDIS_URL": "redis://:pw@broker/0",
        },
    )
    other = worker.jobs_dir / "another-job" / "work"
    other.mkdir(parents=True)
    (other / "data.txt").write_text("another job's data")
    env_vars = {
        "SECRET_PATH": str(secret),
        "JOBS_DIR": str(worker.jobs_dir),
        "OTHER_JOB_FILE": str(other / "data.txt"),
    }
    from deployments.services.environments import environment_register

    env = environment_register(
        actor=cast.contributor,
        workspace=cast.workspace,
        name="escape-env",
        pip_packages=["scikit-learn"],
        env_vars=env_vars,
    )
    job = _submit(cast, {"train.py": ESCAPE}, environment=env)
    job = wait_for_stage(job, {Stage.COMPLETED, Stage.FAILED, Stage.CANCELED}, worker)
    log = _log(job)
    assert job.stage == Stage.COMPLETED, log
    assert "ESCAPED" not in log and "leaked variables: []" in log
    assert "readable secret environs: []" in log and "uid 65534" in log
    assert not Path("/etc/mlstudio-escape").exists()
    secret.unlink()


def test_a_duplicate_message_runs_the_job_once(cast, studio):
    from portal.services.jobs import job_enqueue

    worker = studio()
    job = _submit(cast, {"train.py": "print('ran once')\n"})
    job_enqueue(job)  # the same message again, as a redelivery would
    job = wait_for_stage(job, {Stage.COMPLETED, Stage.FAILED}, worker)
    assert job.stage == Stage.COMPLETED and job.attempts == 1
    deadline = time.monotonic() + 20
    while "not waiting to be claimed" not in worker.text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "not waiting to be claimed" in worker.text()
    assert _log(job).count("ran once") == 1


def test_a_killed_worker_leaves_the_run_failed_not_running(cast, studio):
    worker = studio()
    marker = f"marker-{time.monotonic_ns()}"
    job = _submit(cast, {"train.py": TICKS}, arguments=[marker])
    job = wait_for_stage(job, {Stage.RUNNING}, worker)
    worker.kill()  # SIGKILL, the whole process group: the machine is gone
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_with(marker), "the script outlived its worker"
    # The beat's recovery: no heartbeat since, so the job is stale (immediately, here).
    assert job.pk in jobs_recover(stale_after=timedelta(0))
    job.refresh_from_db()
    assert job.stage == Stage.FAILED and "Worker lost" in job.error
    assert _run(job).status == RunStatus.FAILED
    assert ApiToken.objects.get(pk=job.tracking_token_id).revoked_at is not None


def test_a_redis_restart_loses_no_queued_job(cast, studio, producer_on_redis):  # noqa: F811
    job = _submit(cast, {"train.py": "print('survived the restart')\n"})
    producer_on_redis.restart()  # the queued message is gone with Redis's memory
    worker = studio()
    time.sleep(3)
    job.refresh_from_db()
    assert job.stage == Stage.QUEUED  # nothing to consume: the message was lost
    assert job.pk in jobs_recover(stale_after=timedelta(0))  # the beat sends it again
    job = wait_for_stage(job, {Stage.COMPLETED, Stage.FAILED}, worker)
    assert job.stage == Stage.COMPLETED and "survived the restart" in _log(job), job.error


def test_a_targets_worker_serves_only_its_target(cast, studio):
    gpu = compute.compute_target_create(
        actor=cast.owner, workspace=cast.workspace, name="gpu", max_nodes=1
    )
    from deployments.tests.compute_support import studio_worker_token as token_for

    worker = studio(token=token_for(gpu))
    job = _submit(cast, {"train.py": "print('on gpu')\n"}, compute_name="gpu")
    job = wait_for_stage(job, {Stage.COMPLETED, Stage.FAILED}, worker)
    assert job.stage == Stage.COMPLETED and job.compute_name == "gpu", job.error
    assert ComputeTarget.objects.get(pk=gpu.pk).workers.filter(hostname__gt="").exists()
