"""tracking models: experiments, runs, metrics, artifacts, logged models and the model registry; the MLflow REST protocol."""
