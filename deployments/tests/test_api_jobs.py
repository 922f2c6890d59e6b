"""REST API v1: remote runs, from an environment and a snapshot to a finished run whose
log is tailed, with the worker's side played by its services (no worker, no broker: the
message the submit would send is captured)."""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings as django_settings

from deployments.models import Environment, RemoteJob, Stage
from deployments.services import jobs
from deployments.tests.factories import make_zip, stored_snapshot, submit
from portal.services import jobs as portal_jobs
from portal.tests.api import api, assert_error
from tracking.models import Run
from tracking.services.experiments import experiment_delete
from tracking.tests.api_v1 import isolate, pages, send, url
from tracking.tests.factories import make_experiment, make_run

JOB_KEYS = {
    "run_id",
    "experiment_id",
    "experiment_name",
    "run_name",
    "compute",
    "environment",
    "script",
    "arguments",
    "snapshot_hash",
    "stage",
    "status",
    "run_status",
    "exit_code",
    "error",
    "sandboxed",
    "cancel_requested",
    "max_run_duration_seconds",
    "created_at",
    "started_at",
    "finished_at",
    "created_by",
    "log_bytes",
    "url",
}


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path) -> None:
    isolate(settings, tmp_path)


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The jobs whose message would go to the broker (on commit)."""
    messages: list[str] = []
    monkeypatch.setattr(
        portal_jobs, "job_enqueue", lambda job, countdown=None: messages.append(str(job.pk))
    )
    return messages


def _submit(client, cast, **body):
    body.setdefault("experiment_name", "remote-exp")
    body.setdefault("script", "train.py")
    body.setdefault("environment", "mlstudio-minimal")
    if "snapshot_hash" not in body:
        body["snapshot_hash"] = stored_snapshot(cast)
    return send(client, "post", url(cast, "api-remote-jobs"), body)


def _job_url(cast, run_id: str, name: str = "api-remote-job", **query) -> str:
    return url(cast, name, query or None, run_id=run_id)


def _log(client, cast, run_id: str, offset: int = 0, limit: int = 65536) -> dict:
    response = client.get(_job_url(cast, run_id, "api-remote-job-logs", offset=offset, limit=limit))
    assert response.status_code == 200, response.content
    return response.json()


def test_a_remote_run_from_submit_to_its_tailed_log(
    cast, sent, django_capture_on_commit_callbacks
) -> None:
    client = api(cast, "contributor")
    # The source folder, zipped and uploaded under its hash.
    data = make_zip({"train.py": "import mlflow\nprint('hello')\n", "conf/a.yaml": "a: 1\n"})
    sha256 = hashlib.sha256(data).hexdigest()
    upload = client.put(url(cast, "api-snapshot", sha256=sha256), data, "application/zip")
    assert upload.status_code == 201
    # Submitted with an inline environment, registered first.
    spec = {"name": "team-env", "pip_packages": ["mlflow", "scikit-learn"], "env_vars": {}}
    with django_capture_on_commit_callbacks(execute=True):
        response = _submit(
            client,
            cast,
            snapshot_hash=sha256,
            environment=spec,
            arguments=["--alpha", 0.5, 3],
            run_name="first",
            tags={"team": "vision"},
            max_run_duration_seconds=600,
        )
    assert response.status_code == 201, response.content
    job = response.json()
    assert set(job) == JOB_KEYS
    run = Run.objects.get(run_uuid=job["run_id"])
    assert job == {
        **job,
        "experiment_id": str(run.experiment_id),
        "experiment_name": "remote-exp",
        "run_name": "first",
        "compute": "local",
        "environment": {"name": "team-env", "version": 1},
        "script": "train.py",
        "arguments": ["--alpha", "0.5", "3"],
        "snapshot_hash": sha256,
        "stage": "queued",
        "status": "queued",
        "run_status": "SCHEDULED",
        "exit_code": None,
        "error": "",
        "sandboxed": None,
        "cancel_requested": False,
        "max_run_duration_seconds": 600,
        "started_at": None,
        "finished_at": None,
        "created_by": "carlos",
        "log_bytes": 0,
    }
    assert job["url"] == f"http://testserver{url(cast, 'run', run_id=run.run_uuid)}"
    assert Environment.objects.get(name="team-env").version == 1
    # The row is written and its message sent when the request's transaction commits.
    remote = RemoteJob.objects.get(run=run)
    assert sent == [str(remote.pk)]
    assert dict(run.tags.values_list("key", "value"))["team"] == "vision"

    # Listed, and found by its run id.
    listed = client.get(url(cast, "api-remote-jobs")).json()
    assert [j["run_id"] for j in listed["results"]] == [run.run_uuid]
    assert client.get(_job_url(cast, run.run_uuid)).json() == job
    assert _log(client, cast, run.run_uuid) == {
        "text": "",
        "offset": 0,
        "next_offset": 0,
        "log_bytes": 0,
        "ended": False,
    }

    # The worker's side: claim, run, stream output, finish.
    assert jobs.remote_job_claim(job_id=remote.pk, worker_hostname="node-1") is not None
    assert client.get(_job_url(cast, run.run_uuid)).json()["stage"] == "preparing"
    jobs.remote_job_report(job_id=remote.pk, stage="running", sandboxed=True)
    jobs.remote_job_log_append(job_id=remote.pk, offset=0, text="hello\n")
    running = client.get(_job_url(cast, run.run_uuid)).json()
    assert (running["stage"], running["run_status"], running["sandboxed"]) == (
        "running",
        "RUNNING",
        True,
    )
    assert running["started_at"] is not None and running["log_bytes"] == 6
    page = _log(client, cast, run.run_uuid)
    assert (page["text"], page["next_offset"], page["ended"]) == ("hello\n", 6, False)
    # Tailing from where the last page ended: only what came since.
    jobs.remote_job_log_append(job_id=remote.pk, offset=6, text="día 2\n")
    page = _log(client, cast, run.run_uuid, offset=page["next_offset"], limit=3)
    assert (page["text"], page["offset"], page["next_offset"]) == ("dí", 6, 9)
    page = _log(client, cast, run.run_uuid, offset=page["next_offset"])
    assert (page["text"], page["next_offset"], page["log_bytes"]) == ("a 2\n", 13, 13)
    jobs.remote_job_report(job_id=remote.pk, stage="completed", exit_code=0)
    page = _log(client, cast, run.run_uuid, offset=page["next_offset"])
    assert page == {"text": "", "offset": 13, "next_offset": 13, "log_bytes": 13, "ended": True}
    done = client.get(_job_url(cast, run.run_uuid)).json()
    assert (done["stage"], done["status"], done["run_status"], done["exit_code"]) == (
        "completed",
        "completed",
        "FINISHED",
        0,
    )
    assert done["finished_at"] is not None
    # A completed run cannot be cancelled.
    response = client.post(_job_url(cast, run.run_uuid, "api-remote-job-cancel"))
    assert "already ended" in assert_error(response, 400)["message"]


def test_cancel_ends_a_queued_run_at_once(cast, sent) -> None:
    client = api(cast, "contributor")
    run_id = _submit(client, cast).json()["run_id"]
    response = client.post(_job_url(cast, run_id, "api-remote-job-cancel"))
    assert response.status_code == 200
    job = response.json()
    assert (job["stage"], job["run_status"], job["cancel_requested"]) == (
        "canceled",
        "KILLED",
        True,
    )
    assert "Canceled by carlos" in job["error"]
    # Again: the same answer, nothing changes.
    again = client.post(_job_url(cast, run_id, "api-remote-job-cancel"))
    assert again.status_code == 200 and again.json() == job
    assert _log(client, cast, run_id)["ended"]


def test_cancel_of_a_started_run_asks_its_worker(cast, sent) -> None:
    client = api(cast)
    run_id = _submit(client, cast).json()["run_id"]
    remote = RemoteJob.objects.get(run__run_uuid=run_id)
    jobs.remote_job_claim(job_id=remote.pk, worker_hostname="node-1")
    jobs.remote_job_report(job_id=remote.pk, stage="running")
    job = client.post(_job_url(cast, run_id, "api-remote-job-cancel")).json()
    assert (job["stage"], job["cancel_requested"]) == ("running", True)
    # The worker hears it on its next heartbeat, stops the script and reports.
    assert jobs.remote_job_heartbeat(job_id=remote.pk)["cancel_requested"]
    jobs.remote_job_report(job_id=remote.pk, stage="failed", exit_code=-9)
    job = client.get(_job_url(cast, run_id)).json()
    assert (job["stage"], job["run_status"], job["exit_code"]) == ("canceled", "KILLED", -9)


def test_an_environment_is_named_with_or_without_its_version(cast, sent) -> None:
    client = api(cast)
    send(client, "post", url(cast, "api-environments"), {"name": "env", "pip_packages": ["a"]})
    send(client, "post", url(cast, "api-environments"), {"name": "env", "pip_packages": ["b"]})
    latest = _submit(client, cast, environment="env").json()["environment"]
    pinned = _submit(client, cast, environment="env:1").json()["environment"]
    assert (latest, pinned) == ({"name": "env", "version": 2}, {"name": "env", "version": 1})
    # An inline spec equal to the latest version reuses it.
    inline = {"name": "env", "pip_packages": ["b"]}
    assert _submit(client, cast, environment=inline).json()["environment"]["version"] == 2
    assert Environment.objects.filter(name="env").count() == 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"script": "../x.py"}, 400, "relative path"),
        ({"script": ""}, 400, "script:"),
        ({"script": 5}, 400, "script:"),
        ({"arguments": [True]}, 400, "string or a number"),
        ({"arguments": [["nested"]]}, 400, "string or a number"),
        ({"arguments": "--alpha 1"}, 400, "arguments:"),
        ({"arguments": ["nul\x00"]}, 400, "NUL"),
        ({"max_run_duration_seconds": 0}, 400, "max_run_duration_seconds:"),
        ({"max_run_duration_seconds": 8 * 86400}, 400, "max_run_duration_seconds:"),
        ({"compute": "nowhere"}, 404, "compute target"),
        ({"environment": "nope"}, 404, "environment 'nope'"),
        ({"environment": "mlstudio-minimal:7"}, 404, "version 7"),
        ({"environment": "env:x"}, 400, "version"),
        ({"environment": 5}, 400, "environment:"),
        ({"environment": ""}, 400, "environment:"),
        ({"environment": {"pip_packages": []}}, 400, "name: This field is required"),
        ({"environment": {"name": "e", "pip_packages": ["-e ."]}}, 400, "Invalid environment"),
        ({"environment": {"name": "mlstudio-x"}}, 400, "reserved"),
        ({"snapshot_hash": "0" * 64}, 404, "upload it first"),
        ({"snapshot_hash": "xyz"}, 400, "snapshot_hash:"),
        ({"experiment_name": ""}, 400, "experiment_name:"),
        ({"tags": {"team": 5}}, 400, "tags:"),
        ({"tags": "team"}, 400, "tags:"),
        ({"tags": {"a\x00": "x"}}, 400, "tags: NUL"),
        ({"run_name": "x" * 251}, 400, "run_name:"),
    ],
)
def test_what_cannot_run_is_refused_with_a_clear_error(cast, sent, body, status, message) -> None:
    response = _submit(api(cast), cast, **body)
    assert message in assert_error(response, status)["message"]
    assert not RemoteJob.objects.exists() and not Run.objects.exists()
    assert not Environment.objects.filter(name="e").exists()


def test_missing_fields_are_named(cast, sent) -> None:
    response = send(api(cast), "post", url(cast, "api-remote-jobs"), {})
    message = assert_error(response, 400, "INVALID_PARAMETER_VALUE")["message"]
    for field in ("experiment_name", "script", "environment", "snapshot_hash"):
        assert f"{field}: This field is required." in message


def test_a_deleted_experiment_takes_no_new_runs(cast, sent) -> None:
    experiment_delete(experiment=make_experiment(cast.workspace, "old"), actor=None)
    response = _submit(api(cast), cast, experiment_name="old")
    assert "active" in assert_error(response, 400)["message"]


def test_an_inline_environment_is_not_kept_when_the_submit_fails(cast, sent) -> None:
    spec = {"name": "kept-not", "pip_packages": ["numpy"]}
    response = _submit(api(cast), cast, environment=spec, compute="nowhere")
    assert_error(response, 404)
    assert not Environment.objects.filter(name="kept-not").exists()


def test_jobs_are_listed_newest_first_in_pages_and_filtered(cast, sent) -> None:
    client = api(cast)
    send(client, "post", url(cast, "api-computes"), {"name": "gpu"})
    made = [_submit(client, cast, compute=c).json()["run_id"] for c in ("local", "gpu", "local")]
    all_pages = pages(client, url(cast, "api-remote-jobs", {"page_size": 2}))
    assert [len(page) for page in all_pages] == [2, 1]
    assert [j["run_id"] for page in all_pages for j in page] == made[::-1]

    def listed(**query) -> list[str]:
        response = client.get(url(cast, "api-remote-jobs", query))
        assert response.status_code == 200, response.content
        return [j["run_id"] for j in response.json()["results"]]

    assert listed(compute="GPU") == [made[1]]
    assert listed(compute="local", stage="queued") == [made[2], made[0]]
    client.post(_job_url(cast, made[0], "api-remote-job-cancel"))
    assert listed(stage="canceled") == [made[0]]
    assert listed(stage="running") == [] and listed(compute="nowhere") == []
    for query in ({"stage": "lost"}, {"page_size": 0}, {"cursor": "bad"}, {"compute": "a\x00"}):
        assert_error(client.get(url(cast, "api-remote-jobs", query)), 400)


def test_log_parameters_are_checked(cast, sent) -> None:
    client = api(cast)
    run_id = _submit(client, cast).json()["run_id"]
    for query in (
        {"offset": -1},
        {"offset": "x"},
        {"limit": 0},
        {"limit": jobs.LOG_READ_MAX + 1},
    ):
        response = client.get(_job_url(cast, run_id, "api-remote-job-logs", **query))
        assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    far = _log(client, cast, run_id, offset=10**12)
    assert (far["text"], far["log_bytes"]) == ("", 0)


def test_unknown_run_ids_are_404(cast, sent) -> None:
    client = api(cast)
    with_job = submit(cast).run  # a run with a job is found; one without is not
    other = make_run(make_experiment(cast.workspace, "no-jobs"))
    for run_id in ("0" * 32, "nul\x00", other.run_uuid):
        for name in ("api-remote-job", "api-remote-job-logs"):
            assert_error(client.get(_job_url(cast, run_id, name)), 404, "RESOURCE_DOES_NOT_EXIST")
        response = client.post(_job_url(cast, run_id, "api-remote-job-cancel"))
        assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert client.get(_job_url(cast, with_job.run_uuid)).status_code == 200


def test_the_stage_enum_of_the_schema_is_the_models(cast) -> None:
    overrides = django_settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]
    assert overrides["RemoteJobStageEnum"] == list(Stage.values)


def test_the_run_page_url_uses_the_site_url(cast, sent, settings) -> None:
    settings.SITE_URL = "https://studio.example.com"
    job = _submit(api(cast), cast).json()
    assert job["url"].startswith("https://studio.example.com/subscriptions/")
    assert job["url"].endswith(f"/runs/{job['run_id']}/")
