"""Root URL configuration."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from portal.api.docs import RedocView, SwaggerView
from portal.views import account, deletion, home, jobs, members, system, tenancy
from tracking.mlflow.urls import mlflow_dispatch

SUB = "subscriptions/<uuid:subscription_id>"
RG = f"{SUB}/resourceGroups/<str:resource_group>"
WS = f"{RG}/workspaces/<str:workspace>"

handler500 = "portal.views.system.server_error"

admin.site.site_header = "ML Studio administration"
admin.site.site_title = "ML Studio admin"

urlpatterns = [
    path("", home.dashboard, name="dashboard"),
    path("healthz", system.healthz, name="healthz"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("subscriptions/new/", tenancy.subscription_create, name="subscription-create"),
    path(f"{SUB}/", tenancy.subscription_detail, name="subscription"),
    path(f"{SUB}/edit/", tenancy.subscription_edit, name="subscription-edit"),
    path(f"{SUB}/members/", members.members, name="subscription-members"),
    path(f"{SUB}/resourceGroups/new/", tenancy.resource_group_create, name="resource-group-create"),
    path(f"{RG}/", tenancy.resource_group_detail, name="resource-group"),
    path(f"{RG}/edit/", tenancy.resource_group_edit, name="resource-group-edit"),
    path(f"{RG}/delete/", deletion.resource_group_delete, name="resource-group-delete"),
    path(f"{RG}/members/", members.members, name="resource-group-members"),
    path(f"{RG}/workspaces/new/", tenancy.workspace_create, name="workspace-create"),
    path(f"{WS}/", tenancy.workspace_detail, name="workspace"),
    path(f"{WS}/edit/", tenancy.workspace_edit, name="workspace-edit"),
    path(f"{WS}/delete/", deletion.workspace_delete, name="workspace-delete"),
    path(f"{WS}/members/", members.members, name="workspace-members"),
    path(f"{WS}/activity/", tenancy.workspace_activity, name="workspace-activity"),
    path(
        f"{WS}/tracking-token/", tenancy.workspace_tracking_token, name="workspace-tracking-token"
    ),
    path(f"{WS}/config.json", tenancy.workspace_config, name="workspace-config"),
    path(f"{WS}/", include("tracking.urls")),
    path(f"{WS}/", include("deployments.urls")),
    path("memberships/<int:membership_id>/", members.membership_change, name="membership-change"),
    path("jobs/<uuid:job_id>/", jobs.deletion_job, name="deletion-job"),
    path("jobs/<uuid:job_id>/status/", jobs.deletion_job_status, name="deletion-job-status"),
    path("jobs/<uuid:job_id>/retry/", jobs.deletion_job_retry, name="deletion-job-retry"),
    path("account/tokens/", account.tokens, name="tokens"),
    path("account/tokens/<uuid:token_id>/revoke/", account.token_revoke, name="token-revoke"),
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
