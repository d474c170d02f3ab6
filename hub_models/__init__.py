"""hub-models: classic generative models as plugins, with weights on the Hugging Face Hub."""

from typing import Any

from .contract import GenerativeModel
from .errors import DataError, HubModelsError, WeightsError
from .registry import get_model_class, list_models, load, plugin_errors
from .spec import CardInfo, Input, Metric, TrainingSetup
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


def __getattr__(name: str) -> Any:
    # ``publish`` is imported on first use, so that ``python -m hub_models.hub`` (which regenerates the bundled
    # cards) does not find its module already imported by the package, and ``import hub_models`` stays light.
    if name == "publish":
        from .hub import publish

        return publish
    raise AttributeError(f"module 'hub_models' has no attribute {name!r}")
