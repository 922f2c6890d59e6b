"""The scoring server's ASGI application (served by uvicorn; no framework in between).

One model, loaded once before the server listens. POST /score (and /invocations) checks
the key or token, parses the body (inputs.py), calls the model and answers JSON; every
scoring request is counted by telemetry.py, whose thread ships the counts later. The model
runs on the event loop's thread for small bodies — a thread hop costs more than a small
prediction, and a CPU-bound model gains nothing from threads under the GIL — and in a
worker thread for large ones, so /health stays answered during a long prediction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

from .auth import authorized
from .config import Config, ConfigWatcher
from .inputs import BadInput, InputParser, Parsed, schema_message
from .openapi import build_document, model_example
from .telemetry import Telemetry, dumps

log = logging.getLogger("mlstudio_scoring")

SCORE_PATHS = frozenset({"/score", "/score/", "/invocations", "/invocations/"})
HEALTH_PATHS = frozenset({"/health", "/health/", "/ping"})
SWAGGER_PATHS = frozenset({"/swagger.json", "/openapi.json"})
INLINE_MAX_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

JSON = b"application/json"
_JSON_HEADERS = [(b"content-type", JSON)]


def _error(code: str, message: str) -> bytes:
    return dumps({"error_code": code, "message": message})


class LoadedModel:
    """The pyfunc model and what is derived from its signature once."""

    def __init__(self, model_dir: str):
        import mlflow.pyfunc

        # mlflow's own check of the model's requirements against what is installed maps
        # every installed distribution's files to modules first: 2–3 s of a ~4 s load.
        # warn_mismatches() says the same in a few milliseconds.
        self.model = mlflow.pyfunc.load_model(model_dir, suppress_warnings=True)
        warn_mismatches(model_dir)
        metadata = self.model.metadata
        self.input_schema = metadata.get_input_schema()
        self.output_schema = metadata.get_output_schema()
        self.parser = InputParser(self.input_schema)
        self.example = model_example(model_dir, metadata)
        try:
            import inspect

            self.takes_params = "params" in inspect.signature(self.model.predict).parameters
        except (TypeError, ValueError):
            self.takes_params = False
        # For input the parser built exactly as the signature says (`Parsed.conforming`),
        # mlflow's schema enforcement hands the frame back unchanged, yet costs more than
        # the prediction of a small model: such input goes to the flavor's predict function
        # directly. Everything else (and any model whose signature comes from type hints
        # or an example) goes through pyfunc's predict and its enforcement.
        self.direct = None
        from_hints = getattr(metadata, "_is_signature_from_type_hint", lambda: True)()
        from_example = getattr(metadata, "_is_type_hint_from_example", lambda: True)()
        if self.parser.float_dtype is not None and not from_hints and not from_example:
            self.direct = getattr(self.model, "_predict_fn", None)

    def predict(self, parsed: Parsed) -> Any:
        if parsed.conforming and self.direct is not None:
            return self.direct(parsed.data)
        if parsed.params and self.takes_params:
            return self.model.predict(parsed.data, params=parsed.params)
        return self.model.predict(parsed.data)


def warn_mismatches(model_dir: str) -> None:
    """Log the model's pinned requirements (requirements.txt) that the installed versions
    do not match, and a different Python minor version; never raises."""
    import platform
    from importlib import metadata

    try:
        from packaging.requirements import Requirement

        lines = (Path(model_dir) / "requirements.txt").read_text().splitlines()
    except (OSError, ImportError):
        lines = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
            if not req.specifier:
                continue
            installed = metadata.version(req.name)
        except (ValueError, metadata.PackageNotFoundError):  # the load says what is missing
            continue
        if installed not in req.specifier:
            log.warning("the model asks for %s; %s %s is installed", line, req.name, installed)
    try:
        import yaml

        meta = yaml.safe_load((Path(model_dir) / "MLmodel").read_text()) or {}
        wanted = str(meta.get("flavors", {}).get("python_function", {}).get("python_version", ""))
    except Exception:
        wanted = ""
    running = platform.python_version()
    if wanted and wanted.split(".")[:2] != running.split(".")[:2]:
        log.warning("the model was logged with Python %s; this is Python %s", wanted, running)


def render_predictions(predictions: Any, wrapped: bool) -> bytes:
    """JSON of the predictions: a plain list for {"data": ...}, {"predictions": ...} for
    the MLflow formats (as `mlflow models serve` answers)."""
    if getattr(getattr(predictions, "dtype", None), "kind", "O") == "O":  # not a plain array
        from mlflow.utils.proto_json_utils import _get_jsonable_obj

        predictions = _get_jsonable_obj(predictions, pandas_orient="records")
    return dumps({"predictions": predictions} if wrapped else predictions)


class ScoringApp:
    def __init__(self, watcher: ConfigWatcher, loaded: LoadedModel, telemetry: Telemetry):
        self.watcher = watcher
        self.loaded = loaded
        self.telemetry = telemetry
        self._config: Config = watcher.config
        self._swagger: dict[bool, bytes] = {}

    # --- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path in SCORE_PATHS:
                if scope["method"] == "POST":
                    await self.score(scope, receive, send)
                else:
                    await self._respond(send, 405, _error("METHOD_NOT_ALLOWED", "Use POST."),
                                        [(b"allow", b"POST")])  # fmt: skip
            elif path in HEALTH_PATHS:
                await self._respond(send, 200, b'{"status":"Healthy"}')
            elif path in SWAGGER_PATHS:
                await self._respond(send, 200, self.swagger())
            else:
                await self._respond(send, 404, _error("NOT_FOUND", "Not found: use POST /score."))
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.telemetry.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.telemetry.stop, True)  # flush what is pending
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _respond(
        send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        if extra is not None:
            headers += extra
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # --- scoring ------------------------------------------------------------------------

    def config(self) -> Config:
        config = self.watcher.current()
        if config is not self._config:  # reloaded: telemetry settings may have changed
            self._config = config
            self.telemetry.configure(
                config.telemetry_url,
                config.telemetry_token,
                config.telemetry_interval_s,
                config.sample_rate,
                config.sample_max_rows,
            )
        return config

    async def score(self, scope: dict, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        config = self.config()
        auth = content_type = request_id = None
        length = 0
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"content-type":
                content_type = value
            elif name == b"x-request-id":
                request_id = value
            elif name == b"content-length":
                length = int(value) if value.isdigit() else 0
        rid = _request_id(request_id)
        extra = [(b"x-request-id", rid.encode())]
        parsed = predictions = None
        error = ""
        body = b""
        if config.auth_enabled and not authorized(
            auth.decode("latin-1") if auth else None,
            config.key_hashes,
            config.token_secret,
            config.service,
        ):
            status = 401
            error = "Missing or invalid key or token." if auth else "Missing key or token."
            out = _error("UNAUTHORIZED", error)
            extra.append(
                (b"www-authenticate", b'Bearer error="invalid_token"' if auth else b"Bearer")
            )
        else:
            try:
                body = await _read_body(receive, length)
                parsed = self._parse(content_type, body)
                if len(body) <= INLINE_MAX_BYTES:
                    predictions = self._predict(parsed)
                else:
                    predictions = await asyncio.to_thread(self._predict, parsed)
                out = render_predictions(predictions, parsed.wrapped)
                status = 200
            except BadInput as exc:
                status, error = exc.status, exc.message
                out = _error(exc.code, exc.message)
            except _Disconnected:
                return
            except Exception:  # the model or the rendering failed: no trace to the client
                log.exception("scoring failed (request %s)", rid)
                status, error = 500, "The model failed to score the input."
                out = _error("INTERNAL_ERROR", error)
        await self._respond(send, status, out, extra)
        telemetry = self.telemetry
        if telemetry.url:
            sample = telemetry.should_sample()
            telemetry.record(
                status,
                (time.perf_counter() - started) * 1000.0,
                len(body) or length,
                len(out),
                rid,
                parsed.rows if (sample and parsed is not None) else None,
                predictions if sample else None,
                error,
                sample,
            )

    def _parse(self, content_type: bytes | None, body: bytes) -> Parsed:
        parser = self.loaded.parser
        if content_type is None or content_type == JSON:
            return parser.parse_json(body)
        mime, _, rest = content_type.decode("latin-1").partition(";")
        mime = mime.strip().lower()
        charset = rest.strip().lower().removeprefix("charset=").strip('"') if rest else "utf-8"
        if charset not in ("utf-8", "utf8"):
            raise BadInput("Only UTF-8 bodies are accepted.", 415, "UNSUPPORTED_MEDIA_TYPE")
        if mime == "application/json" or mime.endswith("+json"):
            return parser.parse_json(body)
        if mime == "text/csv":
            return parser.parse_csv(body)
        raise BadInput(
            "Send the body as application/json (or text/csv).", 415, "UNSUPPORTED_MEDIA_TYPE"
        )

    def _predict(self, parsed: Parsed) -> Any:
        try:
            return self.loaded.predict(parsed)
        except Exception as exc:
            if _is_input_error(exc):
                raise BadInput(schema_message(parsed.data, self.loaded.input_schema, exc)) from None
            log.warning("the model raised %s on a request", type(exc).__name__, exc_info=True)
            raise BadInput(f"The model could not score the input ({type(exc).__name__}).") from None

    def swagger(self) -> bytes:
        auth = self.config().auth_enabled
        cached = self._swagger.get(auth)
        if cached is None:
            document = build_document(
                service=self._config.service,
                input_schema=self.loaded.input_schema,
                output_schema=self.loaded.output_schema,
                example=self.loaded.example,
                auth_enabled=auth,
            )
            cached = self._swagger[auth] = dumps(document)
        return cached


class _Disconnected(Exception):
    pass


async def _read_body(receive: Any, length: int) -> bytes:
    if length > MAX_BODY_BYTES:
        raise BadInput("The request body is too large.", 413, "PAYLOAD_TOO_LARGE")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _Disconnected
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadInput("The request body is too large.", 413, "PAYLOAD_TOO_LARGE")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _is_input_error(exc: Exception) -> bool:
    """mlflow's schema enforcement (and params) errors: the caller's input, a 400."""
    code = getattr(exc, "error_code", "")
    return (
        code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")
        or "schema" in str(getattr(exc, "error_class", "")).lower()
    )


def _request_id(given: bytes | None) -> str:
    if given and len(given) <= 64:
        text = given.decode("latin-1")
        if text.isprintable():
            return text
    return os.urandom(8).hex()
