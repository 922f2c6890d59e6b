"""The `scoring` workload: our scoring server against `mlflow models serve`, same model.

The scikit-learn diabetes model (a Ridge regression on `sklearn.datasets.load_diabetes`,
which ships with scikit-learn) is logged with mlflow into a local file store; then
`mlflow models serve -m <model> --env-manager local` (uvicorn + FastAPI, one worker, its
default) and our server (`python -m deployments.scoring`, one uvicorn process, key auth on,
telemetry on: every request sampled and shipped each second to a small sink started here)
are driven by the same load generator: N persistent HTTP/1.1 connections (one thread and
one socket each) posting the same `dataframe_split` body for a fixed time, after a
warm-up; figures: requests/s and p50/p95 latency at 1 and 8 connections. Also each
server's cold start: process start → health 200 (`/health` for ours, `/ping` for mlflow).

run.py calls `run_scoring()`; the model logging and the load generator run in their own
processes (`python bench/scoring.py log|load …`), so the orchestrator's threads (the
telemetry sink) do not share a GIL with the client.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONNECTIONS = (1, 8)
KEY = "bench-scoring-key"
TELEMETRY_TOKEN = "bench-telemetry-token"  # noqa: S105 - a local sink's
ROWS = [[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]]
COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": ROWS}}).encode()


# --- the model --------------------------------------------------------------------------


def log_model(root: Path) -> str:
    """Log the diabetes model into a file store under `root`; returns the model's folder."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # mlflow 3.x refuses file stores otherwise
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.5).fit(X, y)
    mlflow.set_tracking_uri((root / "mlruns").as_uri())
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            input_example=X.iloc[:2],
            pip_requirements=["scikit-learn"],  # skips the slow requirements inference
        )
    return mlflow.artifacts.download_artifacts(info.model_uri)


# --- the load generator -----------------------------------------------------------------


def _read_response(sock: socket.socket, buf: bytearray) -> int:
    """Read one HTTP/1.1 response off `sock` (Content-Length or chunked); its status."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    start = end + 4
    at = head.find(b"content-length:")
    if at >= 0:
        length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
        while len(buf) < start + length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buf += chunk
        del buf[: start + length]
        return status
    while (done := buf.find(b"0\r\n\r\n", start)) < 0:  # chunked: up to the last chunk
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    del buf[: done + 5]
    return status


def load(spec: dict) -> dict:
    """`connections` threads, one persistent connection each, the same request for
    `warmup_s` (not counted) then `duration_s`; requests/s and latency percentiles."""
    host, port, path = spec["host"], spec["port"], spec["path"]
    body = spec["body"].encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        + (f"Authorization: Bearer {spec['key']}\r\n" if spec.get("key") else "")
        + "\r\n"
    )
    request = head.encode() + body
    n = spec["connections"]
    barrier = threading.Barrier(n + 1)
    results: list[tuple[list[float], dict[int, int], int]] = []
    errors: list[str] = []
    timing: dict[str, float] = {}

    def worker() -> None:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        total = 0  # warm-up included: what the server saw
        try:
            sock = socket.create_connection((host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = bytearray()
            barrier.wait()
            measure_from, until = timing["from"], timing["until"]
            clock = time.perf_counter
            while True:
                sent = clock()
                if sent >= until:
                    break
                sock.sendall(request)
                status = _read_response(sock, buf)
                total += 1
                if sent >= measure_from:
                    latencies.append(clock() - sent)
                    statuses[status] = statuses.get(status, 0) + 1
            sock.close()
        except Exception as exc:  # reported, not raised: the other threads go on
            errors.append(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.abort()
        results.append((latencies, statuses, total))

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    timing["from"] = now + spec["warmup_s"]
    timing["until"] = timing["from"] + spec["duration_s"]
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    for thread in threads:
        thread.join()
    latencies = sorted(lat for lats, _, _ in results for lat in lats)
    statuses: dict[str, int] = {}
    for _, counts, _ in results:
        for status, count in counts.items():
            statuses[str(status)] = statuses.get(str(status), 0) + count
    if not latencies:
        return {"error": errors[0] if errors else "no request completed"}
    return {
        "connections": n,
        "requests": len(latencies),
        "total": sum(total for _, _, total in results),
        "rps": len(latencies) / spec["duration_s"],
        "p50_ms": _pct(latencies, 50) * 1000,
        "p95_ms": _pct(latencies, 95) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "statuses": statuses,
        "ok": statuses.get("200", 0) == len(latencies) and not errors,
        "errors": errors[:3],
    }


def _pct(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


# --- the telemetry sink -----------------------------------------------------------------


class Sink:
    """What the studio's telemetry endpoint does, minus the database: checks the token,
    counts the requests and samples in each batch, answers 204."""

    def __init__(self) -> None:
        self.requests = self.samples = self.batches = self.rejected = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization") != f"Bearer {TELEMETRY_TOKEN}":
                    sink.rejected += 1
                    self.send_response(401)
                else:
                    batch = json.loads(data)
                    with sink.lock:
                        sink.batches += 1
                        sink.requests += sum(m["requests"] for m in batch["minutes"])
                        sink.samples += len(batch["samples"])
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/service-telemetry"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the servers ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_health(url: str, proc: subprocess.Popen, started: float, timeout: float = 180) -> float:
    """Seconds from `started` until `url` answers 200."""
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - ours
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not healthy after {timeout:.0f} s")


@contextlib.contextmanager
def _started(command: list[str], env: dict, log_path: Path, health: str) -> Iterator[dict]:
    with open(log_path, "wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            cold = _wait_health(health, proc, started)
            yield {"cold_start_s": cold, "proc": proc}
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # mlflow serves with the venv's uvicorn
    return env


def _drive(port: int, path: str, key: str | None, connections: int, seconds: float) -> dict:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "path": path,
        "key": key,
        "body": BODY.decode(),
        "connections": connections,
        "warmup_s": min(2.0, max(0.5, seconds / 5)),
        "duration_s": seconds,
    }
    out = subprocess.run(
        [sys.executable, __file__, "load", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


ROUNDS = 3  # each figure: the median of this many alternating rounds per server


def run_scoring(seconds: float, out_dir: Path, only: str | None = None) -> dict[str, dict]:
    """Both servers, both connection counts; {"ours": {...}, "mlflow": {...}}.

    Each server is started alone (its cold start), then both stay up and the load
    alternates between them in ROUNDS rounds of seconds/ROUNDS per connection count, so
    other work on the machine weighs on both alike; a figure is the median of its rounds."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {"ours": {}, "mlflow": {}}
    with tempfile.TemporaryDirectory(prefix="mlstudio-bench-scoring-") as tmp:
        root = Path(tmp)
        logged = subprocess.run(
            [sys.executable, __file__, "log", str(root)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if logged.returncode != 0:
            error = (logged.stderr.strip().splitlines() or ["model logging failed"])[-1]
            return {"ours": {"error": error}, "mlflow": {"error": error}}
        model_dir = logged.stdout.strip().splitlines()[-1]
        sink = Sink()
        targets: dict[str, tuple[int, str, str | None]] = {}
        try:
            with contextlib.ExitStack() as stack:
                for key in ("mlflow", "ours"):
                    if only not in (None, key):
                        continue
                    try:
                        started = _start_mlflow if key == "mlflow" else _start_ours
                        server = stack.enter_context(started(model_dir, out_dir, root, sink))
                    except Exception as exc:
                        results[key]["error"] = _last_line(exc)
                        continue
                    results[key]["cold_start_s"] = server["cold_start_s"]
                    targets[key] = (server["port"], server["path"], server["key"])
                for n in CONNECTIONS:
                    rounds: dict[str, list[dict]] = {key: [] for key in targets}
                    for _ in range(ROUNDS):
                        for key, (port, path, auth) in targets.items():
                            if "error" in results[key]:
                                continue
                            try:
                                rounds[key].append(_drive(port, path, auth, n, seconds / ROUNDS))
                            except Exception as exc:
                                results[key]["error"] = _last_line(exc)
                    for key, measured in rounds.items():
                        if measured:
                            results[key][f"c{n}"] = _combine(measured)
                if "ours" in targets and "error" not in results["ours"]:
                    results["ours"].update(_telemetry_check(results["ours"], sink))
        finally:
            sink.close()
    return results


def _last_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else repr(exc)


def _combine(rounds: list[dict]) -> dict:
    """The median round's figures; every round's in `rounds`."""
    out = {
        name: statistics.median(r[name] for r in rounds)
        for name in ("rps", "p50_ms", "p95_ms", "mean_ms")
    }
    out["requests"] = sum(r["requests"] for r in rounds)
    out["total"] = sum(r["total"] for r in rounds)  # warm-ups included
    out["ok"] = all(r["ok"] for r in rounds)
    statuses: dict[str, int] = {}
    for r in rounds:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    out["statuses"] = statuses
    out["rounds"] = [{k: r[k] for k in ("rps", "p50_ms", "p95_ms")} for r in rounds]
    return out


@contextlib.contextmanager
def _start_mlflow(model_dir: str, out_dir: Path, root: Path, sink: Sink) -> Iterator[dict]:
    port = _free_port()
    command = [str(BIN / "mlflow"), "models", "serve", "-m", model_dir, "--env-manager", "local"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    health = f"http://127.0.0.1:{port}/ping"
    with _started(command, _env(), out_dir / "scoring-mlflow.log", health) as server:
        yield {**server, "port": port, "path": "/invocations", "key": None}


@contextlib.contextmanager
def _start_ours(model_dir: str, out_dir: Path, root: Path, sink: Sink) -> Iterator[dict]:
    port = _free_port()
    config = root / "service.json"
    config.write_text(
        json.dumps(
            {
                "service": "bench-scoring",
                "service_id": 1,
                "model_dir": model_dir,
                "auth_enabled": True,
                "key_hashes": [hashlib.sha256(KEY.encode()).hexdigest(), ""],
                "token_secret": "bench-token-secret",
                "telemetry_url": sink.url,
                "telemetry_token": TELEMETRY_TOKEN,
                "telemetry_interval_s": 1,
                "sample_rate": 1.0,
                "sample_max_rows": 100,
            }
        )
    )
    config.chmod(0o600)
    command = [sys.executable, "-m", "deployments.scoring", "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    health = f"http://127.0.0.1:{port}/health"
    with _started(command, _env(), out_dir / "scoring-ours.log", health) as server:
        yield {**server, "port": port, "path": "/score", "key": KEY}


def _telemetry_check(result: dict, sink: Sink) -> dict:
    """Every request the load generator sent ours (warm-ups included) must arrive at the
    sink, counted once, from the server's background batches."""
    sent = sum(result[f"c{n}"].get("total", 0) for n in CONNECTIONS if f"c{n}" in result)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sink.requests < sent:
        time.sleep(0.2)
    time.sleep(1.5)  # one more interval: nothing may be counted twice
    return {
        "telemetry": {
            "batches": sink.batches,
            "requests": sink.requests,
            "samples": sink.samples,
            "sent": sent,
            "rejected": sink.rejected,
        },
        "telemetry_ok": sink.requests == sent and sent > 0 and not sink.rejected,
    }


if __name__ == "__main__":
    command, argument = sys.argv[1], sys.argv[2]
    if command == "log":
        print(log_model(Path(argument)))
    elif command == "load":
        print(json.dumps(load(json.loads(argument))))
    else:
        raise SystemExit(f"unknown command {command}")
