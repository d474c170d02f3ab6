"""hub-models: classic generative models as plugins, with weights on the Hugging Face Hub."""

from .contract import CardInfo, GenerativeModel, Input, Metric, TrainingSetup
from .errors import DataError, HubModelsError, WeightsError
from .hub import publish
from .registry import get_model_class, list_models, load, plugin_errors
from .version import __version__

__all__ = [
    "CardInfo",
    "DataError",
    "GenerativeModel",
    "HubModelsError",
    "Input",
    "Metric",
    "TrainingSetup",
    "WeightsError",
    "__version__",
    "get_model_class",
    "list_models",
    "load",
    "plugin_errors",
    "publish",
]
