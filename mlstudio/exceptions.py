"""Exceptions the SDK raises instead of raw HTTP errors.

Every error the server reports carries its MLflow-style ``error_code`` (for example
``RESOURCE_DOES_NOT_EXIST``), the server's ``message`` and the HTTP ``status_code``.
Catch :class:`MLStudioError` to handle them all.
"""

from __future__ import annotations

import builtins


class MLStudioError(Exception):
    """Base class of every error raised by the ML Studio SDK.

    Attributes:
        message: A human readable explanation, as the server wrote it when it came from one.
        error_code: The server's error code (``INVALID_PARAMETER_VALUE``, ...), or None.
        status_code: The HTTP status of the failed request, or None.
    """

    default_code: str | None = None

    def __init__(
        self, message: str, *, error_code: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code or self.default_code
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class UserErrorException(MLStudioError):
    """The caller's input or local setup is wrong (the reference SDK's name for it)."""


class ConfigurationError(UserErrorException):
    """No usable configuration: config.json not found or incomplete, no server URL."""


class AuthenticationError(MLStudioError):
    """No credential, or the server refused it (HTTP 401): log in again or set MLSTUDIO_TOKEN."""

    default_code = "UNAUTHENTICATED"


class AuthorizationError(MLStudioError, builtins.PermissionError):
    """The credential is valid but its role or scope does not allow the action (HTTP 403)."""

    default_code = "PERMISSION_DENIED"


class NotFoundError(MLStudioError, LookupError):
    """The object does not exist or the caller cannot see it (HTTP 404)."""

    default_code = "RESOURCE_DOES_NOT_EXIST"


class SubscriptionNotFound(NotFoundError):
    """No visible subscription with that id."""


class ResourceGroupNotFound(NotFoundError):
    """No visible resource group with that name in the subscription."""


class WorkspaceNotFound(NotFoundError):
    """No visible workspace with that name."""


class ExperimentNotFound(NotFoundError):
    """No active experiment with that name or id in the workspace."""


class RunNotFound(NotFoundError):
    """No run with that id in the workspace."""


class EnvironmentNotFound(NotFoundError):
    """No environment (or version of it) with that name in the workspace."""


class ComputeTargetNotFound(NotFoundError):
    """No compute target with that name in the workspace."""


class ValidationError(UserErrorException, ValueError):
    """The server rejected a value: a bad name, an out-of-range number (HTTP 400)."""

    default_code = "INVALID_PARAMETER_VALUE"


class ConflictError(ValidationError):
    """The object already exists, or its state forbids the action (RESOURCE_ALREADY_EXISTS)."""

    default_code = "RESOURCE_ALREADY_EXISTS"


AlreadyExists = ConflictError


class ThrottledError(MLStudioError):
    """Too many requests (HTTP 429), still refused after the SDK's retries.

    Attributes:
        retry_after: Seconds the server asked to wait, when it said.
    """

    default_code = "REQUEST_LIMIT_EXCEEDED"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(MLStudioError):
    """The server failed (HTTP 5xx) or answered something that is not the API."""

    default_code = "INTERNAL_ERROR"


class ServiceUnavailableError(ServerError):
    """The server could not be reached (connection refused, DNS, timeout)."""


class JobFailedError(MLStudioError):
    """A long-running server job (a cascade deletion) ended in failure.

    Attributes:
        job: The job's final state as the server reported it.
    """

    def __init__(self, message: str, *, job: dict, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.job = job


class RunFailedError(JobFailedError):
    """A remote run ended Failed (``run.wait_for_completion`` raises it).

    The message holds the studio's error (the script's exit code and the tail of its
    output); ``job`` is the run's final job record (stage, exit_code, error, url, ...).
    """


# The reference SDK's name for it (azureml.exceptions.ActivityFailedException).
ActivityFailedException = RunFailedError


class WebserviceException(MLStudioError):
    """A web service operation failed: a deployment ended Failed or Unhealthy, waiting
    timed out, or the service answered a scoring request with an error (the reference
    SDK's azureml.exceptions.WebserviceException).

    Attributes:
        logs: The tail of the service's logs, when the failure was a deployment's.
    """

    def __init__(self, message: str, *, logs: str | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.logs = logs


class WebserviceNotFound(NotFoundError, WebserviceException):
    """No web service with that name in the workspace (a WebserviceException too, so the
    reference's ``except WebserviceException`` around ``Webservice(ws, name)`` works)."""


_BY_STATUS: dict[int, type[MLStudioError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: AuthorizationError,
    404: NotFoundError,
    429: ThrottledError,
}


def error_for(
    status_code: int,
    error_code: str | None,
    message: str,
    not_found: type[NotFoundError] = NotFoundError,
) -> MLStudioError:
    """The exception for a failed response: by error code first, then by HTTP status.

    The server sends RESOURCE_ALREADY_EXISTS with status 400 (MLflow's convention), so the
    code decides before the status does.
    """
    if error_code == "RESOURCE_ALREADY_EXISTS":
        cls: type[MLStudioError] = ConflictError
    elif status_code == 404 or error_code == "RESOURCE_DOES_NOT_EXIST":
        cls = not_found
    elif status_code >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status_code, MLStudioError)
    return cls(message, error_code=error_code, status_code=status_code)
