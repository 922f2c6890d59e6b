"""Serializers shared by the /api/v1 views of both apps."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from portal.models import DeletionJob


class ErrorSerializer(serializers.Serializer):
    """Every error answer: MLflow-style code and a message for people."""

    error_code = serializers.CharField()
    message = serializers.CharField()


class DeletionJobSerializer(serializers.ModelSerializer):
    """A cascade deletion as a script follows it: poll `url` until status is final."""

    percent = serializers.IntegerField(read_only=True)
    is_finished = serializers.BooleanField(read_only=True)
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

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
            "attempts",
            "created_at",
            "started_at",
            "updated_at",
            "finished_at",
            "url",
            "page_url",
        ]
        read_only_fields = fields

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_url(self, job: DeletionJob) -> str:
        return self._absolute(reverse("api-job", kwargs={"job_id": job.pk}))

    def get_page_url(self, job: DeletionJob) -> str:
        return self._absolute(reverse("deletion-job", kwargs={"job_id": job.pk}))
