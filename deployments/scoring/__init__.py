"""The scoring server: serves one MLflow pyfunc model over HTTP as a web service.

Plain Python (stdlib, mlflow, uvicorn, orjson when installed): no Django and no other
package of ours, and only relative imports inside, because the image build copies this
package as the top-level `mlstudio_scoring` into the build context. Started as
`python -m deployments.scoring --config FILE --host H --port P` (or `-m mlstudio_scoring`).

- `config`: the JSON file the studio writes, re-read when its mtime changes.
- `auth`: service keys (sha256 hashes) and short-lived HMAC tokens.
- `inputs`: request bodies → model input; short validation messages.
- `openapi`: the OpenAPI document generated from the model's signature.
- `telemetry`: per-minute rollups and sampled requests, shipped in the background.
- `app`: the raw ASGI application (served by uvicorn).
"""
