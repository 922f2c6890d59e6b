"""The compute worker: a Celery worker that runs remote runs, apart from the studio.

It needs only the broker and the studio's URL (and a worker token): no database URL,
no server secret, no Django. It consumes its target's queue, claims each job over
/api/v1/compute, builds or reuses the job's environment (`deployments.runner.envcache`),
unpacks the snapshot, runs the script sandboxed (`deployments.runner.sandbox`) while
streaming its output and beating the job's heart, uploads ./outputs and reports the
end. `mlstudio-worker --help` (deployments.worker.cli) starts one.

- `client`: the studio's worker API over HTTP, with retries.
- `logship`: the script's output, batched and appended to the run's log.
- `execute`: one job, start to end.
- `app`: the Celery app and its one task, `deployments.run_remote_job`.
- `cli`: the command.
"""
