"""Where a model and its files live, read from package metadata without importing any plugin.

- the ``hub_models.models`` entry points (and ``BUILTIN_MODELS``, the same table for a never-installed checkout)
  and the distribution that provides each model id (what to ``pip install`` for it);
- its Hub repo (``hub_repo_id``: its declared ``hub_repo``, or ``<org>/<model_id>`` with the org from
  ``HUB_MODELS_ORG``, default ``hub-models``) and pinned revision (``pinned_revision``: its declared
  ``hub_revision``, or the tag ``v<version of the distribution that provides it>``, which ``publish`` creates);
- its local copy (``<package>/weights/<model_id>/``), its training recipe, and the file names of the Hub layout.

:mod:`hub_models.registry` loads the classes from the same entry points; the weights code and the card writer
need only these facts, so they sit below the registry.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .version import __version__

if TYPE_CHECKING:
    from .contract import GenerativeModel

GROUP = "hub_models.models"
OWN_DISTRIBUTION = "hub-models"

# The project's own plugins, registered as entry points in pyproject.toml like any third-party plugin. This is the
# same table (a test keeps the two equal) for a plain source checkout that was never pip-installed, where no
# entry-point metadata exists: the Hugging Face Spaces builder installs requirements.txt and then runs
# ``demo/app.py`` from the copied repository, and the demo must still find every model.
BUILTIN_MODELS: dict[str, str] = {
    "gan-toy2d": "hub_models.models.toy2d:GanToy2D",
    "gan-ring8": "hub_models.models.toy2d:GanRing8",
    "cgan-digits": "hub_models.models.cgan_digits:CganDigits",
    "dcgan-faces": "hub_models.models.dcgan_faces:DcganFaces",
    "convgan-faces128": "hub_models.models.convgan_faces128:ConvganFaces128",
    "cgan-digits-mlp": "hub_models.models.cgan_digits_mlp:CganDigitsMlp",
    "gan-digits-mlp": "hub_models.models.gan_digits_mlp:GanDigitsMlp",
    "vae-digits": "hub_models.models.vae_digits:VaeDigits",
}

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
SAMPLE_NAME = "sample.png"
RECIPE_NAME = "recipe.toml"
CURVE_NAME = "curve.jsonl"  # the evaluations during training: one JSON object per line (step, metrics)
CURVE_PICTURE = "curve.png"  # the model's primary metric drawn from it, shown on the card
DEFAULT_ORG = "hub-models"
ORG_ENV = "HUB_MODELS_ORG"
CLASSIFIER_ENV = "HUB_MODELS_CLASSIFIER"  # a local copy of the digit metrics' MNIST classifier (`eval --classifier`)
ASSETS = ("mnist-classifier",)  # published and downloaded with the models; not plugins, so not in list_models()


def dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else OWN_DISTRIBUTION  # built-ins of a plain checkout


def dist_version(ep: importlib.metadata.EntryPoint | None) -> str:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else __version__


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """Installed entry points of the group, plus the built-in models a source checkout has no metadata for.

    hub-models' own entry points come first, so a third-party distribution cannot replace a built-in model by
    registering its id; among third parties the order is by distribution name. Of two entry points with one name,
    the first is used (the registry reports the clash).
    """
    installed = sorted(
        importlib.metadata.entry_points(group=GROUP),
        key=lambda e: (dist_name(e) != OWN_DISTRIBUTION, dist_name(e), e.name),
    )
    registered = {ep.name for ep in installed if dist_name(ep) == OWN_DISTRIBUTION}
    builtin = [
        importlib.metadata.EntryPoint(name, value, GROUP)
        for name, value in BUILTIN_MODELS.items()
        if name not in registered
    ]
    return sorted(builtin, key=lambda e: e.name) + installed


@functools.cache
def _distributions() -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for ep in entry_points():
        found.setdefault(ep.name, (dist_name(ep), dist_version(ep)))
    return found


def refresh() -> None:
    """Forget what was read from the metadata (``hub_models.registry.refresh`` calls this)."""
    _distributions.cache_clear()


def distribution(model_id: str) -> tuple[str, str]:
    """(name, version) of the distribution that provides ``model_id`` (what to ``pip install`` for it)."""
    return _distributions().get(model_id, (OWN_DISTRIBUTION, __version__))


def bundled_dir(model_cls: type[GenerativeModel]) -> Path:
    """Where the plugin's package keeps a local copy of its weights: ``<top-level package>/weights/<model_id>``."""
    package = model_cls.__module__.split(".")[0]
    return Path(str(resources.files(package))) / "weights" / model_cls.model_id


def has_local_copy(model_cls: type[GenerativeModel]) -> bool:
    return (bundled_dir(model_cls) / CONFIG_NAME).is_file()


def hub_repo_id(model_cls: type[GenerativeModel], org: str | None = None) -> str:
    """The model's Hub repo: ``org/<name>`` when ``org`` is given, else its declared ``hub_repo``, else
    ``<$HUB_MODELS_ORG or hub-models>/<model_id>``."""
    declared = getattr(model_cls, "hub_repo", None)
    name = declared.split("/", 1)[1] if declared else model_cls.model_id
    if org:
        return f"{org}/{name}"
    return declared or f"{os.environ.get(ORG_ENV) or DEFAULT_ORG}/{name}"


def hub_asset_repo_id(name: str, org: str | None = None) -> str:
    """The Hub repo of a non-model checkpoint of hub-models (e.g. the MNIST classifier of the digit metrics)."""
    return f"{org or os.environ.get(ORG_ENV) or DEFAULT_ORG}/{name}"


def pinned_revision(model_cls: type[GenerativeModel]) -> str:
    """The revision this version of the plugin loads: ``hub_revision``, or the tag ``v<distribution version>``."""
    declared = getattr(model_cls, "hub_revision", None)
    return declared or f"v{distribution(model_cls.model_id)[1]}"


def recipe_path(model_cls: type[GenerativeModel]) -> Path | None:
    """The training recipe of a model's published weights: ``<package>/recipes/<id>.toml``, shipped with the
    package (hub-models' own checkout shows that folder as ``train/`` too)."""
    try:
        package = Path(str(resources.files(model_cls.__module__.split(".")[0])))
    except (AttributeError, TypeError, ModuleNotFoundError):  # a module built at run time has no package files
        return None
    path = package / "recipes" / f"{model_cls.model_id}.toml"
    return path if path.is_file() else None
