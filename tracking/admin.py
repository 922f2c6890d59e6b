"""Admin console registrations of the tracking app, for support staff.

Nothing is added here (clients log through the MLflow protocol). Deleting is
allowed, so cascades from a workspace go through; a run deleted here is purged
for good, its metric points with it.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from tracking.models import Experiment, LoggedModel, ModelVersion, RegisteredModel, Run
from tracking.selectors import runs_within
from tracking.services.purge import metric_points_purge


class ReadMostlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj) -> None:
        if isinstance(obj, Experiment | Run):
            metric_points_purge(runs=runs_within(obj))
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(Experiment)
class ExperimentAdmin(ReadMostlyAdmin):
    list_display = ("name", "id", "workspace", "lifecycle_stage", "creation_time")
    list_filter = ("lifecycle_stage",)
    search_fields = ("name", "workspace__name")
    raw_id_fields = ("workspace", "created_by")


@admin.register(Run)
class RunAdmin(ReadMostlyAdmin):
    list_display = ("name", "run_uuid", "experiment", "status", "lifecycle_stage", "user_id")
    list_filter = ("status", "lifecycle_stage")
    search_fields = ("name", "run_uuid", "experiment__name", "user_id")
    raw_id_fields = ("workspace", "experiment")


@admin.register(LoggedModel)
class LoggedModelAdmin(ReadMostlyAdmin):
    list_display = ("name", "model_id", "experiment", "status", "lifecycle_stage")
    search_fields = ("name", "model_id")
    raw_id_fields = ("workspace", "experiment", "source_run")


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    extra = 0
    fields = ("version", "current_stage", "status", "source", "run_id")
    readonly_fields = fields
    can_delete = False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadMostlyAdmin):
    list_display = ("name", "workspace", "last_updated_timestamp")
    search_fields = ("name", "workspace__name")
    raw_id_fields = ("workspace",)
    inlines = [ModelVersionInline]
