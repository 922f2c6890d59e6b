"""Name and tag rules, modelled on Azure's resource naming rules.

Each validator raises django.core.exceptions.ValidationError with a message a
person can act on; forms, serializers and services all use these.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

SUBSCRIPTION_NAME_RE = re.compile(r"^[\w][\w .()-]{0,63}$")
RESOURCE_GROUP_NAME_RE = re.compile(r"^[-\w.()]{1,90}$")
WORKSPACE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$")
LOCATION_RE = re.compile(r"^[a-z][a-z0-9]{0,39}$")
TAG_KEY_FORBIDDEN = set("<>%&\\?/")
MAX_TAGS = 50
MAX_TAG_KEY = 512
MAX_TAG_VALUE = 256

# What each rule says to a person who broke it (forms, API field errors, services).
SUBSCRIPTION_NAME_RULE = (
    "A subscription name has 1 to 64 letters, digits, spaces, periods, hyphens, "
    "underscores or parentheses; it starts with a letter or digit and does not "
    "end with a space or period."
)
RESOURCE_GROUP_NAME_RULE = (
    "A resource group name has 1 to 90 letters, digits, periods, hyphens, "
    "underscores or parentheses, and does not end with a period."
)
WORKSPACE_NAME_RULE = (
    "A workspace name has 3 to 33 letters, digits, hyphens or underscores, "
    "and starts with a letter or digit."
)
LOCATION_RULE = (
    "A location is a lowercase word of letters and digits, such as 'local' or 'westeurope'."
)


def validate_subscription_name(value: str) -> None:
    if not SUBSCRIPTION_NAME_RE.fullmatch(value) or value.endswith((" ", ".")):
        raise ValidationError(
            SUBSCRIPTION_NAME_RULE,
            code="invalid_name",
        )


def validate_resource_group_name(value: str) -> None:
    if not RESOURCE_GROUP_NAME_RE.fullmatch(value) or value.endswith("."):
        raise ValidationError(
            RESOURCE_GROUP_NAME_RULE,
            code="invalid_name",
        )


def validate_workspace_name(value: str) -> None:
    if not WORKSPACE_NAME_RE.fullmatch(value):
        raise ValidationError(
            WORKSPACE_NAME_RULE,
            code="invalid_name",
        )


def validate_location(value: str) -> None:
    if not LOCATION_RE.fullmatch(value):
        raise ValidationError(
            LOCATION_RULE,
            code="invalid_location",
        )


def validate_tags(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Tags are a mapping of names to values.", code="invalid_tags")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags are allowed.", code="invalid_tags")
    for key, tag_value in value.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_TAG_KEY:
            raise ValidationError(
                f"Tag names have 1 to {MAX_TAG_KEY} characters.", code="invalid_tags"
            )
        if TAG_KEY_FORBIDDEN & set(key):
            raise ValidationError(
                f"Tag name {key!r} contains one of the characters < > % & \\ ? /",
                code="invalid_tags",
            )
        if not isinstance(tag_value, str) or len(tag_value) > MAX_TAG_VALUE:
            raise ValidationError(
                f"Tag {key!r}: values are text of at most {MAX_TAG_VALUE} characters.",
                code="invalid_tags",
            )
        if not _storable(key) or not _storable(tag_value):
            raise ValidationError(
                "Tags are plain text: no NUL characters or unpaired surrogates.",
                code="invalid_tags",
            )


def _storable(text: str) -> bool:
    """Whether PostgreSQL can store the text in JSON (SQLite would take anything)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_tags(text: str) -> dict[str, str]:
    """Parse `key=value` lines (as the forms take them) into a tag mapping."""
    tags: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError(
                f"Line {number}: write each tag as name=value.", code="invalid_tags"
            )
        tags[key.strip()] = value.strip()
    validate_tags(tags)
    return tags


def format_tags(tags: dict[str, str]) -> str:
    return "\n".join(f"{key}={value}" for key, value in sorted(tags.items()))
