"""/api/v1 endpoints of the tracking app: experiments, runs, metrics, artifacts, deletes.

Mounted under `/api/v1/subscriptions/<id>/resourceGroups/<rg>/workspaces/<ws>/`."""
