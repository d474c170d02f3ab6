"""Model discovery through the ``hub_models.models`` entry-point group (timm-style: one name → class).

The project's own models are registered the same way as third-party ones (see pyproject.toml), so a
package that declares an entry point in this group shows up in the CLI, the Python API and the demo
with no change here. A plugin that fails to import is reported with its error; the others still load.
"""

from __future__ import annotations

import functools
import importlib.metadata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .errors import HubModelsError

if TYPE_CHECKING:
    from .contract import GenerativeModel

GROUP = "hub_models.models"


OWN_DISTRIBUTION = "hub-models"


@dataclass(frozen=True)
class Conflict:
    """Two distributions register the same model id: ``used`` wins, ``ignored`` is not loaded."""

    model_id: str
    used: str
    ignored: str

    def message(self) -> str:
        return (
            f"model id {self.model_id!r} is registered by both {self.used} and {self.ignored}; "
            f"using {self.used} (uninstall one, or rename the other's entry point)"
        )


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else OWN_DISTRIBUTION  # built-ins of a plain checkout


def _dist_version(ep: importlib.metadata.EntryPoint) -> str:
    from . import __version__

    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else __version__


@functools.cache
def _discover() -> tuple[dict[str, type[GenerativeModel]], dict[str, str], dict[str, tuple[str, str]], list[Conflict]]:
    from .contract import GenerativeModel

    found: dict[str, type[GenerativeModel]] = {}
    broken: dict[str, str] = {}
    dists: dict[str, tuple[str, str]] = {}
    conflicts: list[Conflict] = []
    for ep in _entry_points():
        if ep.name in dists:
            if _dist_name(ep) != dists[ep.name][0]:  # the same distribution twice on sys.path is no conflict
                conflicts.append(Conflict(ep.name, used=dists[ep.name][0], ignored=_dist_name(ep)))
            continue
        dists[ep.name] = (_dist_name(ep), _dist_version(ep))
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
    return found, broken, dists, conflicts


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """Installed entry points of the group, plus the built-in models a source checkout has no metadata for.

    hub-models' own entry points come first, so a third-party distribution cannot replace a built-in model by
    registering its id; among third parties the order is by distribution name. Every clash is a ``Conflict``.
    """
    from .models import BUILTIN_MODELS

    installed = sorted(
        importlib.metadata.entry_points(group=GROUP),
        key=lambda e: (_dist_name(e) != OWN_DISTRIBUTION, _dist_name(e), e.name),
    )
    registered = {ep.name for ep in installed if _dist_name(ep) == OWN_DISTRIBUTION}
    builtin = [
        importlib.metadata.EntryPoint(name, value, GROUP)
        for name, value in BUILTIN_MODELS.items()
        if name not in registered
    ]
    return sorted(builtin, key=lambda e: e.name) + installed


def refresh() -> None:
    """Forget discovered plugins (after installing one in a running process)."""
    _discover.cache_clear()


def list_models() -> list[str]:
    """Ids of every installed model plugin that imports cleanly."""
    return sorted(_discover()[0])


def plugin_errors() -> dict[str, str]:
    """Plugins that failed to load: id → error."""
    return dict(_discover()[1])


def conflicts() -> list[Conflict]:
    """Model ids registered by more than one distribution (which one is used, which one is ignored)."""
    return list(_discover()[3])


def distribution(model_id: str) -> tuple[str, str]:
    """(name, version) of the distribution that provides ``model_id`` (what to ``pip install`` for it)."""
    return _discover()[2].get(model_id, (OWN_DISTRIBUTION, _dist_version(None)))  # type: ignore[arg-type]


def get_model_class(model_id: str) -> type[GenerativeModel]:
    found, broken, _, clashes = _discover()
    for clash in clashes:
        if clash.model_id == model_id:
            warnings.warn(clash.message(), stacklevel=2)
    if model_id in found:
        return found[model_id]
    if model_id in broken:
        raise HubModelsError(f"plugin {model_id!r} failed to load: {broken[model_id]}")
    available = ", ".join(sorted(found)) or "none installed"
    raise HubModelsError(f"unknown model {model_id!r}; available models: {available}")


def load(
    model: str,
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
) -> GenerativeModel:
    """Build a model and load its weights.

    ``model`` is a model id (weights: ``weights`` if given — a directory or ``org/name[@rev]`` — else the local copy,
    else the model's Hub repo at its pinned revision), or a Hub repo id / checkpoint directory whose config.json
    names the model (the plugin is picked from its ``model_type``). The keyword arguments go to huggingface_hub.
    """
    from .weights import HubOptions, load_any, load_weights

    hub = HubOptions(revision, token, cache_dir, force_download, local_files_only)
    found, broken = _discover()[:2]
    if weights is None and model not in found and model not in broken and ("/" in model or Path(model).is_dir()):
        return load_any(model, device=device, hub=hub)
    return load_weights(get_model_class(model), weights, device=device, hub=hub)
