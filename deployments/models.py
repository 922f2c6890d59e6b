"""deployments models: compute targets, environments, remote runs, images, web services, scoring and drift."""
