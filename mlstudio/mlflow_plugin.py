"""The MLflow auth provider that keeps workspace tracking tokens fresh.

Installed with the SDK as the ``mlstudio`` entry point of the ``mlflow.request_auth_provider``
group. MLflow uses it when ``MLFLOW_TRACKING_AUTH=mlstudio``, which
``Workspace.get_mlflow_tracking_uri()`` sets. For every request below a registered tracking
URI it sends ``Authorization: Bearer <tracking token>`` — minting a new short-lived token
with the personal credential shortly before the current one expires — and when the server
still answers 401 (the token was revoked or expired early) it mints once more and sends the
request again. Requests to other servers pass unchanged.

The header it sets wins over MLFLOW_TRACKING_TOKEN: requests applies `auth` after headers.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.auth import AuthBase
from requests.utils import rewind_body

from mlstudio._client import renewal

try:  # mlflow is an optional extra: the class works without its base class too
    from mlflow.tracking.request_auth.abstract_request_auth_provider import (
        RequestAuthProvider as _Base,
    )
except ImportError:  # pragma: no cover - only without the mlflow extra
    _Base = object  # type: ignore[assignment,misc]

PROVIDER_NAME = "mlstudio"
_RETRIED = "_mlstudio_retried"


class MLStudioRequestAuth(AuthBase):
    """requests auth: the current tracking token for ML Studio tracking URLs, renewed on 401."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        source = self._source(request.url or "")
        if source is None:
            return request
        request.headers["Authorization"] = f"Bearer {source.token()}"
        request.register_hook("response", self._renew_on_401)
        return request

    @staticmethod
    def _source(url: str) -> renewal.TrackingTokenSource | None:
        return renewal.lookup(url) or renewal.source_for_url(url)

    def _renew_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        if response.status_code != 401 or getattr(request, _RETRIED, False):
            return response
        source = self._source(request.url or "")
        if source is None:
            return response
        rejected = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        token = source.renew(rejected)
        # Read and release the refused response so its connection can carry the retry.
        _ = response.content
        response.close()
        retry = request.copy()
        if retry._body_position is not None:  # a file being uploaded: send it from the start
            rewind_body(retry)
        retry.headers["Authorization"] = f"Bearer {token}"
        setattr(retry, _RETRIED, True)
        sent = response.connection.send(retry, **kwargs)
        sent.history.append(response)
        sent.request = retry
        return sent


class MLStudioAuthProvider(_Base):
    """MLflow request auth provider ``mlstudio`` (select it with MLFLOW_TRACKING_AUTH=mlstudio)."""

    def get_name(self) -> str:
        return PROVIDER_NAME

    def get_auth(self) -> MLStudioRequestAuth:
        return MLStudioRequestAuth()


def ensure_registered() -> bool:
    """Register the provider with mlflow's registry in this process, if it lacks it.

    The entry point does this when the SDK is installed; running the SDK from a source tree
    has no entry point. Answers whether it had to register (False also when mlflow is not
    installed).
    """
    try:
        from mlflow.tracking.request_auth import registry as registry_module
    except ImportError:
        return False
    registry = registry_module._request_auth_provider_registry
    if any(p.get_name() == PROVIDER_NAME for p in registry):
        return False
    registry.register(MLStudioAuthProvider)
    return True
