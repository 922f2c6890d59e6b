"""The worker side of a remote run, as a plain-Python library.

- `envcache`: virtualenvs built with uv once per spec hash, cached, raced safely.
- `snapshot`: a source snapshot zip, unpacked safely into a job's work dir.
- `sandbox`: a script run under bubblewrap with limits, its output streamed, cancelable.

No Django, no Celery, no settings: the worker's task passes paths and values in and
records what comes back (`.importlinter` keeps it so). The caller's part, in order:

1. `EnvironmentCache(root).ensure(spec, log=...)` -> `PreparedEnv`
   (a failed build raises `EnvironmentBuildError` carrying the log's tail);
2. `unpack_snapshot(zip_path, workdir / "src", ...)` (`SnapshotError` on a bad zip);
3. `Sandbox(hidden_paths=[data dir, jobs root, secret files]).run(argv, workdir=...,
   env=job_env(...), limits=Limits(...), on_output=..., cancel=event, ro_paths=[env.path])`
   -> `RunResult`.

Layout the sandbox expects: the work dir and the env cache must be reachable (every
ancestor searchable, `o+x`) by the sandbox's uid (65534 when the worker is root), since
bubblewrap runs as that uid; a jobs root of mode 0711 and an env cache of 0755 do it.
Such dirs may live inside the data folder: hidden paths are masked, and a bound path
deeper than a hidden one shows through (mounts apply shallowest first).
"""
