"""Loads every module that registers MLflow protocol routes, and exposes the one view."""

from tracking.mlflow import (  # noqa: F401  (importing registers the routes)
    artifacts,
    datasets,
    experiments,
    graphql,
    logged_models,
    metrics,
    registry,
    runs,
    server,
)
from tracking.mlflow.protocol import dispatch as mlflow_dispatch

__all__ = ["mlflow_dispatch"]
