"""ML Studio's Python SDK and CLI.

It talks to a studio over HTTP only and never imports Django, so it installs on its own
wherever a data scientist works (``pip install mlstudio``). It mirrors the reference
service's SDK::

    import mlflow
    from mlstudio import Workspace

    ws = Workspace.from_config()
    mlflow.set_tracking_uri(ws.get_mlflow_tracking_uri())
"""

from mlstudio._client.renewal import set_auth_provider_installer as _set_auth_provider_installer
from mlstudio._version import __version__
from mlstudio.auth import (
    DefaultAuthentication,
    EnvironmentAuthentication,
    StoredLoginAuthentication,
    TokenAuthentication,
)
from mlstudio.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConflictError,
    ExperimentNotFound,
    JobFailedError,
    MLStudioError,
    NotFoundError,
    RunNotFound,
    ThrottledError,
    UserErrorException,
    ValidationError,
    WorkspaceNotFound,
)
from mlstudio.experiment import Experiment
from mlstudio.run import Run
from mlstudio.scopes import ResourceGroup, Subscription
from mlstudio.workspace import Workspace


def _register_mlflow_auth_provider() -> bool:
    # Imported on first use, not with the SDK: mlflow_plugin imports mlflow (optional, slow).
    from mlstudio.mlflow_plugin import ensure_registered

    return ensure_registered()


# Workspace.get_mlflow_tracking_uri() runs this; the workspace stands below the plugin.
_set_auth_provider_installer(_register_mlflow_auth_provider)

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "ConfigurationError",
    "ConflictError",
    "DefaultAuthentication",
    "EnvironmentAuthentication",
    "Experiment",
    "ExperimentNotFound",
    "JobFailedError",
    "MLStudioError",
    "NotFoundError",
    "ResourceGroup",
    "Run",
    "RunNotFound",
    "StoredLoginAuthentication",
    "Subscription",
    "ThrottledError",
    "TokenAuthentication",
    "UserErrorException",
    "ValidationError",
    "Workspace",
    "WorkspaceNotFound",
    "__version__",
]
