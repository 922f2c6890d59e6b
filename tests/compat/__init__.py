"""The MLflow compatibility harness: mlflow's own live-server tests against a workspace.

Not collected by the suite (no test_*.py here); `make compat MLFLOW_TESTS=...` runs it.
See docs/mlflow-compatibility.md, "Running mlflow's own tests".
"""
