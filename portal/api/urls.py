from django.urls import include, path

from portal.api import views

WS = (
    "subscriptions/<uuid:subscription_id>/resourceGroups/<str:resource_group>"
    "/workspaces/<str:workspace>"
)

urlpatterns = [
    path("user", views.CurrentUserView.as_view(), name="api-user"),
    path("workspaces", views.WorkspaceListView.as_view(), name="api-workspaces"),
    path(WS, views.WorkspaceDetailView.as_view(), name="api-workspace"),
    path(f"{WS}/tracking-token", views.TrackingTokenView.as_view(), name="api-tracking-token"),
    # Experiments, runs, metrics, artifacts of a workspace (tracking/api/v1).
    path(f"{WS}/", include("tracking.api.v1.urls")),
]
