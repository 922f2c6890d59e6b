"""Pages of the tenancy app, one module per part of the studio (as portal.api.views):

home (the dashboard), tenancy (subscriptions, resource groups, workspaces),
members (role assignments at each scope), deletion (confirm and start), jobs (deletion
job progress and retry), account (API tokens), system (health check, the 500 handler);
common holds the URL helpers and breadcrumbs they share."""
