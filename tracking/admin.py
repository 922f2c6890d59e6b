"""Admin console registrations of the tracking app, for support staff.

Nothing is added here (clients log through the MLflow protocol). Deleting goes
through the same services as the pages, so stored artifacts go with the rows and the
services write the audit entries: a run or an experiment deleted here is soft-deleted,
then purged for good (metric points, rows, artifacts); a logged model is purged with
its artifact folder; a registered model is deleted with its versions.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from tracking.models import Experiment, LoggedModel, ModelVersion, RegisteredModel, Run
from tracking.services import purge
from tracking.services.experiments import experiment_delete
from tracking.services.registry import registered_model_delete
from tracking.services.runs import run_delete


class ReadMostlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj) -> None:
        if isinstance(obj, Run):
            run_delete(run=obj, actor=request.user)
            purge.run_purge(actor=request.user, workspace=obj.workspace, runs=[obj])
        elif isinstance(obj, Experiment):
            experiment_delete(experiment=obj, actor=request.user)
            purge.experiment_purge(actor=request.user, experiment=obj)
        elif isinstance(obj, LoggedModel):
            purge.logged_model_purge(actor=request.user, model=obj)
        elif isinstance(obj, RegisteredModel):
            registered_model_delete(workspace=obj.workspace, name=obj.name, actor=request.user)
        else:
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
