"""Tracking models: experiments, runs, metrics, artifacts, logged models, the registry."""
