"""The pieces together, as the worker's task will use them: an environment from the
persistent cache, a snapshot unpacked into a job's work dir, the script run in the
sandbox with the venv bound read-only, its outputs left in the work dir."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from deployments.runner.envcache import EnvironmentCache, EnvSpec
from deployments.runner.sandbox import Limits, Sandbox, job_env
from deployments.runner.snapshot import unpack_snapshot
from deployments.tests.runner_support import ENV_CACHE_ROOT, Captured, require_bwrap

TRAIN = """
import argparse, os, sys
import six  # from the job's environment
parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float)
args = parser.parse_args()
print("prefix", sys.prefix)
print("alpha", args.alpha, "six", six.__version__)
print("data", open("data/rows.csv").read().strip())
os.makedirs("outputs", exist_ok=True)
open("outputs/model.txt", "w").write(f"alpha={args.alpha}")
"""


@pytest.mark.slow
def test_a_snapshot_runs_in_its_environment_in_the_sandbox(jobs_root: Path):
    require_bwrap()
    env = EnvironmentCache(ENV_CACHE_ROOT).ensure(EnvSpec(None, ("six",)))
    job_dir = jobs_root / "job-1"
    job_dir.mkdir(mode=0o711)
    archive = job_dir / "snapshot.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train.py", TRAIN)
        zf.writestr("data/rows.csv", "1,2\n")
    work = job_dir / "work"
    unpack_snapshot(archive, work)

    out = Captured()
    result = Sandbox(hidden_paths=[jobs_root]).run(
        [env.python, "train.py", "--alpha", "0.5"],
        workdir=work,
        env=job_env(workdir=work, venv=env.path, extra={"MLFLOW_RUN_ID": "r1"}),
        limits=Limits(wall_seconds=60, memory_bytes=512 << 20, max_processes=64),
        on_output=out,
        ro_paths=[env.path],
    )
    assert result.ok and result.sandboxed, out.text
    assert f"prefix {env.path}" in out.text
    assert "alpha 0.5 six 1." in out.text and "data 1,2" in out.text
    assert (work / "outputs" / "model.txt").read_text() == "alpha=0.5"
    print(
        f"\nenvironment {'built' if env.built_now else 'cached'} in {env.seconds:.2f} s; "
        f"script ran in {result.seconds:.2f} s"
    )
