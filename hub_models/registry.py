"""Model discovery through the ``hub_models.models`` entry-point group (timm-style: one name → class).

The project's own models are registered the same way as third-party ones (see pyproject.toml), so a
package that declares an entry point in this group shows up in the CLI, the Python API and the demo
with no change here. A plugin that fails to import is reported with its error; the others still load.
The entry points themselves (and which distribution provides each id) are read in :mod:`hub_models.locations`;
this module loads the classes and the weights (``load``, ``load_any``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from . import locations
from .contract import GenerativeModel
from .errors import HubModelsError, HubModelsWarning, WeightsError
from .locations import CONFIG_NAME, dist_name, dist_version
from .weights import HubOptions, download, load_weights, parse_repo_ref


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


@functools.cache
def _discover() -> tuple[dict[str, type[GenerativeModel]], dict[str, str], dict[str, tuple[str, str]], list[Conflict]]:
    found: dict[str, type[GenerativeModel]] = {}
    broken: dict[str, str] = {}
    dists: dict[str, tuple[str, str]] = {}
    conflicts: list[Conflict] = []
    for ep in locations.entry_points():
        if ep.name in dists:
            if dist_name(ep) != dists[ep.name][0]:  # the same distribution twice on sys.path is no conflict
                conflicts.append(Conflict(ep.name, used=dists[ep.name][0], ignored=dist_name(ep)))
            continue
        dists[ep.name] = (dist_name(ep), dist_version(ep))
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


def refresh() -> None:
    """Forget discovered plugins (after installing one in a running process)."""
    _discover.cache_clear()
    locations.refresh()


def list_models() -> list[str]:
    """Ids of every installed model plugin that imports cleanly."""
    return sorted(_discover()[0])


def plugin_errors() -> dict[str, str]:
    """Plugins that failed to load: id → error."""
    return dict(_discover()[1])


def conflicts() -> list[Conflict]:
    """Model ids registered by more than one distribution (which one is used, which one is ignored)."""
    return list(_discover()[3])


def get_model_class(model_id: str) -> type[GenerativeModel]:
    found, broken, _, clashes = _discover()
    for clash in clashes:
        if clash.model_id == model_id:
            warnings.warn(clash.message(), HubModelsWarning, stacklevel=2)
    if model_id in found:
        return found[model_id]
    if model_id in broken:
        raise HubModelsError(f"plugin {model_id!r} failed to load: {broken[model_id]}")
    available = ", ".join(sorted(found)) or "none installed"
    raise HubModelsError(f"unknown model {model_id!r}; available models: {available}")


def get_trainable_class(model_id: str) -> type:
    """What ``hub-models train`` and ``hub-models recipe`` take: a plugin's class, or one of hub-models' own assets
    that the engine trains the same way (the MNIST classifier of the digit metrics, which generates nothing)."""
    if model_id in locations.ASSETS:
        from .models.mnist_classifier import MnistClassifierModel

        return MnistClassifierModel
    return get_model_class(model_id)


def load_any(
    ref: str | Path, device: str | torch.device | None = None, hub: HubOptions | None = None
) -> GenerativeModel:
    """Load a checkpoint directory or Hub repo whatever its model: the plugin comes from config.json's model_type."""
    path = Path(ref).expanduser()
    if path.is_dir():
        directory = path
    else:
        parsed = parse_repo_ref(str(ref))
        if parsed is None or str(ref).startswith((".", "/", "~")):
            raise WeightsError(
                f"unknown model {str(ref)!r}: give a model id ({', '.join(list_models())}), "
                "a checkpoint directory or a Hub repo id org/name[@revision]"
            )
        repo_id, revision = parsed
        hub = hub or HubOptions()
        directory = download(repo_id, dataclasses.replace(hub, revision=revision or hub.revision))
    path = directory / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        model_type = config["model_type"]
    except (OSError, ValueError, KeyError, TypeError):
        raise WeightsError(f"{ref} has no {CONFIG_NAME} with a model_type: not a hub-models checkpoint") from None
    if model_type not in list_models():
        package = config.get("package") if isinstance(config.get("package"), str) else None
        how = f"pip install {package}" if package else "install the plugin package its model card names"
        raise WeightsError(f"{ref} holds a {model_type!r} model, which no installed plugin provides: {how}")
    return load_weights(get_model_class(model_type), directory, device=device)


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
    hub = HubOptions(revision, token, cache_dir, force_download, local_files_only)
    found, broken = _discover()[:2]
    if weights is None and model not in found and model not in broken and ("/" in model or Path(model).is_dir()):
        return load_any(model, device=device, hub=hub)
    return load_weights(get_model_class(model), weights, device=device, hub=hub)
