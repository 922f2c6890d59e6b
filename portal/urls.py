"""Root URL configuration."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from portal import views
from portal.api.docs import RedocView, SwaggerView
from tracking.mlflow.urls import mlflow_dispatch

SUB = "subscriptions/<uuid:subscription_id>"
RG = f"{SUB}/resourceGroups/<str:resource_group>"
WS = f"{RG}/workspaces/<str:workspace>"

handler500 = "portal.views.server_error"

admin.site.site_header = "ML Studio administration"
admin.site.site_title = "ML Studio admin"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("subscriptions/new/", views.subscription_create, name="subscription-create"),
    path(f"{SUB}/", views.subscription_detail, name="subscription"),
    path(f"{SUB}/edit/", views.subscription_edit, name="subscription-edit"),
    path(f"{SUB}/members/", views.members, name="subscription-members"),
    path(f"{SUB}/resourceGroups/new/", views.resource_group_create, name="resource-group-create"),
    path(f"{RG}/", views.resource_group_detail, name="resource-group"),
    path(f"{RG}/edit/", views.resource_group_edit, name="resource-group-edit"),
    path(f"{RG}/delete/", views.resource_group_delete, name="resource-group-delete"),
    path(f"{RG}/members/", views.members, name="resource-group-members"),
    path(f"{RG}/workspaces/new/", views.workspace_create, name="workspace-create"),
    path(f"{WS}/", views.workspace_detail, name="workspace"),
    path(f"{WS}/edit/", views.workspace_edit, name="workspace-edit"),
    path(f"{WS}/delete/", views.workspace_delete, name="workspace-delete"),
    path(f"{WS}/members/", views.members, name="workspace-members"),
    path(f"{WS}/activity/", views.workspace_activity, name="workspace-activity"),
    path(f"{WS}/tracking-token/", views.workspace_tracking_token, name="workspace-tracking-token"),
    path(f"{WS}/config.json", views.workspace_config, name="workspace-config"),
    path(f"{WS}/", include("tracking.urls")),
    path("memberships/<int:membership_id>/", views.membership_change, name="membership-change"),
    path("jobs/<uuid:job_id>/", views.deletion_job, name="deletion-job"),
    path("jobs/<uuid:job_id>/status/", views.deletion_job_status, name="deletion-job-status"),
    path("jobs/<uuid:job_id>/retry/", views.deletion_job_retry, name="deletion-job-retry"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<uuid:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("api/v1/", include("portal.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # The client prints "View run at <tracking URI>/#/experiments/…": open the workspace.
    path(
        f"mlflow/v1.0/{WS}/",
        RedirectView.as_view(pattern_name="workspace", permanent=False),
        name="mlflow-home",
    ),
    path(f"mlflow/v1.0/{WS}/<path:rest>", mlflow_dispatch, name="mlflow"),
    path("admin/", admin.site.urls),
]
