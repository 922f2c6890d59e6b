"""Pages of the deployments app: the run page's Job tab, compute targets, environments."""
