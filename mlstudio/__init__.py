"""ML Studio's Python SDK and CLI.

It talks to a studio over HTTP only and never imports Django, so it installs on its own
wherever a data scientist works (``pip install mlstudio``). It mirrors the reference
service's SDK::

    import mlflow
    from mlstudio import Workspace

    ws = Workspace.from_config()
    mlflow.set_tracking_uri(ws.get_mlflow_tracking_uri())

and runs scripts on the studio's compute targets::

    from mlstudio import Environment, Experiment, ScriptRunConfig

    src = ScriptRunConfig(source_directory="./train", script="train.py")
    src.run_config.environment = Environment.get(ws, "mlstudio-sklearn")
    run = Experiment(ws, "my_experiment").submit(src)
    run.wait_for_completion(show_output=True)
"""

from mlstudio._client.renewal import set_auth_provider_installer as _set_auth_provider_installer
from mlstudio._version import __version__
from mlstudio.auth import (
    DefaultAuthentication,
    EnvironmentAuthentication,
    StoredLoginAuthentication,
    TokenAuthentication,
)
from mlstudio.compute import AmlCompute, ComputeTarget
from mlstudio.conda_dependencies import CondaDependencies
from mlstudio.environment import Environment
from mlstudio.exceptions import (
    ActivityFailedException,
    AuthenticationError,
    AuthorizationError,
    ComputeTargetNotFound,
    ConfigurationError,
    ConflictError,
    EnvironmentNotFound,
    ExperimentNotFound,
    JobFailedError,
    MLStudioError,
    NotFoundError,
    RunFailedError,
    RunNotFound,
    ThrottledError,
    UserErrorException,
    ValidationError,
    WebserviceException,
    WebserviceNotFound,
    WorkspaceNotFound,
)
from mlstudio.experiment import Experiment
from mlstudio.run import Run
from mlstudio.scopes import ResourceGroup, Subscription
from mlstudio.script_run_config import RunConfiguration, ScriptRunConfig
from mlstudio.workspace import Workspace


def _register_mlflow_auth_provider() -> bool:
    # Imported on first use, not with the SDK: mlflow_plugin imports mlflow (optional, slow).
    from mlstudio.mlflow_plugin import ensure_registered

    return ensure_registered()


# Workspace.get_mlflow_tracking_uri() runs this; the workspace stands below the plugin.
_set_auth_provider_installer(_register_mlflow_auth_provider)

__all__ = [
    "ActivityFailedException",
    "AmlCompute",
    "AuthenticationError",
    "AuthorizationError",
    "ComputeTarget",
    "ComputeTargetNotFound",
    "CondaDependencies",
    "ConfigurationError",
    "ConflictError",
    "DefaultAuthentication",
    "Environment",
    "EnvironmentAuthentication",
    "EnvironmentNotFound",
    "Experiment",
    "ExperimentNotFound",
    "JobFailedError",
    "MLStudioError",
    "NotFoundError",
    "ResourceGroup",
    "Run",
    "RunConfiguration",
    "RunFailedError",
    "RunNotFound",
    "ScriptRunConfig",
    "StoredLoginAuthentication",
    "Subscription",
    "ThrottledError",
    "TokenAuthentication",
    "UserErrorException",
    "ValidationError",
    "WebserviceException",
    "WebserviceNotFound",
    "Workspace",
    "WorkspaceNotFound",
    "__version__",
]
