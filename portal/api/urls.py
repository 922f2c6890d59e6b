from django.urls import include, path, re_path, register_converter

from portal.api import views


class ScopeNameConverter:
    """Resource group and workspace names (portal.validators): anything else is a 404
    from NotFoundView rather than a lookup."""

    regex = r"[-\w.()]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class UsernameConverter(ScopeNameConverter):
    regex = r"[\w.@+-]+"  # Django's user name characters


register_converter(ScopeNameConverter, "scope_name")
register_converter(UsernameConverter, "username")

SUB = "subscriptions/<uuid:subscription_id>"
RG = f"{SUB}/resourceGroups/<scope_name:resource_group>"
WS = f"{RG}/workspaces/<scope_name:workspace>"
MEMBER = "members/<username:username>"

urlpatterns = [
    path("login", views.LoginView.as_view(), name="api-login"),
    path("user", views.CurrentUserView.as_view(), name="api-user"),
    path("tokens", views.TokenListView.as_view(), name="api-tokens"),
    path("tokens/<uuid:token_id>", views.TokenDetailView.as_view(), name="api-token"),
    path("jobs/<uuid:job_id>", views.JobView.as_view(), name="api-job"),
    path("jobs/<uuid:job_id>/retry", views.JobRetryView.as_view(), name="api-job-retry"),
    # The compute workers' side of remote runs (deployments.api.workers).
    path("compute/", include("deployments.api.worker_urls")),
    # Scoring servers' telemetry batches (deployments.api.telemetry).
    path("", include("deployments.api.telemetry")),
    path("subscriptions", views.SubscriptionListView.as_view(), name="api-subscriptions"),
    path(SUB, views.SubscriptionDetailView.as_view(), name="api-subscription"),
    path(f"{SUB}/members", views.MemberListView.as_view(), name="api-subscription-members"),
    path(f"{SUB}/{MEMBER}", views.MemberDetailView.as_view(), name="api-subscription-member"),
    path(
        f"{SUB}/resourceGroups", views.ResourceGroupListView.as_view(), name="api-resource-groups"
    ),
    path(RG, views.ResourceGroupDetailView.as_view(), name="api-resource-group"),
    path(f"{RG}/members", views.MemberListView.as_view(), name="api-resource-group-members"),
    path(f"{RG}/{MEMBER}", views.MemberDetailView.as_view(), name="api-resource-group-member"),
    path(
        f"{RG}/workspaces",
        views.ResourceGroupWorkspacesView.as_view(),
        name="api-resource-group-workspaces",
    ),
    path("workspaces", views.WorkspaceListView.as_view(), name="api-workspaces"),
    path(WS, views.WorkspaceDetailView.as_view(), name="api-workspace"),
    path(f"{WS}/members", views.MemberListView.as_view(), name="api-workspace-members"),
    path(f"{WS}/{MEMBER}", views.MemberDetailView.as_view(), name="api-workspace-member"),
    path(f"{WS}/tracking-token", views.TrackingTokenView.as_view(), name="api-tracking-token"),
    # Experiments, runs, metrics, artifacts of a workspace (tracking/api/v1).
    path(f"{WS}/", include("tracking.api.urls")),
    # Compute targets, environments, snapshots and remote runs (deployments/api).
    path(f"{WS}/", include("deployments.api.urls")),
    # Last: whatever else is asked under /api/v1 gets the API's JSON 404.
    re_path(r"^[\s\S]*$", views.NotFoundView.as_view(), name="api-not-found"),  # newlines too
]
