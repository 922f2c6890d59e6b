"""The scoring server (deployments/scoring) end to end: the diabetes model logged with the
real mlflow client, the real server process (`python -m deployments.scoring`), and HTTP.

One model and one server for the module; the telemetry batches go to a small HTTP sink
in this process that answers as the studio does (204, or 401 for a wrong token).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from deployments.scoring.auth import mint_token
from deployments.scoring.telemetry import LATENCY_BUCKETS_MS

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
ROWS = [
    [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02],
    [-0.01, -0.04, -0.05, -0.03, 0.01, 0.02, 0.03, -0.02, -0.01, 0.01],
]
PRIMARY, SECONDARY = "primary-key-0123456789", "secondary-key-9876543210"
TOKEN_SECRET = "token-secret-for-tests"
TELEMETRY_TOKEN = "telemetry-token-for-tests"
SERVICE = "diabetes-test"
SAMPLE_MAX_ROWS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> dict:
    """The diabetes model logged by the real client into a file store, and what sklearn
    itself predicts for ROWS. In this process (mlflow and scikit-learn are imported
    already), with the tracking URI put back afterwards."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    root = tmp_path_factory.mktemp("scoring-model")
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.5).fit(X, y)
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 refuses file stores
        mlflow.set_tracking_uri((root / "mlruns").as_uri())
        try:
            with mlflow.start_run():
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=infer_signature(X, model.predict(X)),
                    input_example=X.iloc[:2],
                    pip_requirements=["scikit-learn"],  # skips the slow inference
                )
            model_dir = mlflow.artifacts.download_artifacts(info.model_uri)
        finally:
            mlflow.set_tracking_uri(previous)
    expected = model.predict(pd.DataFrame(ROWS, columns=list(X.columns))).tolist()
    return {"model_dir": model_dir, "expected": expected}


class Sink:
    """The studio's telemetry endpoint, minus the database: keeps every batch."""

    def __init__(self) -> None:
        self.batches: list[dict] = []
        self.rejected = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization") != f"Bearer {TELEMETRY_TOKEN}":
                    sink.rejected += 1
                    self.send_response(401)
                else:
                    with sink.lock:
                        sink.batches.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/service-telemetry"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests(self) -> int:
        with self.lock:
            return sum(m["requests"] for b in self.batches for m in b["minutes"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sink():
    sink = Sink()
    yield sink
    sink.close()


def _config(logged: dict, sink: Sink, **changes) -> dict:
    config = {
        "service": SERVICE,
        "service_id": 7,
        "model_dir": logged["model_dir"],
        "auth_enabled": True,
        "key_hashes": [hashlib.sha256(k.encode()).hexdigest() for k in (PRIMARY, SECONDARY)],
        "token_secret": TOKEN_SECRET,
        "telemetry_url": sink.url,
        "telemetry_token": TELEMETRY_TOKEN,
        "telemetry_interval_s": 0.3,
        "sample_rate": 1.0,
        "sample_max_rows": SAMPLE_MAX_ROWS,
    }
    return {**config, **changes}


def _write_config(path: Path, config: dict) -> None:
    """Write as the studio does (a new file moved into place), with a new mtime."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config))
    tmp.chmod(0o600)
    os.replace(tmp, path)
    if path.stat().st_mtime_ns == before:  # coarse clocks: make the change visible
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


class Server:
    def __init__(self, url: str, config_path: Path, proc: subprocess.Popen):
        self.url, self.config_path, self.proc = url, config_path, proc

    def score(self, body, key: str | None = PRIMARY, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if not isinstance(body, str | bytes):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        return requests.post(f"{self.url}/score", data=body, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def server(logged, sink, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scoring-server")
    config_path = folder / "service.json"
    _write_config(config_path, _config(logged, sink))
    port = _free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deployments.scoring",
            "--config",
            str(config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, (folder / "server.log").read_text()[-3000:]
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the scoring server never became healthy"
        time.sleep(0.1)
    yield Server(url, config_path, proc)
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def _split(rows=ROWS) -> dict:
    return {"dataframe_split": {"columns": COLUMNS, "data": rows}}


# --- scoring ------------------------------------------------------------------------------


def test_health_needs_no_key(server):
    response = requests.get(f"{server.url}/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "Healthy"}


@pytest.mark.parametrize(
    "body, wrapped",
    [
        ({"data": ROWS}, False),  # the reference service's format: a plain list back
        (_split(), True),
        ({"dataframe_records": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]}, True),
        ({"instances": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]}, True),
        ({"inputs": {c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}}, True),
        # Not the parser's fast path: mlflow's parsing and schema enforcement (reordering).
        ({"data": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]}, False),
        ({"dataframe_split": {"columns": COLUMNS[::-1], "data": [r[::-1] for r in ROWS]}}, True),
    ],
    ids=[
        "data",
        "dataframe_split",
        "dataframe_records",
        "instances",
        "inputs",
        "data-records",
        "split-reordered",
    ],
)
def test_each_format_scores_with_the_key(server, logged, body, wrapped):
    response = server.score(body)
    assert response.status_code == 200, response.text
    answer = response.json()
    predictions = answer["predictions"] if wrapped else answer
    assert predictions == pytest.approx(logged["expected"], rel=1e-9)


def test_secondary_key_csv_and_invocations_alias(server, logged):
    csv = ",".join(COLUMNS) + "\n" + "\n".join(",".join(map(str, r)) for r in ROWS)
    response = server.score(csv, key=SECONDARY, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(logged["expected"])
    alias = requests.post(
        f"{server.url}/invocations",
        json=_split(),
        headers={"Authorization": f"Bearer {PRIMARY}"},
        timeout=10,
    )
    assert alias.status_code == 200
    assert alias.json()["predictions"] == pytest.approx(logged["expected"])


def test_without_or_with_a_wrong_key_401(server):
    missing = server.score({"data": ROWS}, key=None)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["error_code"] == "UNAUTHORIZED"
    wrong = server.score({"data": ROWS}, key="not-the-key")
    assert wrong.status_code == 401
    assert "invalid_token" in wrong.headers["WWW-Authenticate"]
    basic = server.score({"data": ROWS}, key=None, headers={"Authorization": f"Basic {PRIMARY}"})
    assert basic.status_code == 401
    # The key's hash is not a key.
    hashed = server.score({"data": ROWS}, key=hashlib.sha256(PRIMARY.encode()).hexdigest())
    assert hashed.status_code == 401


def test_token_works_and_expires(server):
    token, expires = mint_token(TOKEN_SECRET, SERVICE, 2)
    assert expires >= time.time() + 1
    assert server.score({"data": ROWS}, key=token).status_code == 200
    other_service, _ = mint_token(TOKEN_SECRET, "another-service", 60)
    assert server.score({"data": ROWS}, key=other_service).status_code == 401
    forged, _ = mint_token("another-secret", SERVICE, 60)
    assert server.score({"data": ROWS}, key=forged).status_code == 401
    stretched = f"{expires + 3600}.{token.split('.', 1)[1]}"  # a later expiry, same signature
    assert server.score({"data": ROWS}, key=stretched).status_code == 401
    time.sleep(max(0.0, expires - time.time()) + 0.2)
    expired = server.score({"data": ROWS}, key=token)
    assert expired.status_code == 401


MARKER = 987654.321  # a value that must never come back in an error message


@pytest.mark.parametrize(
    "body, content_type, status, says",
    [
        ({"data": [[MARKER, "zzz-not-a-number", *ROWS[0][2:]]]}, None, 400, "sex"),
        (_split([[MARKER, "zzz-not-a-number", *ROWS[0][2:]]]), None, 400, "sex"),
        ({"dataframe_records": [{"age": MARKER, "sex": 0.1}]}, None, 400, "bmi"),
        ({"data": [[MARKER, 1.0, 2.0]]}, None, 400, "10 values"),
        ('{"data": [[987654.321, ', None, 400, "not valid JSON"),
        ("[[987654.321]]", None, 400, "JSON object"),
        ({"rows": [[MARKER]]}, None, 400, "dataframe_split"),
        ({"data": ROWS}, "application/x-www-form-urlencoded", 415, "application/json"),
    ],
    ids=[
        "data-type",
        "split-type",
        "missing-columns",
        "row-width",
        "malformed",
        "not-object",
        "unknown-key",
        "content-type",
    ],
)
def test_bad_input_gets_a_short_message(server, body, content_type, status, says):
    headers = {"Content-Type": content_type} if content_type else {}
    if isinstance(body, str):
        headers.setdefault("Content-Type", "application/json")
    response = server.score(body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["error_code"] in ("BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE")
    message = error["message"]
    assert says in message
    assert len(message) <= 200
    assert "987654" not in response.text and "zzz-not-a-number" not in response.text
    assert "Traceback" not in response.text
    assert sum(c in message for c in COLUMNS[3:]) <= 3  # the schema is not listed


def test_swagger_is_an_openapi_document_from_the_signature(server):
    from openapi_spec_validator import validate

    response = requests.get(f"{server.url}/swagger.json", timeout=5)  # no key needed
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.")
    score = document["paths"]["/score"]["post"]
    assert score["security"] == [{"ServiceKey": []}]
    assert document["components"]["securitySchemes"]["ServiceKey"]["scheme"] == "bearer"
    request = document["components"]["schemas"]["ScoringRequest"]
    formats = [next(iter(option["required"])) for option in request["oneOf"]]
    assert formats == ["data", "dataframe_split", "dataframe_records", "instances", "inputs"]
    record = request["oneOf"][2]["properties"]["dataframe_records"]["items"]
    assert list(record["properties"]) == COLUMNS
    assert record["properties"]["bmi"] == {"type": "number", "format": "double"}
    example = score["requestBody"]["content"]["application/json"]["example"]
    assert len(example["data"]) == 2 and len(example["data"][0]) == len(COLUMNS)
    assert "200" in score["responses"] and "401" in score["responses"]
    # The example in the document scores.
    assert server.score(example).status_code == 200


def test_config_reload_takes_a_new_key_without_restart(server, logged, sink):
    new_key = "regenerated-primary-key"
    pid = server.proc.pid
    try:
        changed = _config(logged, sink)
        changed["key_hashes"] = [
            hashlib.sha256(new_key.encode()).hexdigest(),
            *changed["key_hashes"][1:],
        ]
        _write_config(server.config_path, changed)
        deadline = time.monotonic() + 10
        while server.score({"data": ROWS}, key=new_key).status_code != 200:
            assert time.monotonic() < deadline, "the new key was never accepted"
            time.sleep(0.1)
        assert server.score({"data": ROWS}, key=PRIMARY).status_code == 401
        assert server.score({"data": ROWS}, key=SECONDARY).status_code == 200
        # auth_enabled: false opens the service.
        _write_config(server.config_path, _config(logged, sink, auth_enabled=False))
        deadline = time.monotonic() + 10
        while server.score({"data": ROWS}, key=None).status_code != 200:
            assert time.monotonic() < deadline, "auth_enabled: false was never taken"
            time.sleep(0.1)
        assert server.proc.pid == pid and server.proc.poll() is None  # no restart
    finally:
        _write_config(server.config_path, _config(logged, sink))
        deadline = time.monotonic() + 10
        while server.score({"data": ROWS}, key=PRIMARY).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def _settled(sink: Sink, quiet_s: float = 1.0, timeout: float = 15) -> int:
    """The sink's request count once nothing new arrived for quiet_s."""
    deadline = time.monotonic() + timeout
    last, since = sink.requests(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, "telemetry never settled"
        time.sleep(0.1)
        now = sink.requests()
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_telemetry_batches_arrive_with_counts_and_buckets(server, sink):
    before_total = _settled(sink)
    before_batches = len(sink.batches)
    five_rows = [ROWS[0], ROWS[1], ROWS[0], ROWS[1], ROWS[0]]
    statuses = [server.score(_split(five_rows)).status_code]
    statuses += [server.score({"data": ROWS}).status_code for _ in range(4)]
    statuses.append(server.score({"data": ROWS}, key=None).status_code)  # 401
    statuses.append(server.score({"data": [[1.0]]}).status_code)  # 400
    assert statuses == [200] * 5 + [401, 400]
    deadline = time.monotonic() + 10
    while sink.requests() < before_total + 7:
        assert time.monotonic() < deadline, f"telemetry: {sink.requests() - before_total} of 7"
        time.sleep(0.1)
    assert _settled(sink) == before_total + 7  # each request counted once
    batches = sink.batches[before_batches:]
    minutes = [m for b in batches for m in b["minutes"]]
    assert sum(m["requests"] for m in minutes) == 7
    assert sum(m["errors"] for m in minutes) == 2
    assert sum(m["server_errors"] for m in minutes) == 0
    for minute in minutes:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", minute["minute"])
        assert len(minute["latency_buckets"]) == len(LATENCY_BUCKETS_MS) + 1
        assert sum(minute["latency_buckets"]) == minute["requests"]
        assert 0 < minute["latency_max_ms"] <= minute["latency_sum_ms"]
        assert minute["bytes_in"] > 0 and minute["bytes_out"] > 0
    samples = [s for b in batches for s in b["samples"]]
    assert sorted(s["status"] for s in samples) == [200] * 5 + [400, 401]
    first = next(s for s in samples if s["inputs"] and len(s["inputs"]["data"]) == SAMPLE_MAX_ROWS)
    assert first["inputs"]["columns"] == COLUMNS
    assert first["inputs"]["data"] == five_rows[:SAMPLE_MAX_ROWS]  # capped at sample_max_rows
    assert len(first["outputs"]) == SAMPLE_MAX_ROWS
    assert all(isinstance(v, float) for v in first["outputs"])
    unauthorized = next(s for s in samples if s["status"] == 401)
    assert unauthorized["inputs"] is None and unauthorized["error"]
    assert sink.rejected == 0


def test_package_imports_itself_only_relatively():
    """It is copied into images as the top-level mlstudio_scoring: an absolute import of
    deployments (or of the studio's apps) would break there."""
    package = ROOT / "deployments" / "scoring"
    pattern = re.compile(r"^\s*(from|import)\s+(deployments|portal|tracking|mlstudio|django)\b")
    offenders = [
        f"{path.name}:{n}"
        for path in package.glob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.match(line)
    ]
    assert offenders == []


def test_it_runs_as_the_top_level_package_of_an_image(tmp_path):
    """As the image build copies it: mlstudio_scoring, outside this repository."""
    shutil.copytree(
        ROOT / "deployments" / "scoring",
        tmp_path / "mlstudio_scoring",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    probe = "import json, sys, mlstudio_scoring.app, mlstudio_scoring.__main__; "
    probe += "print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(json.loads(out.stdout))
    assert "mlstudio_scoring.app" in loaded
    assert not {"deployments", "django", "portal", "tracking", "mlstudio"} & loaded
