"""The worker side of a remote run, as a plain-Python library.

- `envcache` (`envspec`): virtualenvs built with uv once per spec hash, cached, raced
  safely; a failed build raises `EnvironmentBuildError` carrying its log's tail.
- `snapshot`: a source snapshot zip, unpacked safely into a job's work dir.
- `sandbox` (`bwrap`, `cgroups`, `processes`, `streaming`): a script run under
  bubblewrap with limits, its output streamed line by line, cancelable.

No Django, no Celery, no settings: the worker's task passes paths and values in and
records what comes back (`.importlinter` keeps it so). The task's part, in order:

    env = EnvironmentCache(envs_root).ensure(spec, log=append_to_job_log)
    unpack_snapshot(zip_path, job_dir / "work")           # the script's cwd
    sandbox = Sandbox(hidden_paths=[data_dir, jobs_root, *secret_files])   # once
    result = sandbox.run(
        [env.python, script, *arguments],
        workdir=job_dir / "work",
        env=job_env(workdir=job_dir / "work", venv=env.path, extra={...MLFLOW_*...}),
        limits=Limits(wall_seconds=..., memory_bytes=..., ...),
        on_output=append_to_job_log,    # called per line, from a reader thread
        cancel=cancel_event,            # set it to cancel; the tree dies within seconds
        ro_paths=[env.path],
    )
    # result.exit_code / signal / timed_out / canceled / oom_killed / sandboxed,
    # result.describe() for the run page, result.notes when it ran without a sandbox

Layout the sandbox expects: the work dir and the env cache must be reachable (every
ancestor searchable, `o+x`) by the sandbox's uid (65534 when the worker is root), since
bubblewrap runs as that uid: a jobs root and job dirs of mode 0711 and an env cache of
0755 do it. Keep the job's own files (its log, its snapshot zip) in the job dir beside
`work/`, where the script cannot reach them. These dirs may live inside the data folder:
hidden paths are masked, and a bound path deeper than a hidden one still shows.
"""
