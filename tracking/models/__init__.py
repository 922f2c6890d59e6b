"""Tracking models: experiments, runs, metrics, datasets, logged models, the registry,
evaluation datasets.

Times are integer milliseconds since the epoch, as MLflow has them, so the
protocol layer passes them through untouched. Every row belongs to one
workspace, directly or through its experiment or run; every read filters by it.
"""

from tracking.models.evaluation_datasets import (
    EvaluationDataset,
    EvaluationDatasetExperiment,
    EvaluationDatasetRecord,
    EvaluationDatasetTag,
)
from tracking.models.experiments import (
    Dataset,
    Experiment,
    ExperimentTag,
    LatestMetric,
    LifecycleStage,
    MetricPoint,
    Param,
    Run,
    RunInput,
    RunStatus,
    RunTag,
)
from tracking.models.logged_models import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    RunModelInput,
    RunOutput,
)
from tracking.models.registry import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)

__all__ = [
    "Dataset",
    "EvaluationDataset",
    "EvaluationDatasetExperiment",
    "EvaluationDatasetRecord",
    "EvaluationDatasetTag",
    "Experiment",
    "ExperimentTag",
    "LatestMetric",
    "LifecycleStage",
    "LoggedModel",
    "LoggedModelMetric",
    "LoggedModelParam",
    "LoggedModelTag",
    "MetricPoint",
    "ModelVersion",
    "ModelVersionTag",
    "Param",
    "RegisteredModel",
    "RegisteredModelAlias",
    "RegisteredModelTag",
    "Run",
    "RunInput",
    "RunModelInput",
    "RunOutput",
    "RunStatus",
    "RunTag",
]
