"""Serializers shared by the /api/v1 views of both apps."""

from __future__ import annotations

import re
from typing import Any, Literal

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from portal import validators
from portal.models import DeletionJob, Membership, Role, TokenScope
from portal.services import TOKEN_MAX_LIFETIME


class ErrorSerializer(serializers.Serializer):
    """Every error answer: MLflow-style code and a message for people."""

    error_code = serializers.CharField(
        help_text="What went wrong, for programs: INVALID_PARAMETER_VALUE, "
        "RESOURCE_DOES_NOT_EXIST, PERMISSION_DENIED, …"
    )
    message = serializers.CharField(help_text="What went wrong, for people.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A workspace deletion, under way",
            value={
                "id": "0b6a4c1e-5f0e-4a53-9d7e-2f1f4d1c9a10",
                "kind": "workspace",
                "label": "Research › rg-vision › ws-detection",
                "status": "running",
                "phase": "Deleting artifacts",
                "progress_done": 120,
                "progress_total": 480,
                "percent": 25,
                "is_finished": False,
                "error": "",
                "attempts": 1,
                "created_at": "2026-11-26T13:02:11Z",
                "started_at": "2026-11-26T13:02:12Z",
                "updated_at": "2026-11-26T13:02:40Z",
                "finished_at": None,
                "url": "https://mlstudio.example.com/api/v1/jobs/0b6a4c1e-5f0e-4a53-9d7e-2f1f4d1c9a10",
                "page_url": "https://mlstudio.example.com/jobs/0b6a4c1e-5f0e-4a53-9d7e-2f1f4d1c9a10/",
            },
            response_only=True,
            status_codes=["200", "202"],
        )
    ]
)
class DeletionJobSerializer(serializers.ModelSerializer):
    """A cascade deletion as a script follows it: poll `url` until status is final."""

    percent = serializers.IntegerField(read_only=True, help_text="0–100.")
    is_finished = serializers.BooleanField(
        read_only=True, help_text="True once `status` is succeeded or failed: stop polling."
    )
    url = serializers.SerializerMethodField(help_text="Where to poll this job (GET).")
    page_url = serializers.SerializerMethodField(help_text="The job's page, for a browser.")

    class Meta:
        model = DeletionJob
        fields = [
            "id",
            "kind",
            "label",
            "status",
            "phase",
            "progress_done",
            "progress_total",
            "percent",
            "is_finished",
            "error",
            "log",
            "attempts",
            "created_at",
            "started_at",
            "updated_at",
            "finished_at",
            "url",
            "page_url",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "label": {"help_text": "What is deleted, as a path in the tree."},
            "phase": {"help_text": "What the job is doing now, in words."},
            "progress_done": {"help_text": "Steps done, of `progress_total`."},
            "error": {"help_text": "Why the last attempt failed; empty while all goes well."},
            "log": {"help_text": "What the job did, a timestamped line per step (newest 64 KiB)."},
            "attempts": {
                "help_text": "Tries so far: a failing job is retried a few times on its own "
                "before its status becomes failed."
            },
        }

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_url(self, job: DeletionJob) -> str:
        return self._absolute(reverse("api-job", kwargs={"job_id": job.pk}))

    def get_page_url(self, job: DeletionJob) -> str:
        return self._absolute(reverse("deletion-job", kwargs={"job_id": job.pk}))


# --- Tenancy ------------------------------------------------------------------------------

ROLE_CHOICES = Role.values


class TextField(serializers.CharField):
    """Text only: DRF's CharField would turn 1 or true into "1" or "True"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TagsField(serializers.DictField):
    """Tags: names to text values (the services check names and counts)."""

    def __init__(self, **kwargs: Any) -> None:
        child = TextField(allow_blank=True, max_length=validators.MAX_TAG_VALUE)
        super().__init__(child=child, **kwargs)


class RoleField(serializers.ChoiceField):
    """The caller's effective role here (null when they only see it as a container)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ROLE_CHOICES, allow_null=True, read_only=True, **kwargs)


class ExpiresInField(serializers.IntegerField):
    """Seconds until a new token expires, up to TOKEN_MAX_LIFETIME; optional and nullable."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            min_value=1, max_value=TOKEN_MAX_LIFETIME, required=False, allow_null=True, **kwargs
        )


class LoginRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    token_name = serializers.CharField(max_length=100, required=False)
    expires_in = ExpiresInField(
        help_text="Seconds until the token expires; leave out for a token that does not."
    )


class LoginResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The secret: shown this once, never again.")
    id = serializers.UUIDField()
    name = serializers.CharField()
    username = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class UserTokenSerializer(serializers.Serializer):
    name = serializers.CharField()
    scope = serializers.ChoiceField(choices=TokenScope.values)
    workspace_id = serializers.UUIDField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class CurrentUserSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    is_staff = serializers.BooleanField()
    token = UserTokenSerializer(allow_null=True, help_text="The token of this request, if any.")


def _name_field(pattern: re.Pattern, rule: str, **kwargs: Any) -> serializers.RegexField:
    """A name with the pattern of portal.validators, so the schema tells clients (and
    fuzzers) what a valid one looks like, and a mismatch is answered with the rule in
    words; the services still check it."""
    return serializers.RegexField(pattern, error_messages={"invalid": rule}, **kwargs)


class SubscriptionSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = _name_field(
        validators.SUBSCRIPTION_NAME_RE, validators.SUBSCRIPTION_NAME_RULE, max_length=64
    )
    description = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    role = RoleField()
    created_at = serializers.DateTimeField(read_only=True)


class SubscriptionUpdateSerializer(serializers.Serializer):
    name = _name_field(
        validators.SUBSCRIPTION_NAME_RE,
        validators.SUBSCRIPTION_NAME_RULE,
        max_length=64,
        required=False,
    )
    description = serializers.CharField(max_length=2000, allow_blank=True, required=False)


class ResourceGroupSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = _name_field(
        validators.RESOURCE_GROUP_NAME_RE, validators.RESOURCE_GROUP_NAME_RULE, max_length=90
    )
    subscription_id = serializers.UUIDField(read_only=True)
    location = _name_field(
        validators.LOCATION_RE, validators.LOCATION_RULE, max_length=40, required=False
    )
    tags = TagsField(required=False)
    role = RoleField()
    created_at = serializers.DateTimeField(read_only=True)


class ResourceGroupUpdateSerializer(serializers.Serializer):
    tags = TagsField()


class WorkspaceDetailsSerializer(serializers.Serializer):
    """selectors.workspace_details and the caller's role; the camelCase keys are the
    reference service's, which SDK users already know."""

    id = serializers.CharField(help_text="The ARM-style id.")
    name = serializers.CharField()
    workspaceid = serializers.UUIDField()
    type = serializers.CharField()
    location = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    friendlyName = serializers.CharField()
    tags = TagsField()
    subscriptionId = serializers.UUIDField()
    subscriptionName = serializers.CharField()
    resourceGroup = serializers.CharField()
    creationTime = serializers.DateTimeField()
    createdBy = serializers.CharField(allow_null=True)
    storageAccount = serializers.CharField(help_text='"local", or the Blob container URL.')
    mlflowTrackingUri = serializers.URLField()
    provisioningState = serializers.CharField()
    role = RoleField()


class WorkspaceCreateSerializer(serializers.Serializer):
    name = _name_field(validators.WORKSPACE_NAME_RE, validators.WORKSPACE_NAME_RULE, max_length=33)
    description = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    friendly_name = serializers.CharField(max_length=100, allow_blank=True, required=False)
    location = _name_field(
        validators.LOCATION_RE,
        validators.LOCATION_RULE,
        max_length=40,
        required=False,
        help_text="Defaults to the resource group's location.",
    )
    tags = TagsField(required=False)


class WorkspaceUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    friendly_name = serializers.CharField(max_length=100, allow_blank=True, required=False)
    tags = TagsField(required=False)


class TrackingTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Set it as MLFLOW_TRACKING_TOKEN.")
    expires_at = serializers.DateTimeField()
    tracking_uri = serializers.URLField()


class MembershipSerializer(serializers.Serializer):
    """A grant that holds at a scope; `inherited` when it was made on a scope above."""

    id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=ROLE_CHOICES)
    scope = serializers.SerializerMethodField()
    inherited = serializers.SerializerMethodField()

    def get_scope(
        self, membership: Membership
    ) -> Literal["subscription", "resource_group", "workspace"]:
        if membership.subscription_id:
            return "subscription"
        return "resource_group" if membership.resource_group_id else "workspace"

    def get_inherited(self, membership: Membership) -> bool:
        return self.get_scope(membership) != self.context["scope_kind"]


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLE_CHOICES)


class TokenSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(max_length=100)
    prefix = serializers.CharField(read_only=True, help_text="The secret's first characters.")
    scope = serializers.ChoiceField(choices=TokenScope.values, read_only=True)
    workspace_id = serializers.UUIDField(allow_null=True, read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(allow_null=True, read_only=True)
    last_used_at = serializers.DateTimeField(allow_null=True, read_only=True)
    status = serializers.ChoiceField(choices=["active", "expired", "revoked"], read_only=True)


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(
        choices=TokenScope.values,
        required=False,
        help_text="Defaults to full, or to the scope of the token the request uses.",
    )
    workspace_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="Limit the token to this workspace."
    )
    expires_in = ExpiresInField(
        help_text="Seconds until it expires; leave out for a token that does not."
    )


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The secret: shown this once, never again.")
