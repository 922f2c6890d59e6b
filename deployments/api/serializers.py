"""Shapes of /api/v1 remote runs (docs/remote-runs.md, "The HTTP contract"): request
bodies are validated here (the services check them again, with the same rules);
answers are built by the selectors as plain data and written out through these."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments.models import ComputeTarget, Stage
from deployments.runtimes.k8s.target import SETTINGS as KUBERNETES_SETTINGS
from deployments.services import compute, environments, jobs, snapshots
from portal.api.pagination import paged_serializer
from tracking.api.serializers import RunStatusField, TextField

# Inline enums rather than components: `status` and `kind` fields of other apps must
# not collide with these in the schema's enum names.


@extend_schema_field({"type": "string", "enum": list(Stage.values)})
class StageField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Stage.values, **kwargs)


@extend_schema_field({"type": "string", "enum": list(ComputeTarget.Kind.values)})
class ComputeKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ComputeTarget.Kind.values, **kwargs)


def _text_map(**kwargs: Any) -> serializers.DictField:
    return serializers.DictField(child=TextField(allow_blank=True, trim_whitespace=False), **kwargs)


def _name_field(pattern: str, rule: str, **kwargs: Any) -> serializers.RegexField:
    """A name with its service's pattern, so the schema shows what a valid one looks like
    and a mismatch is answered with the rule in words."""
    return serializers.RegexField(pattern, error_messages={"invalid": rule}, **kwargs)


CREATED_BY = {"allow_null": True, "help_text": "Who made it; null for the system."}


# --- Compute targets ----------------------------------------------------------------------


class ComputeWorkerSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    slots = serializers.IntegerField(help_text="Jobs it runs at once.")
    version = serializers.CharField(allow_blank=True)
    last_seen = serializers.DateTimeField()
    alive = serializers.BooleanField(help_text="Seen within the last minute.")


class ComputeTargetSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = ComputeKindField()
    description = serializers.CharField(allow_blank=True)
    max_nodes = serializers.IntegerField(help_text="How many of its jobs run at once, at most.")
    is_local = serializers.BooleanField(help_text="The studio's own worker's target.")
    queue = serializers.CharField(help_text="The Celery queue its workers consume.")
    queued = serializers.IntegerField(help_text="Jobs waiting for a worker.")
    running = serializers.IntegerField(help_text="Jobs being run.")
    workers = ComputeWorkerSerializer(many=True, help_text="Workers seen in the last minutes.")
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(**CREATED_BY)
    config = serializers.DictField(
        help_text="A kubernetes target's settings (namespace, ingress, registry …); {} for others."
    )
    has_kubeconfig = serializers.BooleanField(
        help_text="Whether a kubeconfig is held (it is never shown)."
    )


class ComputeTargetListSerializer(serializers.Serializer):
    compute_targets = ComputeTargetSerializer(many=True)


def _max_nodes(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1, max_value=compute.MAX_NODES, help_text="1 to 100.", **kwargs
    )


class ComputeTargetCreateSerializer(serializers.Serializer):
    name = _name_field(compute.NAME_RE.pattern, compute.NAME_RULE, max_length=24)
    max_nodes = _max_nodes(default=1)
    description = TextField(max_length=500, allow_blank=True, default="")
    kind = ComputeKindField(
        default=ComputeTarget.Kind.CELERY,
        help_text="`celery` (remote runs, served by workers) or `kubernetes` (web services "
        "of compute type kubernetes run on its cluster).",
    )
    kubeconfig = TextField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        help_text="Kind kubernetes: the kubeconfig file's text, credentials inline (no "
        "`exec`/`auth-provider` plugins, no file paths). Stored encrypted, never shown.",
    )
    config = serializers.DictField(
        required=False,
        help_text="Kind kubernetes: settings: "
        + "; ".join(f"`{key}`: {text}" for key, text in KUBERNETES_SETTINGS.items()),
    )


class ComputeTargetUpdateSerializer(serializers.Serializer):
    max_nodes = _max_nodes(required=False)
    description = TextField(max_length=500, allow_blank=True, required=False)
    kubeconfig = TextField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        help_text="Kind kubernetes: a new kubeconfig file's text, credentials inline (no "
        "`exec`/`auth-provider` plugins, no file paths). Stored encrypted, never shown.",
    )
    config = serializers.DictField(
        required=False,
        help_text="Kind kubernetes: the settings, replaced whole: "
        + "; ".join(f"`{key}`: {text}" for key, text in KUBERNETES_SETTINGS.items()),
    )


# --- Environments -------------------------------------------------------------------------


class EnvironmentSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    python_version = serializers.CharField(
        allow_null=True, help_text="null: the worker's default Python."
    )
    pip_packages = serializers.ListField(child=serializers.CharField())
    env_vars = _text_map()
    description = serializers.CharField(allow_blank=True)
    spec_hash = serializers.CharField(help_text="Equal specs have equal hashes.")
    curated = serializers.BooleanField(help_text="Provided by the studio (`mlstudio-…`).")
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(**CREATED_BY)


class EnvironmentListSerializer(serializers.Serializer):
    environments = EnvironmentSerializer(many=True)


ENVIRONMENT_NAME_RULE = (
    "1 to 64 characters: letters, digits, '.', '_' and '-', starting with a letter or digit."
)


class EnvironmentRegisterSerializer(serializers.Serializer):
    name = _name_field(environments.NAME_RE.pattern, ENVIRONMENT_NAME_RULE, max_length=64)
    python_version = TextField(
        max_length=16,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="For example `3.11`; left out: the worker's default Python.",
    )
    pip_packages = serializers.ListField(
        child=TextField(max_length=1000),
        default=list,
        max_length=500,
        help_text="Requirements as pip takes them, e.g. `scikit-learn>=1.4`.",
    )
    env_vars = _text_map(default=dict, help_text="Environment variables of the script.")
    description = TextField(max_length=500, allow_blank=True, default="")


# --- Snapshots ----------------------------------------------------------------------------


class SnapshotStoredSerializer(serializers.Serializer):
    snapshot_hash = serializers.CharField(help_text="The zip's sha256.")
    size = serializers.IntegerField(help_text="Bytes of the zip.")
    files = serializers.IntegerField(help_text="How many files it holds.")


class SnapshotFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField(help_text="Bytes, uncompressed.")


class SnapshotFilesSerializer(serializers.Serializer):
    snapshot_hash = serializers.CharField()
    files = SnapshotFileSerializer(many=True)


# --- Remote runs (jobs) -------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {"$ref": "#/components/schemas/EnvironmentRegisterRequest"},
        ],
        "description": "An environment's name (its latest version), `name:version`, or a "
        "spec with a `name`, registered first as `POST environments` would.",
    }
)
class EnvironmentRefField(serializers.Field):
    """A name, "name:version", or an inline spec (validated as a registration)."""

    default_error_messages = {"invalid": "Must be a name, name:version, or a spec object."}

    def to_internal_value(self, data: Any) -> str | dict[str, Any]:
        if isinstance(data, str) and data:
            return data
        if isinstance(data, dict):
            spec = EnvironmentRegisterSerializer(data=data)
            spec.is_valid(raise_exception=True)
            return dict(spec.validated_data)
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}]})
class ArgumentField(serializers.Field):
    """A command-line argument: text, or a number (passed as its text)."""

    default_error_messages = {"invalid": "Each argument must be a string or a number."}

    def to_internal_value(self, data: Any) -> str | int | float:
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class JobSubmitSerializer(serializers.Serializer):
    experiment_name = TextField(max_length=500, help_text="Made if it does not exist.")
    script = TextField(max_length=500, help_text="A file of the snapshot, e.g. `train.py`.")
    arguments = serializers.ListField(
        child=ArgumentField(), default=list, max_length=jobs.MAX_ARGUMENTS
    )
    compute = TextField(max_length=100, default="local", help_text="A compute target's name.")
    environment = EnvironmentRefField()
    snapshot_hash = _name_field(
        snapshots.HASH_RE.pattern,
        "A snapshot hash is 64 lowercase hexadecimal characters.",
        help_text="The sha256 of an uploaded snapshot (`PUT snapshots/{sha256}`).",
    )
    max_run_duration_seconds = serializers.IntegerField(
        min_value=1, max_value=jobs.MAX_RUN_DURATION, default=86400
    )
    run_name = TextField(max_length=250, required=False, allow_blank=True)
    tags = _text_map(required=False, help_text="Tags of the MLflow run.")

    def validate_tags(self, tags: dict[str, str]) -> dict[str, str]:
        # DRF checks the values for NUL characters, not the keys.
        if any("\x00" in key for key in tags):
            raise serializers.ValidationError("NUL characters are not allowed in keys.")
        return tags


class JobEnvironmentSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()


class RemoteJobSerializer(serializers.Serializer):
    run_id = serializers.CharField(help_text="The MLflow run's id: the job's name.")
    experiment_id = serializers.CharField()
    experiment_name = serializers.CharField()
    run_name = serializers.CharField(allow_blank=True)
    compute = serializers.CharField()
    environment = JobEnvironmentSerializer()
    script = serializers.CharField()
    arguments = serializers.ListField(child=serializers.CharField(allow_blank=True))
    snapshot_hash = serializers.CharField()
    stage = StageField()
    status = StageField(help_text="The stage, again.")
    run_status = RunStatusField(help_text="The MLflow run's status.")
    exit_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    sandboxed = serializers.BooleanField(
        allow_null=True, help_text="Whether the script ran under bubblewrap; null until known."
    )
    cancel_requested = serializers.BooleanField()
    max_run_duration_seconds = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(**CREATED_BY)
    log_bytes = serializers.IntegerField(help_text="Bytes of the log so far.")
    url = serializers.URLField(help_text="The run's page.")


RemoteJobPageSerializer = paged_serializer("RemoteJobPage", RemoteJobSerializer)


class JobLogSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    offset = serializers.IntegerField(help_text="Where `text` starts, in bytes.")
    next_offset = serializers.IntegerField(help_text="Pass it as `offset` for what follows.")
    log_bytes = serializers.IntegerField(help_text="Bytes of the log so far.")
    ended = serializers.BooleanField(
        help_text="The job has ended: once `next_offset == log_bytes`, no more will come."
    )
