"""The deployments pages with Django's client: the run page's Job tab and what it polls
(stage, log, snapshot files, cancel), compute targets, environments, the workspace card.
Who may do what on each route is the permission cast's (deployments/tests/page_access.py);
here: what each page shows, its errors, escaping, and bounded queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments.models import ComputeTarget, ComputeWorker, Environment, RemoteJob, Stage
from deployments.services import compute, jobs
from deployments.tests.factories import register, submit
from deployments.views.jobs import TAIL_BYTES, stage_steps
from portal.services import jobs as portal_jobs
from tracking.models import Run, RunStatus
from tracking.services.experiments import default_experiment, now_ms
from tracking.services.runs import run_create

XSS = "<script>alert('x')</script>"


@pytest.fixture(autouse=True)
def _no_messages(monkeypatch) -> None:
    """Submitting sends nothing to a broker."""
    monkeypatch.setattr(portal_jobs, "job_enqueue", lambda job, countdown=None: None)


def ws_kw(cast) -> dict:
    return {
        "subscription_id": cast.subscription.id,
        "resource_group": cast.resource_group.name,
        "workspace": cast.workspace.name,
    }


def client_for(cast, who: str) -> Client:
    client = Client()
    client.force_login(cast.user(who))
    return client


def run_url(cast, job: RemoteJob, name: str = "run") -> str:
    return reverse(name, kwargs={**ws_kw(cast), "run_id": Run.objects.get(pk=job.run_id).run_uuid})


def job_tab(client: Client, cast, job: RemoteJob) -> str:
    response = client.get(run_url(cast, job) + "?tab=job")
    assert response.status_code == 200
    return response.content.decode()


def claimed(cast, **options) -> RemoteJob:
    job = submit(cast, **options)
    jobs.remote_job_claim(job_id=job.pk, worker_hostname="node-1")
    return RemoteJob.objects.get(pk=job.pk)


def running(cast, *, log: str = "", sandboxed: bool = True, **options) -> RemoteJob:
    job = claimed(cast, **options)
    jobs.remote_job_report(job_id=job.pk, stage="running", sandboxed=sandboxed)
    if log:
        jobs.remote_job_log_append(job_id=job.pk, offset=0, text=log)
    return RemoteJob.objects.get(pk=job.pk)


def log_pane(html: str) -> str:
    return re.search(r'<pre class="log-pane"[^>]*>(.*?)</pre>', html, re.S).group(1)


# --- The Job tab --------------------------------------------------------------------------


def test_deployments_registers_its_tab_and_card_with_portal():
    from portal import registry

    (tab,) = [t for t in registry.run_tabs() if t.slug == "job"]
    assert tab.label == "Job" and tab.template == "deployments/job/tab.html"
    assert "recent-remote-runs" in [panel.name for panel in registry.workspace_panels()]


def test_only_remote_runs_have_a_job_tab(cast):
    ws = cast.workspace
    plain = run_create(
        workspace=ws,
        experiment=default_experiment(workspace=ws),
        user_id="olivia",
        start_time=now_ms(),
        run_name="plain",
    )
    client = client_for(cast, "reader")
    page = client.get(reverse("run", kwargs={**ws_kw(cast), "run_id": plain.run_uuid}))
    assert "?tab=job" not in page.content.decode()
    # Asked for anyway, the page falls back to the overview; the job's endpoints are 404.
    page = client.get(reverse("run", kwargs={**ws_kw(cast), "run_id": plain.run_uuid}) + "?tab=job")
    assert page.status_code == 200 and 'id="job-status"' not in page.content.decode()
    for name in ("remote-job-status", "remote-job-log", "remote-job-files"):
        url = reverse(name, kwargs={**ws_kw(cast), "run_id": plain.run_uuid})
        assert client.get(url).status_code == 404
    job = submit(cast)
    assert '<a href="?tab=job"' in client.get(run_url(cast, job)).content.decode()


def test_a_queued_run_shows_its_configuration_and_waits(cast):
    register(
        cast,
        "train-env",
        ["scikit-learn==1.5.0", "pandas"],
        python_version="3.11",
        env_vars={"DATA_SET": "secret-value-1"},
    )
    target = compute.compute_target_create(actor=cast.owner, workspace=cast.workspace, name="gpu")
    job = submit(
        cast, compute_name="gpu", environment="train-env", arguments=["--alpha", "0.5", "a b"]
    )
    html = job_tab(client_for(cast, "reader"), cast, job)
    assert 'class="stage-badge queued"' in html and "Waiting for a worker of <strong>gpu" in html
    compute_url = reverse("compute-target", kwargs={**ws_kw(cast), "name": target.name})
    assert f'href="{compute_url}"' in html
    env_url = reverse(
        "environment-version", kwargs={**ws_kw(cast), "name": "train-env", "version": 1}
    )
    assert f'href="{env_url}">train-env:1</a>' in html
    assert "scikit-learn==1.5.0" in html and ">3.11<" in html
    assert ">DATA_SET<" in html and "secret-value-1" not in html  # names only
    assert "<code>train.py</code>" in html and "--alpha 0.5 &#x27;a b&#x27;" in html
    assert job.snapshot_hash in html and "not claimed yet" in html
    assert "Waiting for output…" in html
    # A queued run polls its stage; its log pane tails from 0.
    assert 'hx-trigger="every 2s"' in html and 'data-offset="0"' in html
    assert 'data-ended="0"' in html
    # Readers see no Cancel button.
    assert "Cancel run" not in html
    assert "Cancel run" in job_tab(client_for(cast, "contributor"), cast, job)


def test_a_running_run_shows_its_worker_log_and_times(cast):
    job = running(cast, log="epoch 1 loss=0.5\nepoch 2 loss=0.3\n")
    html = job_tab(client_for(cast, "reader"), cast, job)
    assert 'class="stage-badge running"' in html and "node-1" in html
    assert "Yes <span" in html and "(bubblewrap)" in html
    assert log_pane(html) == "epoch 1 loss=0.5\nepoch 2 loss=0.3\n"
    assert f'data-offset="{job.log_bytes}"' in html
    # The whole log downloads from the run's artifacts.
    (download,) = re.findall(r'href="([^"]*logs/std_log.txt[^"]*)">Download', html)
    response = client_for(cast, "reader").get(download.replace("&amp;", "&"))
    assert b"".join(response.streaming_content) == b"epoch 1 loss=0.5\nepoch 2 loss=0.3\n"
    steps = {step.stage: step for step in stage_steps(job)}
    assert [s.state for s in steps.values()] == ["done", "done", "current", "pending", "pending"]
    assert steps["queued"].at == job.created_at and steps["preparing"].at == job.started_at
    # Running is dated by the job's own log line, to the second.
    assert abs(steps["running"].at - timezone.now()) < timedelta(seconds=5)


def test_the_tab_opens_on_the_end_of_a_long_log(cast):
    lines = "".join(f"line {i:06}\n" for i in range(10_000))  # 120 KB
    job = running(cast, log=lines)
    html = job_tab(client_for(cast, "reader"), cast, job)
    pane = log_pane(html)
    assert pane.endswith("line 009999\n") and pane.startswith("line ")
    assert "line 000000" not in pane and len(pane) <= TAIL_BYTES
    assert "download the whole log" in html
    assert f'data-offset="{job.log_bytes}"' in html


def test_a_failed_run_shows_its_error_tail_and_exit_code(cast):
    job = running(cast, log="Traceback (most recent call last):\nValueError: bad alpha\n")
    error = 'Traceback (most recent call last):\n  File "train.py", line 3\nValueError: bad alpha'
    jobs.remote_job_report(job_id=job.pk, stage="failed", exit_code=3, error=error)
    job.refresh_from_db()
    html = job_tab(client_for(cast, "contributor"), cast, job)
    assert 'class="stage-badge failed"' in html and "The run failed: exit code 3." in html
    assert 'class="exit-code nonzero">3<' in html
    assert "ValueError: bad alpha" in re.search(
        r'class="error-tail failed".*?</pre>', html, re.S
    ).group(0)
    assert "Cancel run" not in html and 'hx-trigger="every 2s"' not in html
    assert 'data-ended="1"' in html
    states = [(s.stage, s.state) for s in stage_steps(job)]
    assert states[-1] == ("failed", "ended") and states[3] == ("finalizing", "skipped")


def test_a_run_without_the_sandbox_says_so(cast):
    job = running(cast, sandboxed=False)
    html = job_tab(client_for(cast, "reader"), cast, job)
    assert "This run did not use the sandbox." in html
    assert "No — ran without the sandbox" in html


def test_a_run_canceled_in_the_queue_never_reached_the_other_stages(cast):
    job = submit(cast)
    jobs.remote_job_cancel(actor=cast.contributor, job=job)
    job.refresh_from_db()
    html = job_tab(client_for(cast, "reader"), cast, job)
    assert 'class="stage-badge canceled"' in html and "Canceled by carlos" in html
    states = [(s.stage, s.state) for s in stage_steps(job)]
    assert states == [
        ("queued", "done"),
        ("preparing", "skipped"),
        ("running", "skipped"),
        ("finalizing", "skipped"),
        ("canceled", "ended"),
    ]
    assert "The script never ran" in html


def test_everything_a_run_carries_is_escaped(cast):
    register(cast, "xss-env", ["pandas"], env_vars={"X": "1"}, description=XSS)
    compute.compute_target_create(
        actor=cast.owner, workspace=cast.workspace, name="xss", description=XSS
    )
    job = running(
        cast,
        compute_name="xss",
        environment="xss-env",
        arguments=[XSS],
        run_name=XSS,
        experiment_name=XSS,
        log=f"{XSS}\n<img src=x onerror=alert(1)>\n",
    )
    jobs.remote_job_report(job_id=job.pk, stage="failed", exit_code=1, error=XSS)
    client = client_for(cast, "owner")
    pages = [
        job_tab(client, cast, job),
        client.get(reverse("compute", kwargs=ws_kw(cast))).content.decode(),
        client.get(reverse("compute-target", kwargs={**ws_kw(cast), "name": "xss"})).content,
        client.get(reverse("environments", kwargs=ws_kw(cast))).content.decode(),
        client.get(reverse("environment", kwargs={**ws_kw(cast), "name": "xss-env"})).content,
        client.get(reverse("workspace", kwargs=ws_kw(cast))).content.decode(),
    ]
    for html in pages:
        html = html.decode() if isinstance(html, bytes) else html
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in pages[0]
    # The log's JSON carries it as text; the pane appends it as a text node.
    log = client.get(run_url(cast, job, "remote-job-log")).json()
    assert log["text"].startswith(XSS)


def test_the_status_partial_polls_until_the_job_ends(cast):
    job = running(cast)
    client = client_for(cast, "reader")
    url = run_url(cast, job, "remote-job-status")
    html = client.get(url).content.decode()
    assert html.lstrip().startswith('<section id="job-status"') and "every 2s" in html
    assert (
        "no-store" in client.get(url)["Cache-Control"]
        or "max-age=0" in client.get(url)["Cache-Control"]
    )
    jobs.remote_job_report(job_id=job.pk, stage="completed", exit_code=0)
    html = client.get(url).content.decode()
    assert "every 2s" not in html and 'class="stage-badge completed"' in html


def test_the_log_endpoint_tails_by_offset(cast):
    job = running(cast, log="first line\n")
    client = client_for(cast, "reader")
    url = run_url(cast, job, "remote-job-log")
    read = client.get(url + "?offset=0").json()
    assert read == {"text": "first line\n", "next_offset": 11, "size": 11, "ended": False}
    assert client.get(url + "?offset=11").json()["text"] == ""
    jobs.remote_job_log_append(job_id=job.pk, offset=11, text="second ✓\n")
    read = client.get(url + "?offset=11").json()
    assert read["text"] == "second ✓\n" and read["next_offset"] == read["size"] == 22
    jobs.remote_job_report(job_id=job.pk, stage="completed", exit_code=0)
    assert client.get(url + "?offset=22").json()["ended"] is True
    bad = client.get(url + "?offset=abc")
    assert bad.status_code == 400 and "offset" in bad.json()["error"]


def test_the_snapshot_files_are_listed_when_unfolded(cast):
    from deployments.tests.factories import stored_snapshot

    snapshot = stored_snapshot(cast, {"train.py": "print(1)\n", "lib/util.py": "x = 1\n"})
    job = submit(cast, snapshot_hash=snapshot)
    html = client_for(cast, "reader").get(run_url(cast, job, "remote-job-files")).content.decode()
    assert ">train.py<" in html and ">lib/util.py<" in html and "2 files" in html


def test_a_contributor_cancels_a_queued_run_and_a_reader_cannot(cast):
    job = submit(cast)
    url = run_url(cast, job, "remote-job-cancel")
    assert client_for(cast, "reader").post(url).status_code == 403
    outsider = client_for(cast, "outsider").post(url)
    assert outsider.status_code == 404
    assert RemoteJob.objects.get(pk=job.pk).stage == Stage.QUEUED
    client = client_for(cast, "contributor")
    response = client.post(url, follow=True)
    assert response.redirect_chain[-1][0].endswith("?tab=job")
    assert "Canceled: the run had not started." in response.content.decode()
    job.refresh_from_db()
    assert job.stage == Stage.CANCELED
    assert Run.objects.get(pk=job.run_id).status == RunStatus.KILLED
    # Again: the run has ended; nothing changes.
    again = client.post(url, follow=True).content.decode()
    assert "The remote run has ended already (Canceled)." in again
    assert client.get(url).status_code == 405


def test_cancelling_a_running_run_asks_its_worker(cast):
    job = running(cast)
    client = client_for(cast, "contributor")
    html = client.post(run_url(cast, job, "remote-job-cancel"), follow=True).content.decode()
    assert "Cancel requested: the worker stops the script at its next heartbeat." in html
    job.refresh_from_db()
    assert job.stage == Stage.RUNNING and job.cancel_requested_at is not None
    assert "Cancel run" not in html and 'class="badge cancel-requested"' in html


def test_the_job_tab_makes_a_bounded_number_of_queries(cast, django_assert_max_num_queries):
    job = running(cast, log="x\n" * 1000)
    client = client_for(cast, "reader")
    tab, status, log = (
        run_url(cast, job, name) for name in ("run", "remote-job-status", "remote-job-log")
    )
    client.get(tab)  # warm the session and access caches
    with django_assert_max_num_queries(13):  # the run page's own, the job, the log
        client.get(tab + "?tab=job")
    with django_assert_max_num_queries(6):
        client.get(status)
    with django_assert_max_num_queries(6):  # polled every second by each open tab
        client.get(log + "?offset=0")


# --- Compute --------------------------------------------------------------------------------


def test_the_compute_list_shows_targets_with_counts_and_workers(cast):
    gpu = compute.compute_target_create(
        actor=cast.contributor, workspace=cast.workspace, name="gpu", max_nodes=4
    )
    now = timezone.now()
    ComputeWorker.objects.create(target=gpu, hostname="gpu-node-1", last_seen=now)
    ComputeWorker.objects.create(
        target=gpu, hostname="gpu-node-2", last_seen=now - timedelta(seconds=90)
    )
    ComputeWorker.objects.create(
        target=gpu, hostname="gpu-node-gone", last_seen=now - timedelta(hours=2)
    )
    claimed(cast, compute_name="gpu")
    submit(cast, compute_name="gpu")
    submit(cast, compute_name="gpu")
    html = client_for(cast, "reader").get(reverse("compute", kwargs=ws_kw(cast))).content.decode()
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    local_row = next(r for r in rows if ">local</a>" in r)
    gpu_row = next(r for r in rows if ">gpu</a>" in r)
    assert "built in" in local_row and "no worker seen lately" in local_row
    assert re.findall(r'<td class="num">(\d+)</td>', gpu_row) == ["4", "2", "1"]
    assert "gpu-node-1</span> alive" in gpu_row and "gpu-node-2</span> stale" in gpu_row
    assert "gpu-node-gone" not in gpu_row  # not seen lately: on its page only
    assert "by carlos" in gpu_row
    assert "New compute target" not in html  # readers create nothing


def test_a_contributor_creates_a_target_and_is_told_what_is_wrong(cast):
    client = client_for(cast, "contributor")
    url = reverse("compute", kwargs=ws_kw(cast))
    assert "New compute target" in client.get(url).content.decode()
    response = client.post(url, {"name": "cpu-cluster", "max_nodes": "3", "description": "CPUs"})
    target = ComputeTarget.objects.get(name="cpu-cluster")
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "compute-target", kwargs={**ws_kw(cast), "name": "cpu-cluster"}
    )
    assert (target.max_nodes, target.description, target.created_by) == (
        3,
        "CPUs",
        cast.contributor,
    )
    for form, message in (
        ({"name": "9lives", "max_nodes": "1"}, "starting with a letter"),
        ({"name": "CPU-Cluster", "max_nodes": "1"}, "already exists"),
        ({"name": "local", "max_nodes": "1"}, "already exists"),
        ({"name": "big", "max_nodes": "500"}, "max_nodes must be from 1 to 100"),
        ({"name": "big", "max_nodes": "many"}, "Max nodes must be a whole number"),
    ):
        response = client.post(url, {**form, "description": "kept"})
        html = response.content.decode()
        assert response.status_code == 400 and message in html, form
        assert 'value="kept"' in html  # the form keeps what was typed
    assert ComputeTarget.objects.filter(workspace=cast.workspace).count() == 2


def test_a_target_page_lists_workers_jobs_and_how_to_join(cast):
    gpu = compute.compute_target_create(actor=cast.owner, workspace=cast.workspace, name="gpu")
    ComputeWorker.objects.create(target=gpu, hostname="gpu-node-1", slots=2, version="0.1")
    ComputeWorker.objects.create(
        target=gpu, hostname="gpu-node-old", last_seen=timezone.now() - timedelta(hours=3)
    )
    queued = submit(cast, compute_name="gpu", run_name="waiting")
    done = running(cast, compute_name="gpu", run_name="finished-one")
    jobs.remote_job_report(job_id=done.pk, stage="completed", exit_code=0)
    client = client_for(cast, "reader")
    html = client.get(reverse("compute-target", kwargs={**ws_kw(cast), "name": "GPU"})).content
    html = html.decode()
    assert "gpu-node-1" in html and "gpu-node-old" in html
    assert '<span class="badge succeeded">alive</span>' in html
    assert '<span class="badge stale">stale</span>' in html
    assert f'href="{run_url(cast, queued)}?tab=job">waiting<' in html
    assert f'href="{run_url(cast, done)}?tab=job">finished-one<' in html
    command = (
        "MLSTUDIO_WORKER_TOKEN=&lt;worker token&gt; mlstudio-worker --studio http://testserver"
    )
    assert command in html
    assert "--broker &lt;broker URL&gt;" in html and f"compute-{gpu.pk}" in html
    assert "Delete target" not in html
    assert (
        client.get(reverse("compute-target", kwargs={**ws_kw(cast), "name": "nope"})).status_code
        == 404
    )
    local = client.get(reverse("compute-target", kwargs={**ws_kw(cast), "name": "local"}))
    assert "The studio&#x27;s own worker" in local.content.decode()


def test_deleting_a_target(cast):
    gpu = compute.compute_target_create(actor=cast.owner, workspace=cast.workspace, name="gpu")
    job = submit(cast, compute_name="gpu")
    client = client_for(cast, "contributor")
    page = reverse("compute-target", kwargs={**ws_kw(cast), "name": "gpu"})
    assert "Delete target" in client.get(page).content.decode()
    url = reverse("compute-delete", kwargs={**ws_kw(cast), "name": "gpu"})
    refused = client.post(url, follow=True)
    assert refused.redirect_chain[-1][0] == page
    assert "has 1 unfinished job; cancel them or wait" in refused.content.decode()
    jobs.remote_job_cancel(actor=cast.owner, job=job)
    done = client.post(url, follow=True)
    assert done.redirect_chain[-1][0] == reverse("compute", kwargs=ws_kw(cast))
    assert "Compute target “gpu” deleted." in done.content.decode()
    assert not ComputeTarget.objects.filter(pk=gpu.pk).exists()
    # The ended run keeps the target's name, without a link.
    html = job_tab(client, cast, job)
    assert 'gpu <span class="muted small">(deleted)</span>' in html
    local = reverse("compute-delete", kwargs={**ws_kw(cast), "name": "local"})
    assert "cannot be deleted" in client.post(local, follow=True).content.decode()
    assert ComputeTarget.objects.filter(workspace=cast.workspace, name="local").exists()


def test_the_compute_pages_make_a_bounded_number_of_queries(cast, django_assert_max_num_queries):
    for i in range(15):
        target = compute.compute_target_create(
            actor=cast.owner, workspace=cast.workspace, name=f"target-{i}"
        )
        for n in range(3):
            ComputeWorker.objects.create(target=target, hostname=f"node-{i}-{n}")
        submit(cast, compute_name=target.name)
    client = client_for(cast, "reader")
    url = reverse("compute", kwargs=ws_kw(cast))
    client.get(url)
    with django_assert_max_num_queries(9):
        assert client.get(url).status_code == 200
    for _ in range(20):
        submit(cast, compute_name="target-0")
    detail = reverse("compute-target", kwargs={**ws_kw(cast), "name": "target-0"})
    with django_assert_max_num_queries(12):
        assert client.get(detail).status_code == 200


# --- Environments ---------------------------------------------------------------------------


def test_the_environments_list_has_latest_versions_counts_and_curated_ones(cast):
    register(
        cast, "my-env", ["pandas"], ["pandas", "numpy"], ["pandas", "numpy", "scipy", "polars"]
    )
    html = client_for(cast, "reader").get(reverse("environments", kwargs=ws_kw(cast)))
    body = re.search(r"<tbody>(.*?)</tbody>", html.content.decode(), re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    names = [re.search(r'class="strong"[^>]*>([^<]+)<', r).group(1) for r in rows]
    assert names == ["mlstudio-minimal", "mlstudio-sklearn", "my-env"]  # curated first
    mine = rows[2]
    assert ">v3</a>" in mine and '<td class="num">3</td>' in mine and "+1 more" in mine
    assert "curated" in rows[0] and "curated" not in mine


def test_an_environment_page_shows_its_spec_versions_and_runs(cast):
    register(
        cast,
        "my-env",
        ["pandas"],
        ["pandas", "numpy"],
        python_version="3.12",
        env_vars={"API_KEY": "hunter2"},
    )
    job = submit(cast, environment="my-env:1", run_name="on-v1")
    client = client_for(cast, "reader")
    latest = client.get(reverse("environment", kwargs={**ws_kw(cast), "name": "my-env"}))
    html = latest.content.decode()
    assert "my-env:2" in html and ">numpy<" in html and ">3.12<" in html
    assert ">API_KEY<" in html and "hunter2" not in html
    assert "No remote run has used this version yet." in html
    first = client.get(
        reverse("environment-version", kwargs={**ws_kw(cast), "name": "my-env", "version": 1})
    ).content.decode()
    assert "my-env:1" in first and ">numpy<" not in first
    assert f'href="{run_url(cast, job)}?tab=job">on-v1<' in first
    curated = client.get(reverse("environment", kwargs={**ws_kw(cast), "name": "mlstudio-sklearn"}))
    assert "scikit-learn" in curated.content.decode() and "curated" in curated.content.decode()
    for kwargs in ({"name": "nope"}, {"name": "my-env", "version": 9}):
        name = "environment-version" if "version" in kwargs else "environment"
        assert client.get(reverse(name, kwargs={**ws_kw(cast), **kwargs})).status_code == 404


def test_the_environments_list_makes_a_bounded_number_of_queries(
    cast, django_assert_max_num_queries
):
    for i in range(30):
        register(cast, f"env-{i}", ["p0"], ["p1"], ["p2"])
    client = client_for(cast, "reader")
    url = reverse("environments", kwargs=ws_kw(cast))
    client.get(url)
    with django_assert_max_num_queries(8):
        assert client.get(url).status_code == 200
    assert Environment.objects.filter(workspace=cast.workspace).count() == 92


# --- The workspace page ---------------------------------------------------------------------


def test_the_workspace_page_lists_recent_remote_runs(cast):
    client = client_for(cast, "reader")
    url = reverse("workspace", kwargs=ws_kw(cast))
    assert "Recent remote runs" not in client.get(url).content.decode()
    job = submit(cast, run_name="remote-1")
    html = client.get(url).content.decode()
    assert "Recent remote runs" in html
    assert f'href="{run_url(cast, job)}?tab=job">remote-1<' in html
    sidebar = re.search(r'<aside class="sidebar">.*?</aside>', html, re.S).group(0)
    assert f'href="{reverse("compute", kwargs=ws_kw(cast))}">Compute<' in sidebar
    assert f'href="{reverse("environments", kwargs=ws_kw(cast))}">Environments<' in sidebar
