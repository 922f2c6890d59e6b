"""Shapes of /api/v1 web services (docs/deployments.md, "The HTTP contract").

Request bodies are checked here for their types; the services check the values again
(name rule, image state, configuration ranges). Answers are built as plain data by
`service_data` and written out through these. The service's shape never holds a key or
a token: those have their own routes, closed to readers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments.models import DeploymentJob, WebService
from tracking.api.serializers import TextField

SERVICE_NAME_RULE = (
    "A service name has 3 to 32 lowercase letters, digits and dashes, starts with a "
    "letter and does not end with a dash."
)
SERVICE_NAME_PATTERN = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
KEY_CHOICES = ("Primary", "Secondary")
MAX_LOG_LINES = 50_000


@extend_schema_field({"type": "string", "enum": list(WebService.ComputeType.values)})
class ComputeTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=WebService.ComputeType.values, **kwargs)


@extend_schema_field({"type": "string", "enum": list(WebService.State.values)})
class ServiceStateField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=WebService.State.values, **kwargs)


def _text_map(**kwargs: Any) -> serializers.DictField:
    return serializers.DictField(child=TextField(allow_blank=True, trim_whitespace=False), **kwargs)


CONFIG_HELP = (
    "Resources and scaling: `cpu_cores`, `memory_gb` (aci, local, kubernetes); `port` "
    "(local); `autoscale_enabled`, `autoscale_min_replicas`, `autoscale_max_replicas`, "
    "`autoscale_refresh_seconds`, `autoscale_target_utilization`, `num_replicas`, "
    "`namespace` (kubernetes)."
)


# --- Answers --------------------------------------------------------------------------------


class DeploymentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    operation = serializers.ChoiceField(choices=DeploymentJob.Operation.values)
    status = serializers.CharField(help_text="queued, running, succeeded or failed.")
    phase = serializers.CharField(allow_blank=True, help_text="What it is doing, in words.")
    percent = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    image = serializers.CharField(allow_null=True, help_text="The image rolled out, name:version.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ModelRefSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)


class ServiceSerializer(serializers.Serializer):
    name = serializers.CharField()
    compute_type = ComputeTypeField(
        help_text="`aci` and `local` run on the studio's local runtime, `kubernetes` on a "
        "compute target of kind kubernetes."
    )
    compute_target = serializers.CharField(allow_null=True)
    image = serializers.CharField(help_text="The image served, name:version.")
    image_name = serializers.CharField()
    image_version = serializers.IntegerField()
    model = ModelRefSerializer(help_text="The registered model version the image holds.")
    state = ServiceStateField()
    error = serializers.CharField(allow_blank=True, help_text="Why it failed, when it did.")
    scoring_uri = serializers.CharField(allow_null=True, help_text="POST scoring requests here.")
    swagger_uri = serializers.CharField(allow_null=True, help_text="Its OpenAPI document.")
    auth_enabled = serializers.BooleanField(help_text="Whether scoring needs a key or token.")
    description = serializers.CharField(allow_blank=True)
    tags = _text_map()
    properties = _text_map()
    config = serializers.DictField(help_text=CONFIG_HELP)
    deployment = DeploymentSerializer(
        allow_null=True, help_text="The latest create, update or delete job."
    )
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField()


class ServiceListSerializer(serializers.Serializer):
    services = ServiceSerializer(many=True)


class ServiceKeysSerializer(serializers.Serializer):
    primary_key = serializers.CharField()
    secondary_key = serializers.CharField()


class ServiceTokenSerializer(serializers.Serializer):
    access_token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`.")
    token_type = serializers.CharField(default="Bearer")
    refresh_by = serializers.IntegerField(
        help_text="Seconds since the epoch after which the token no longer works."
    )


class ServiceLogsSerializer(serializers.Serializer):
    logs = serializers.CharField(allow_blank=True, trim_whitespace=False)


# --- Requests -------------------------------------------------------------------------------


class ServiceDeploySerializer(serializers.Serializer):
    name = serializers.RegexField(
        SERVICE_NAME_PATTERN,
        max_length=32,
        error_messages={"invalid": SERVICE_NAME_RULE},
        help_text=SERVICE_NAME_RULE,
    )
    image = TextField(
        max_length=100,
        help_text="The image to serve: `name:version`, or `name` for its newest version.",
    )
    compute_type = ComputeTypeField(default=WebService.ComputeType.ACI)
    compute_target = TextField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="A compute target of kind kubernetes; only for `kubernetes`.",
    )
    config = serializers.DictField(required=False, default=dict, help_text=CONFIG_HELP)
    description = TextField(required=False, default="", allow_blank=True, max_length=500)
    tags = _text_map(required=False, default=dict)
    properties = _text_map(required=False, default=dict)
    auth_enabled = serializers.BooleanField(required=False, default=True)


class ServiceUpdateSerializer(serializers.Serializer):
    image = TextField(
        required=False,
        max_length=100,
        help_text="Roll this image out (`name:version` or `name`) without downtime.",
    )
    config = serializers.DictField(
        required=False, help_text=CONFIG_HELP + " A change rolls out as a new image does."
    )
    description = TextField(required=False, allow_blank=True, max_length=500)
    tags = _text_map(required=False, help_text="Replaces the tags.")
    properties = _text_map(required=False, help_text="Replaces the properties.")
    auth_enabled = serializers.BooleanField(required=False)


class RegenKeySerializer(serializers.Serializer):
    key = serializers.ChoiceField(
        choices=KEY_CHOICES, help_text="Which key to replace with a new random one."
    )
