"""Page forms. They check shape; services check rules and uniqueness."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from portal import validators
from portal.models import Role, TokenScope


class TagsField(forms.CharField):
    """Tags typed as name=value lines."""

    widget = forms.Textarea(attrs={"rows": 3, "placeholder": "team=vision\ncost-center=42"})

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "One name=value pair per line.")
        super().__init__(**kwargs)

    def prepare_value(self, value: object) -> object:
        return validators.format_tags(value) if isinstance(value, dict) else value

    def clean(self, value: str) -> dict[str, str]:
        return validators.parse_tags(super().clean(value) or "")


class SubscriptionForm(forms.Form):
    name = forms.CharField(max_length=64, validators=[validators.validate_subscription_name])
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


class ResourceGroupForm(forms.Form):
    name = forms.CharField(max_length=90, validators=[validators.validate_resource_group_name])
    location = forms.CharField(
        max_length=40, initial="local", validators=[validators.validate_location]
    )
    tags = TagsField()


class ResourceGroupEditForm(forms.Form):
    tags = TagsField()


class WorkspaceForm(forms.Form):
    name = forms.CharField(
        max_length=33,
        validators=[validators.validate_workspace_name],
        help_text="3–33 letters, digits, hyphens or underscores. It cannot be changed later.",
    )
    friendly_name = forms.CharField(required=False, max_length=100, label="Display name")
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    location = forms.CharField(
        required=False,
        max_length=40,
        validators=[validators.validate_location],
        help_text="Defaults to the resource group's location.",
    )
    tags = TagsField()


class WorkspaceEditForm(forms.Form):
    friendly_name = forms.CharField(required=False, max_length=100, label="Display name")
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    tags = TagsField()


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, label="User name or e-mail")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.READER)

    def clean_username(self) -> object:
        value = self.cleaned_data["username"].strip()
        users = get_user_model().objects.filter(is_active=True)
        user = users.filter(username=value).first() or (
            users.filter(email__iexact=value).first() if "@" in value else None
        )
        if user is None:
            raise forms.ValidationError("No active user has that name or e-mail.")
        return user


class RoleChangeForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


EXPIRY_CHOICES = [
    ("604800", "7 days"),
    ("2592000", "30 days"),
    ("7776000", "90 days"),
    ("31536000", "1 year"),
    ("", "Never"),
]


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"placeholder": "laptop, CI pipeline…"})
    )
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.FULL)
    workspace = forms.ChoiceField(required=False, label="Limit to workspace")
    expires_in = forms.ChoiceField(
        choices=EXPIRY_CHOICES, initial="2592000", required=False, label="Expires in"
    )

    def __init__(self, *args, workspaces=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.workspaces = {str(ws.id): ws for ws in workspaces}
        self.fields["workspace"].choices = [("", "All my workspaces")] + [
            (
                str(ws.id),
                f"{ws.resource_group.subscription.name} › {ws.resource_group.name} › {ws.name}",
            )
            for ws in workspaces
        ]

    def clean_workspace(self) -> object:
        value = self.cleaned_data.get("workspace")
        return self.workspaces.get(value) if value else None

    def clean_expires_in(self) -> int | None:
        value = self.cleaned_data.get("expires_in")
        return int(value) if value else None


class DeleteConfirmForm(forms.Form):
    """The name typed to confirm a deletion; the service checks that it matches."""

    confirm_name = forms.CharField(
        max_length=200,
        strip=True,
        error_messages={"required": "Type the name to confirm."},
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, what: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["confirm_name"].label = f"Type the {what} name to confirm"
        self.fields["confirm_name"].error_messages["required"] = f"Type the {what} name to confirm."
