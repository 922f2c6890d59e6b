"""/api/v1 images: list (the newest version of each name) and build; a name's versions;
one version with its state and build log.

Readers read; building needs the contributor role (and a personal token: a run's
tracking token changes nothing here)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.api.common import path_name, workspace_for
from deployments.models import Image
from deployments.services import images as svc
from portal.errors import NotFound
from tracking.api.common import errors

TAGS = ["images"]


class ImageSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="name:version, the reference's image id")
    name = serializers.CharField()
    version = serializers.IntegerField()
    description = serializers.CharField()
    tags = serializers.DictField(child=serializers.CharField())
    model_uri = serializers.CharField(help_text="As given: runs:/…, models:/name/1, models:/name@a")
    model_name = serializers.CharField(help_text="The registered model the image packages")
    model_version = serializers.IntegerField(allow_null=True)
    state = serializers.ChoiceField(choices=Image.State.values)
    error = serializers.CharField()
    base_image = serializers.CharField()
    python_version = serializers.CharField()
    requirements = serializers.ListField(child=serializers.CharField())
    env_hash = serializers.CharField(help_text="The uv environment's build hash")
    context_uri = serializers.CharField(help_text="The stored build context (zip)")
    docker_tag = serializers.CharField(help_text="Empty when no Docker engine built it")
    docker_image_id = serializers.CharField()
    image_location = serializers.CharField(
        help_text="Where the image is: a Docker reference, or `local environment <hash>`"
    )
    signature = serializers.JSONField(allow_null=True)
    job_id = serializers.CharField(allow_null=True, help_text="The build job (portal's jobs)")
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ImageDetailSerializer(ImageSerializer):
    build_log = serializers.CharField()


class ImageListSerializer(serializers.Serializer):
    images = ImageSerializer(many=True)


class ImageBuildSerializer(serializers.Serializer):
    model_uri = serializers.CharField(
        max_length=2000,
        help_text="runs:/<run_id>/<path>, models:/<name>/<version> or models:/<name>@<alias>",
    )
    model_name = serializers.CharField(
        max_length=256,
        required=False,
        allow_blank=True,
        default="",
        help_text="The registered model to record the version under (made when missing); "
        "for a models:/ URI, empty means that model's version itself",
    )
    image_name = serializers.CharField(
        max_length=64, help_text="3–32 lowercase letters, digits, dashes, periods"
    )
    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )
    tags = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    base_image = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="The Dockerfile's FROM; default the server's IMAGE_BASE",
    )


def image_data(image: Image, *, log: bool = False) -> dict[str, Any]:
    job = svc.image_build_job(image)
    data = {
        "id": image.id_label,
        "name": image.name,
        "version": image.version,
        "description": image.description,
        "tags": image.tags or {},
        "model_uri": image.model_uri,
        "model_name": image.model_name,
        "model_version": image.model_version,
        "state": image.state,
        "error": image.error,
        "base_image": image.base_image,
        "python_version": image.python_version,
        "requirements": image.requirements or [],
        "env_hash": image.env_hash,
        "context_uri": image.context_uri,
        "docker_tag": image.docker_tag,
        "docker_image_id": image.docker_image_id,
        "image_location": image.image_location,
        "signature": image.signature,
        "job_id": str(job.pk) if job is not None else None,
        "created_by": image.created_by.get_username() if image.created_by else None,
        "created_at": image.created_at,
        "updated_at": image.updated_at,
    }
    if log:
        data["build_log"] = image.build_log
        return ImageDetailSerializer(data).data
    return ImageSerializer(data).data


def _version(value: str, name: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 2**31:
        raise NotFound(f"No version {value[:20]!r} of image '{name[:40]}'.")
    return int(value)


class ImageListView(APIView):
    @extend_schema(
        operation_id="images_list",
        tags=TAGS,
        summary="List images",
        description="The newest version of each image name, by name.",
        responses={200: ImageListSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        images = svc.image_latest_list(workspace=workspace)
        return Response({"images": [image_data(i) for i in images]})

    @extend_schema(
        operation_id="images_build",
        tags=TAGS,
        summary="Build an image",
        description="Needs the contributor role. Registers the model version (a runs:/ URI "
        "becomes a new version of `model_name`) and queues the build of the next version of "
        "`image_name` (202): follow its `state` (NotStarted, Running, Succeeded, Failed) and "
        "`build_log` at images/<name>/<version>. A run, model or version that is not in "
        "this workspace is 404 (RESOURCE_DOES_NOT_EXIST); a malformed URI or name is 400.",
        request=ImageBuildSerializer,
        responses={202: ImageDetailSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs, write=True)
        body = ImageBuildSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = svc.image_build_request(
            actor=request.user, workspace=workspace, **body.validated_data
        )
        return Response(image_data(image, log=True), status=202)


class ImageVersionListView(APIView):
    @extend_schema(
        operation_id="images_versions_list",
        tags=TAGS,
        summary="List an image's versions",
        description="Newest first.",
        responses={200: ImageListSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, image: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        name = path_name(image, "image")
        versions = svc.image_versions(workspace=workspace, name=name)
        return Response({"images": [image_data(i) for i in versions]})


class ImageVersionView(APIView):
    @extend_schema(
        operation_id="images_versions_get",
        tags=TAGS,
        summary="Get a version of an image",
        description="With its build log (server paths blanked out). `latest` names the "
        "newest version.",
        responses={200: ImageDetailSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, image: str, version: str, **kwargs: Any) -> Response:
        workspace = workspace_for(request, kwargs)
        name = path_name(image, "image")
        number = None if version == "latest" else _version(version, name)
        found = svc.image_get(workspace=workspace, name=name, version=number)
        return Response(image_data(found, log=True))
