"""Shapes of /api/v1 tracking: request bodies are validated here; responses are built in
bulk by the views (no per-row queries) and these serializers document them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.api.pagination import paged_serializer
from tracking.models import LifecycleStage, RunStatus

# Inline enums rather than components: another app's `status` field must not collide
# with these in the schema's enum names.


@extend_schema_field({"type": "string", "enum": list(RunStatus.values)})
class RunStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=RunStatus.values, **kwargs)


@extend_schema_field({"type": "string", "enum": list(LifecycleStage.values)})
class LifecycleStageField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=LifecycleStage.values, **kwargs)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "format": "double"},
            {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]},
        ],
        "description": 'A number, or "NaN", "Infinity" or "-Infinity" (as MLflow writes them).',
    }
)
class MetricValueField(serializers.Field):
    """Read-only: values arrive already rendered by tracking.mlflow.protocol.json_float."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> Any:
        return value


class TextField(serializers.CharField):
    """Text only: DRF's CharField would take 5 or true and store their str()."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _tags_field(**kwargs: Any) -> serializers.DictField:
    return serializers.DictField(child=TextField(allow_blank=True, trim_whitespace=False), **kwargs)


# --- Experiments ---------------------------------------------------------------------------


class ExperimentSerializer(serializers.Serializer):
    experiment_id = serializers.CharField()
    name = serializers.CharField()
    artifact_location = serializers.CharField()
    lifecycle_stage = LifecycleStageField()
    creation_time = serializers.IntegerField(help_text="Milliseconds since the epoch.")
    last_update_time = serializers.IntegerField(help_text="Milliseconds since the epoch.")
    tags = _tags_field()


class ExperimentCreateSerializer(serializers.Serializer):
    name = TextField(max_length=500)
    tags = _tags_field(required=False)


class ExperimentUpdateSerializer(serializers.Serializer):
    name = TextField(max_length=500, required=False)


ExperimentPageSerializer = paged_serializer("ExperimentPage", ExperimentSerializer)


# --- Runs ----------------------------------------------------------------------------------


class MetricSummarySerializer(serializers.Serializer):
    value = MetricValueField()
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField(help_text="Milliseconds since the epoch.")


class RunSerializer(serializers.Serializer):
    run_id = serializers.CharField()
    run_name = serializers.CharField(allow_blank=True)
    experiment_id = serializers.CharField()
    status = RunStatusField()
    start_time = serializers.IntegerField(allow_null=True)
    end_time = serializers.IntegerField(allow_null=True)
    lifecycle_stage = LifecycleStageField()
    user_id = serializers.CharField(allow_blank=True)
    artifact_uri = serializers.CharField(allow_blank=True)
    params = _tags_field()
    tags = _tags_field()
    metrics = serializers.DictField(
        child=MetricSummarySerializer(), help_text="The latest value of each metric, by key."
    )


class RunUpdateSerializer(serializers.Serializer):
    run_name = TextField(max_length=250, required=False)
    status = RunStatusField(required=False)


RunPageSerializer = paged_serializer("RunPage", RunSerializer)


# --- Metrics -------------------------------------------------------------------------------


class MetricSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = MetricValueField()
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField()


class MetricPointSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField()
    value = MetricValueField()


MetricHistoryPageSerializer = paged_serializer("MetricHistoryPage", MetricPointSerializer)


class SampledHistorySerializer(serializers.Serializer):
    key = serializers.CharField()
    points = MetricPointSerializer(many=True)


# --- Artifacts -----------------------------------------------------------------------------


class ArtifactFileSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Relative to the run's artifact root.")
    is_dir = serializers.BooleanField()
    file_size = serializers.IntegerField(allow_null=True, help_text="null for folders.")


class ArtifactListSerializer(serializers.Serializer):
    path = serializers.CharField(allow_blank=True, help_text='The listed folder ("" for the root).')
    files = ArtifactFileSerializer(many=True)
