"""hub-models: classic generative models as plugins, with weights on the Hugging Face Hub."""

import importlib
from typing import TYPE_CHECKING, Any

from .errors import DataError, HubModelsError, HubModelsWarning, WeightsError
from .version import __version__

if TYPE_CHECKING:
    from .contract import GenerativeModel
    from .hub import publish
    from .registry import get_model_class, list_models, load, plugin_errors
    from .spec import CardInfo, Input, Metric, TrainingSetup

# The rest of the API is imported on first use: ``import hub_models`` (and so every ``hub-models`` command, even
# ``--version``) does not pay for torch until a model is needed, and ``python -m hub_models.hub`` (which
# regenerates the bundled cards) does not find its module already imported by the package.
_LAZY = {
    "CardInfo": "spec",
    "GenerativeModel": "contract",
    "Input": "spec",
    "Metric": "spec",
    "TrainingSetup": "spec",
    "get_model_class": "registry",
    "list_models": "registry",
    "load": "registry",
    "plugin_errors": "registry",
    "publish": "hub",
}

__all__ = [
    "CardInfo",
    "DataError",
    "GenerativeModel",
    "HubModelsError",
    "HubModelsWarning",
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
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'hub_models' has no attribute {name!r}")
