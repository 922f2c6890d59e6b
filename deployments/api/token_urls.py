"""Routes below a workspace in /api/v1 for compute targets' worker tokens."""

from django.urls import path

from deployments.api import worker_tokens

TOKENS = "computes/<str:compute_name>/worker-tokens"

urlpatterns = [
    path(TOKENS, worker_tokens.WorkerTokenListView.as_view(), name="api-worker-tokens"),
    path(
        f"{TOKENS}/<uuid:worker_token_id>",
        worker_tokens.WorkerTokenDetailView.as_view(),
        name="api-worker-token",
    ),
]
