"""/api/v1 views of the tenancy app: thin, each calls one selector or service.

account (login, user, tokens), tenancy (subscriptions, resource groups, workspaces),
members (role assignments at each scope), jobs (deletion jobs, the JSON 404)."""

from portal.api.views.account import (
    CurrentUserView,
    LoginView,
    TokenDetailView,
    TokenListView,
)
from portal.api.views.jobs import JobRetryView, JobView, NotFoundView
from portal.api.views.members import MemberDetailView, MemberListView
from portal.api.views.tenancy import (
    ResourceGroupDetailView,
    ResourceGroupListView,
    ResourceGroupWorkspacesView,
    SubscriptionDetailView,
    SubscriptionListView,
    TrackingTokenView,
    WorkspaceDetailView,
    WorkspaceListView,
)

__all__ = [
    "CurrentUserView",
    "JobRetryView",
    "JobView",
    "LoginView",
    "MemberDetailView",
    "MemberListView",
    "NotFoundView",
    "ResourceGroupDetailView",
    "ResourceGroupListView",
    "ResourceGroupWorkspacesView",
    "SubscriptionDetailView",
    "SubscriptionListView",
    "TokenDetailView",
    "TokenListView",
    "TrackingTokenView",
    "WorkspaceDetailView",
    "WorkspaceListView",
]
