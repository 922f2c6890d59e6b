"""Admin console for the workspace tree, roles, tokens and the audit log (staff only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count
from django.http import HttpRequest

from portal import services
from portal.models import (
    ApiToken,
    AuditEntry,
    DeletionJob,
    Membership,
    ResourceGroup,
    Subscription,
    Workspace,
)


class AuditedAdmin(admin.ModelAdmin):
    """Changes made in the console land in the same audit log as everywhere else."""

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        changes = {name: [None, str(form.cleaned_data.get(name))] for name in form.changed_data}
        super().save_model(request, obj, form, change)
        services.audit_record(
            actor=request.user, action="update" if change else "create", target=obj, changes=changes
        )

    def delete_model(self, request: HttpRequest, obj) -> None:
        if isinstance(obj, Subscription | ResourceGroup | Workspace):
            _delete_scope(request, obj)
            return
        services.audit_record(actor=request.user, action="delete", target=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


def _delete_scope(request: HttpRequest, obj: Subscription | ResourceGroup | Workspace) -> None:
    """The console deletes workspaces and resource groups with the same deletion job as
    the pages (run here, not queued), so stored artifacts go too, not only rows."""
    groups = list(obj.resource_groups.all()) if isinstance(obj, Subscription) else [obj]
    for target in groups:
        job = services.deletion_job_execute(actor=request.user, target=target)
        if job.status != DeletionJob.Status.SUCCEEDED:
            messages.error(
                request,
                f"Deleting {target} did not finish: {job.error or job.phase}. "
                "Its deletion job carries on in the background.",
            )
            return
    if isinstance(obj, Subscription):
        services.audit_record(actor=request.user, action="delete", target=obj)
        obj.delete()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "granted_by", "created_at")
    readonly_fields = ("granted_by", "created_at")
    autocomplete_fields = ("user",)


class SubscriptionMembershipInline(MembershipInline):
    fk_name = "subscription"


class ResourceGroupMembershipInline(MembershipInline):
    fk_name = "resource_group"


class WorkspaceMembershipInline(MembershipInline):
    fk_name = "workspace"


@admin.register(Subscription)
class SubscriptionAdmin(AuditedAdmin):
    list_display = ("name", "id", "resource_group_count", "created_by", "created_at")
    search_fields = ("name", "id", "description")
    list_filter = ("created_at",)
    readonly_fields = ("id", "created_at", "updated_at")
    inlines = [SubscriptionMembershipInline]

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(_rg_count=Count("resource_groups"))
            .select_related("created_by")
        )

    @admin.display(description="Resource groups", ordering="_rg_count")
    def resource_group_count(self, obj: Subscription) -> int:
        return obj._rg_count


@admin.register(ResourceGroup)
class ResourceGroupAdmin(AuditedAdmin):
    list_display = (
        "name",
        "subscription",
        "location",
        "workspace_count",
        "created_by",
        "created_at",
    )
    search_fields = ("name", "subscription__name", "id")
    list_filter = ("location", "subscription")
    list_select_related = ("subscription", "created_by")
    readonly_fields = ("id", "created_at", "updated_at", "deletion_requested_at")
    autocomplete_fields = ("subscription",)
    inlines = [ResourceGroupMembershipInline]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(_ws_count=Count("workspaces"))

    @admin.display(description="Workspaces", ordering="_ws_count")
    def workspace_count(self, obj: ResourceGroup) -> int:
        return obj._ws_count


@admin.register(Workspace)
class WorkspaceAdmin(AuditedAdmin):
    list_display = (
        "name",
        "resource_group",
        "subscription",
        "location",
        "created_by",
        "created_at",
    )
    search_fields = (
        "name",
        "friendly_name",
        "description",
        "resource_group__name",
        "resource_group__subscription__name",
        "id",
    )
    list_filter = ("location", "resource_group__subscription", "created_at")
    list_select_related = ("resource_group__subscription", "created_by")
    readonly_fields = ("id", "created_at", "updated_at", "deletion_requested_at")
    autocomplete_fields = ("resource_group",)
    inlines = [WorkspaceMembershipInline]

    @admin.display(description="Subscription", ordering="resource_group__subscription__name")
    def subscription(self, obj: Workspace) -> str:
        return obj.resource_group.subscription.name


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    list_display = ("user", "role", "scope_kind", "scope", "granted_by", "created_at")
    search_fields = (
        "user__username",
        "user__email",
        "subscription__name",
        "resource_group__name",
        "workspace__name",
    )
    list_filter = ("role", "created_at")
    list_select_related = ("user", "subscription", "resource_group", "workspace", "granted_by")
    autocomplete_fields = ("user", "subscription", "resource_group", "workspace")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "user",
        "kind",
        "scope",
        "workspace",
        "prefix",
        "status",
        "expires_at",
        "last_used_at",
    )
    search_fields = ("name", "user__username", "prefix")
    list_filter = ("kind", "scope", "expires_at", "revoked_at")
    list_select_related = ("user", "workspace")
    readonly_fields = ("id", "prefix", "key_hash", "created_at", "last_used_at")
    fields = (
        "id",
        "user",
        "name",
        "kind",
        "scope",
        "workspace",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    autocomplete_fields = ("user", "workspace")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A token's secret is shown once at creation, which the console cannot do:
        # tokens are made on the Tokens page or with `manage.py create_token`.
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only the application writes (audit trail, jobs): the console shows them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "actor_name", "action", "target_type", "target_repr", "ip_address")
    search_fields = ("actor_name", "target_repr", "target_id", "workspace_id")
    list_filter = ("action", "target_type", "timestamp")
    date_hierarchy = "timestamp"


@admin.register(DeletionJob)
class DeletionJobAdmin(ReadOnlyAdmin):
    """Deletion jobs are written by services and workers; the console only shows them."""

    list_display = (
        "label",
        "kind",
        "status",
        "phase",
        "progress_done",
        "progress_total",
        "attempts",
        "created_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("kind", "status", "created_at")
    search_fields = ("label", "id", "workspace_id", "resource_group_id")
    list_select_related = ("created_by",)
