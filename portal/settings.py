"""ML Studio settings: one module, configured from environment variables.

Every value has an embedded default that runs the studio on one machine with no
other service (SQLite, local artifacts, a filesystem broker). Production sets
DEBUG=0 and then must provide SECRET_KEY and ALLOWED_HOSTS; bad values raise
ImproperlyConfigured at start-up rather than failing later.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.api.schema_text import API_TAGS, api_description

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Core -----------------------------------------------------------------

DATA_DIR = Path(env_str("DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

# The embedded default is a development install (as `make run` starts it);
# production sets DEBUG=0 explicitly, which turns on every secure default below.
DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        if not DEBUG and (len(key) < 50 or len(set(key)) < 5):
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 varied characters")
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
    # Development: generate once and keep it, so sessions survive restarts and
    # the web and worker processes agree on it.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if urlparse(_origin).scheme not in {"http", "https"}:
        raise ImproperlyConfigured(f"CSRF_TRUSTED_ORIGINS entries need a scheme: {_origin!r}")

# Public base URL used in tracking URIs printed outside a request (commands).
SITE_URL = env_str("SITE_URL").rstrip("/")
if SITE_URL and urlparse(SITE_URL).scheme not in {"http", "https"}:
    raise ImproperlyConfigured("SITE_URL must start with http:// or https://")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "portal",
    "tracking",
    "deployments",
]

MIDDLEWARE = [
    # Outermost: it must see the response last (portal/chunked.py).
    "portal.chunked.ChunkedBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.AuditContextMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'mlstudio.sqlite3'}"
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from exc
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web workers, Celery) write to the embedded database:
    # WAL lets readers run beside the writer, IMMEDIATE takes the write lock at
    # BEGIN so concurrent writers queue instead of failing with "locked".
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so worker processes started by tests see the test data;
    # named per process so two test runs in one checkout do not share it.
    _db["TEST"] = {"NAME": str(DATA_DIR / f"test-mlstudio-{os.getpid()}.sqlite3")}
elif _db["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must be a postgres:// or sqlite:// URL")
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Lifetime of the short-lived workspace tokens behind tracking URIs (seconds).
TRACKING_TOKEN_LIFETIME = env_int("TRACKING_TOKEN_LIFETIME", 3600, minimum=60)
# Seconds a token's identity and role in a workspace are remembered per process by the
# MLflow protocol (0 turns it off): revocations and role changes apply within this time.
ACCESS_CACHE_SECONDS = env_int("ACCESS_CACHE_SECONDS", 5, minimum=0)

# --- Internationalisation / static ----------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Artifacts ------------------------------------------------------------

# A local folder, or an Azure Blob container URL (+ optional prefix):
# https://<account>.blob.core.windows.net/<container>[/<prefix>]. Plain http is for
# Azurite on a development machine (http://127.0.0.1:10000/devstoreaccount1/<container>).
# Each workspace gets `<ARTIFACT_ROOT>/<workspace id>`.
ARTIFACT_ROOT = env_str("ARTIFACT_ROOT") or str(DATA_DIR / "artifacts")
_artifact_url = urlparse(ARTIFACT_ROOT)
if _artifact_url.scheme in {"", "file"}:
    ARTIFACT_ROOT = str(Path(_artifact_url.path if _artifact_url.scheme else ARTIFACT_ROOT))
    if not Path(ARTIFACT_ROOT).is_absolute():
        ARTIFACT_ROOT = str((BASE_DIR / ARTIFACT_ROOT).resolve())
elif _artifact_url.scheme in {"http", "https"}:
    if not _artifact_url.hostname or _artifact_url.username or _artifact_url.password:
        raise ImproperlyConfigured("ARTIFACT_ROOT must be a Blob container URL with a host")
    # Host style (<account>.blob.<suffix>/<container>) or path style, as Azurite
    # serves it (<host>:<port>/<account>/<container>).
    _blob_segments = [s for s in _artifact_url.path.split("/") if s]
    if len(_blob_segments) < (1 if ".blob." in _artifact_url.hostname else 2):
        raise ImproperlyConfigured("ARTIFACT_ROOT must be a Blob URL that names a container")
    _loopback = _artifact_url.hostname in {"localhost", "127.0.0.1", "::1"}
    if _artifact_url.scheme == "http" and not (DEBUG or _loopback):
        raise ImproperlyConfigured(
            "ARTIFACT_ROOT must be an https:// Blob URL in production (http is for Azurite)"
        )
    ARTIFACT_ROOT = ARTIFACT_ROOT.rstrip("/")
else:
    raise ImproperlyConfigured(
        "ARTIFACT_ROOT must be a local folder or an http(s):// Blob container URL"
    )

# Credentials for Blob artifact roots: a connection string (account key or SAS), else
# DefaultAzureCredential (managed identity, environment, Azure CLI). A SAS in the
# ARTIFACT_ROOT query string takes precedence over both.
AZURE_STORAGE_CONNECTION_STRING = env_str("AZURE_STORAGE_CONNECTION_STRING")

# The largest artifact one upload may send (bytes); larger ones are refused with 413.
ARTIFACT_MAX_UPLOAD_BYTES = env_int("ARTIFACT_MAX_UPLOAD_BYTES", 5 * 1024**3, minimum=1)

# --- Celery ---------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or (
    REDIS_URL or f"file://{DATA_DIR / 'celery' / 'results'}"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The serverless default: web and worker processes share a queue folder.
    _queue_dir = DATA_DIR / "celery" / "queue"
    _control_dir = DATA_DIR / "celery" / "control"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    _control_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
        "polling_interval": 0.2,
    }
if CELERY_RESULT_BACKEND.startswith("file://"):
    (DATA_DIR / "celery" / "results").mkdir(parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# The queue of every workspace's `local` compute target, which the compute worker
# `make run` starts consumes (with COMPUTE_LOCAL_SLOTS jobs at once). Other targets get
# `compute-<id>`, consumed by the workers that joined them.
COMPUTE_LOCAL_QUEUE = env_str("COMPUTE_LOCAL_QUEUE", "compute-local")
COMPUTE_LOCAL_SLOTS = env_int("COMPUTE_LOCAL_SLOTS", 2, minimum=1)
# Images (`build_image`): the base image a build context's Dockerfile starts FROM (the
# offline one scripts/build_base_image.sh makes), whether to build container images
# (DOCKER_ENABLED: auto = when an engine answers at DOCKER_HOST or the local socket, 0 =
# never, 1 = an engine is required), a registry to push them to (none: kept local), and
# where the images' uv environments are cached (the runner's cache; DATA_DIR/envs).
IMAGE_BASE = env_str("IMAGE_BASE", "mlstudio/python:3.11-bookworm")
DOCKER_ENABLED = env_str("DOCKER_ENABLED", "auto")
IMAGE_REGISTRY = env_str("IMAGE_REGISTRY", "")
IMAGE_ENV_CACHE_DIR = env_str("IMAGE_ENV_CACHE_DIR") or str(DATA_DIR / "envs")
IMAGE_UV_CACHE_DIR = env_str("IMAGE_UV_CACHE_DIR", "")
# Web services of the local runtime (`manage.py service_host`, which `make run` starts):
# the host name in their scoring URIs, the address their public ports listen on, and how
# long a deployment waits for a new instance to answer /health.
SERVICE_HOST_ADDRESS = env_str("SERVICE_HOST_ADDRESS", "127.0.0.1")
SERVICE_BIND_ADDRESS = env_str("SERVICE_BIND_ADDRESS", "127.0.0.1")
SERVICE_DEPLOY_TIMEOUT = env_int("SERVICE_DEPLOY_TIMEOUT", 300, minimum=10)
# Web service telemetry: per-minute rollups are kept MONITORING_RETENTION_DAYS, sampled
# requests (inputs and outputs, the drift monitor's windows) MONITORING_SAMPLE_RETENTION_DAYS;
# an hourly beat task deletes older rows. A telemetry batch larger than
# MONITORING_TELEMETRY_MAX_BYTES is refused (413) rather than read.
MONITORING_RETENTION_DAYS = env_int("MONITORING_RETENTION_DAYS", 90, minimum=1)
MONITORING_SAMPLE_RETENTION_DAYS = env_int("MONITORING_SAMPLE_RETENTION_DAYS", 30, minimum=1)
MONITORING_TELEMETRY_MAX_BYTES = env_int(
    "MONITORING_TELEMETRY_MAX_BYTES", 4 * 1024 * 1024, minimum=64 * 1024
)
CELERY_BEAT_SCHEDULE = {
    "purge-expired-tokens": {"task": "portal.tasks.purge_expired_tokens", "schedule": 3600.0},
    "monitoring-retention": {"task": "deployments.tasks.monitoring_retention", "schedule": 3600.0},
}
# Seconds between sweeps that compute each enabled drift monitor's ended windows (the
# task is the deployments app's, named here as a string: portal imports no app).
DRIFT_SCHEDULE_SECONDS = env_int("DRIFT_SCHEDULE_SECONDS", 3600, minimum=10)
CELERY_BEAT_SCHEDULE["drift-monitors"] = {
    "task": "deployments.drift_schedule",
    "schedule": float(DRIFT_SCHEDULE_SECONDS),
}

# --- Email (drift alerts) -------------------------------------------------
# The console backend by default (alerts are printed to the worker's log); set
# EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST & co for SMTP.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "mlstudio@localhost")

# --- REST framework -------------------------------------------------------

# Requests per token (or per user for browser sessions, per address for anonymous
# calls) on /api/v1, as DRF writes rates: "1200/min", "50/second", "10000/hour".
_RATE_RE = re.compile(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)")
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "1200/min")
if API_THROTTLE_RATE and not _RATE_RE.fullmatch(API_THROTTLE_RATE):
    raise ImproperlyConfigured(
        f"API_THROTTLE_RATE must look like 1200/min or 20/second, not {API_THROTTLE_RATE!r}"
    )
# Attempts per client address at POST /api/v1/login, so passwords cannot be guessed at
# speed; the same format.
API_LOGIN_THROTTLE_RATE = env_str("API_LOGIN_THROTTLE_RATE", "10/min")
if not _RATE_RE.fullmatch(API_LOGIN_THROTTLE_RATE):
    raise ImproperlyConfigured(
        f"API_LOGIN_THROTTLE_RATE must look like 10/min, not {API_LOGIN_THROTTLE_RATE!r}"
    )
# Items per page on /api/v1 lists unless the caller asks (?page_size=, up to the max).
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 100, minimum=1)
API_MAX_PAGE_SIZE = 1000

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["portal.api.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.AutoSchema",
    # The throttles read API_THROTTLE_RATE / API_LOGIN_THROTTLE_RATE themselves (get_rate).
    "DEFAULT_THROTTLE_CLASSES": ["portal.api.throttles.TokenRateThrottle"],
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ML Studio API",
    "DESCRIPTION": api_description(
        page_size=API_PAGE_SIZE,
        max_page_size=API_MAX_PAGE_SIZE,
        throttle_rate=API_THROTTLE_RATE,
        login_throttle_rate=API_LOGIN_THROTTLE_RATE,
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Tags in reading order (Swagger UI and Redoc follow it), operations in the order of
    # the URL patterns (list, create, get, update, delete, then the actions), and
    # parameters in the order the views declare them (path first, in path order).
    "TAGS": API_TAGS,
    "SORT_OPERATIONS": False,
    "SORT_OPERATION_PARAMETERS": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share a field name get stable component names.
    "ENUM_NAME_OVERRIDES": {
        "DeletionJobStatusEnum": "portal.models.DeletionJob.Status",
        "TokenStatusEnum": ["active", "expired", "revoked"],
        "TokenScopeEnum": ["read", "write", "full"],
        "MembershipScopeEnum": ["subscription", "resource_group", "workspace"],
        "RoleEnum": ["owner", "contributor", "reader"],
        "ComputeKindEnum": ["celery", "kubernetes"],
        "ImageStateEnum": ["NotStarted", "Running", "Succeeded", "Failed"],
        "RemoteJobStageEnum": [
            "queued",
            "preparing",
            "running",
            "finalizing",
            "completed",
            "failed",
            "canceled",
        ],
        "RunStatusEnum": ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"],
    },
    # Names in paths (portal.api.urls converters) are documented with their pattern, so
    # clients and fuzzers know what a valid one looks like.
    "PATH_CONVERTER_OVERRIDES": {
        "scope_name": {"type": "string", "pattern": r"^[-\w.()]+$"},
        "username": {"type": "string", "pattern": r"^[\w.@+-]+$"},
    },
    # Swagger UI and Redoc come from the drf-spectacular-sidecar package: our own static
    # files, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {
        "deepLinking": True,
        "docExpansion": "list",
        "defaultModelsExpandDepth": 0,  # the schemas at the bottom start folded
        "filter": True,  # a box to filter operations by tag
    },
    # Success answers open; fields in the serializers' order (requiredPropsFirst would sort
    # them by name); paths in the right panel, where the long ones wrap instead of being cut.
    "REDOC_UI_SETTINGS": {"expandResponses": "200,201,202,204"},
}

# The throttle's counters: Redis when there is one (shared by every web process), else
# this process's memory.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Security (production defaults; every one can be relaxed explicitly) ---

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health checks and the MLflow API must answer plain HTTP probes from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, minimum=1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The Azure SDK logs every storage request at INFO.
        "azure": {"level": "WARNING"},
    },
}
