"""Reads of the tracking app, shared by the MLflow protocol, pages and /api/v1.

Every selector takes the workspace and filters by it: an id from another
workspace is simply not found.
"""

from tracking.selectors.core import (
    experiment_get,
    experiment_get_by_name,
    run_get,
    runs_within,
)

__all__ = ["experiment_get", "experiment_get_by_name", "run_get", "runs_within"]
