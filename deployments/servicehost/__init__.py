"""The service host: the long-running process (`manage.py service_host`, which `make run`
starts) that runs the web services of the local runtime on this machine.

- `host`: the supervisor loop (reconcile the database's desired state with what runs,
  health checks, restarts with backoff, adoption after its own restart).
- `front`: the small HTTP/1.1 relay that owns a service's public port, so updates swap
  instances behind a scoring URI that never changes (plain stdlib, its own process).
"""
