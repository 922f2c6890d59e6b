"""Admin console registrations of the deployments app: read-only lists (changes go
through the services, which audit them)."""

from django.contrib import admin

from deployments.models import ComputeTarget, ComputeWorker, Environment, RemoteJob


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ComputeTarget)
class ComputeTargetAdmin(ReadOnly):
    list_display = ("name", "workspace", "kind", "max_nodes", "created_at")
    search_fields = ("name",)


@admin.register(ComputeWorker)
class ComputeWorkerAdmin(ReadOnly):
    list_display = ("hostname", "target", "slots", "version", "last_seen")


@admin.register(Environment)
class EnvironmentAdmin(ReadOnly):
    list_display = ("name", "version", "workspace", "python_version", "created_at")
    search_fields = ("name",)


@admin.register(RemoteJob)
class RemoteJobAdmin(ReadOnly):
    list_display = ("label", "stage", "status", "compute_name", "created_at", "finished_at")
    list_filter = ("stage", "status")
    search_fields = ("label", "script")
