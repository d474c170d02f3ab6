"""Model discovery through the ``hub_models.models`` entry-point group (timm-style: one name → class).

The project's own models are registered the same way as third-party ones (see pyproject.toml), so a
package that declares an entry point in this group shows up in the CLI, the Python API and the demo
with no change here. A plugin that fails to import is reported with its error; the others still load.
"""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .errors import HubModelsError

if TYPE_CHECKING:
    from .contract import GenerativeModel

GROUP = "hub_models.models"


@functools.cache
def _discover() -> tuple[dict[str, type[GenerativeModel]], dict[str, str]]:
    from .contract import GenerativeModel

    found: dict[str, type[GenerativeModel]] = {}
    broken: dict[str, str] = {}
    for ep in _entry_points():
        if ep.name in found or ep.name in broken:
            continue  # the same distribution seen twice on sys.path
        try:
            cls = ep.load()
        except Exception as exc:
            broken[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        if not (isinstance(cls, type) and issubclass(cls, GenerativeModel)):
            broken[ep.name] = f"{ep.value} is not a hub_models.GenerativeModel subclass"
        elif getattr(cls, "model_id", None) != ep.name:
            broken[ep.name] = f"entry point name {ep.name!r} differs from {ep.value}.model_id"
        else:
            found[ep.name] = cls
    return found, broken


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """Installed entry points of the group, plus the built-in models a source checkout has no metadata for."""
    from .models import BUILTIN_MODELS

    installed = sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name)
    registered = {ep.name for ep in installed}
    builtin = [
        importlib.metadata.EntryPoint(name, value, GROUP)
        for name, value in BUILTIN_MODELS.items()
        if name not in registered
    ]
    return installed + sorted(builtin, key=lambda e: e.name)


def refresh() -> None:
    """Forget discovered plugins (after installing one in a running process)."""
    _discover.cache_clear()


def list_models() -> list[str]:
    """Ids of every installed model plugin that imports cleanly."""
    return sorted(_discover()[0])


def plugin_errors() -> dict[str, str]:
    """Plugins that failed to load: id → error."""
    return dict(_discover()[1])


def get_model_class(model_id: str) -> type[GenerativeModel]:
    found, broken = _discover()
    if model_id in found:
        return found[model_id]
    if model_id in broken:
        raise HubModelsError(f"plugin {model_id!r} failed to load: {broken[model_id]}")
    available = ", ".join(sorted(found)) or "none installed"
    raise HubModelsError(f"unknown model {model_id!r}; available models: {available}")


def load(model_id: str, weights: str | Path | None = None, device: str | torch.device | None = None) -> GenerativeModel:
    """Build ``model_id`` and load its weights (bundled by default; a directory; or ``org/name[@rev]``)."""
    from .weights import load_weights

    return load_weights(get_model_class(model_id), weights, device=device)
