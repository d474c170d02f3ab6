"""Recipes: the one place a model's training lives, and the one place a run's settings are resolved.

A recipe is a TOML file with ``model = "<id>"``, a ``[config]`` table (the model's Config fields) and a ``[train]``
table (:class:`~hub_models.engine.TrainSettings` fields). Each model's recipe ships inside its package as
``<package>/recipes/<model_id>.toml`` (hub-models' own: ``hub_models/recipes/``, which a checkout also shows as
``train/``), so ``hub-models train MODEL``, ``Model().train()`` and the demo's live training, given no other
recipe, train exactly the recipe that produced the published weights. ``hub-models recipe MODEL`` prints it.

:func:`resolve_training` is the only code that merges settings: the recipe (an explicit file, else the packaged
one, else a plugin's ``train_defaults``), then the caller's overrides; the result is validated once, when the
:class:`TrainSettings` is built, and ``fit`` writes it to the run directory.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import HubModelsError
from ..locations import recipe_path
from ..spec import config_from_dict
from .settings import TrainSettings

RECIPE_KEYS = {"model", "config", "train"}


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe: the model it is for, its [config] and [train] tables, and where it came from."""

    model_id: str
    config: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the file, or "" for a plugin's train_defaults


def read_recipe(path: Path, model_id: str | None = None) -> Recipe:
    """Parse ``path`` strictly (one-line errors); ``model_id``: the model it must be for (None: any)."""
    path = Path(path)
    if not path.is_file():
        raise HubModelsError(
            f"recipe {path} not found: pass a recipe file, or leave --config out to train the model's own recipe "
            "(`hub-models recipe MODEL` prints it)"
        )
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HubModelsError(f"recipe {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(table) - RECIPE_KEYS)
    if unknown:
        raise HubModelsError(f"recipe {path} has unknown keys {unknown}; allowed: model, [config], [train]")
    named = table.get("model", model_id or path.stem)
    if model_id is not None and named != model_id:
        raise HubModelsError(f"recipe {path} is for {named!r}, not {model_id!r}")
    for key in ("config", "train"):
        if not isinstance(table.get(key, {}), dict):
            raise HubModelsError(f"recipe {path}: {key} must be a table ([{key}])")
    return Recipe(named, dict(table.get("config", {})), dict(table.get("train", {})), str(path))


def packaged_recipes() -> dict[str, Path]:
    """hub-models' own recipes by name (the file stem: a model id, or a variant such as convgan-faces128-gpu)."""
    folder = Path(str(resources.files("hub_models"))) / "recipes"
    return {path.stem: path for path in sorted(folder.glob("*.toml"))}


def model_recipe(model_cls: type, path: Path | None = None) -> Recipe:
    """The recipe a run of ``model_cls`` starts from: ``path``, else the one its package ships, else (a plugin
    without a recipe file) its ``train_defaults``."""
    path = path or recipe_path(model_cls)
    if path is not None:
        return read_recipe(path, model_cls.model_id)
    return Recipe(model_cls.model_id, {}, dict(getattr(model_cls, "train_defaults", {})))


def resolve_training(
    model_cls: type,
    recipe: Path | None = None,
    config: Any = None,
    config_overrides: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[Any, TrainSettings, Recipe]:
    """The model config and the validated settings of one run, and the recipe they came from.

    ``config``: a Config object that replaces the recipe's [config] (a model built with its own config);
    ``config_overrides``: fields over the recipe's [config] (``--set``); ``settings``: TrainSettings fields over the
    recipe's [train] (``None`` values mean "not given" and are skipped).
    """
    base = model_recipe(model_cls, recipe)
    if config is None:
        config = config_from_dict(
            model_cls.Config, {**base.config, **(config_overrides or {})}, what=f"{model_cls.model_id} config"
        )
    elif config_overrides:
        raise HubModelsError("pass either a config object or config overrides, not both")
    given = {k: v for k, v in (settings or {}).items() if v is not None}
    return config, TrainSettings.from_dict({**base.train, **given}), base


def recipe_text(model_cls: type) -> str:
    """The packaged recipe file of ``model_cls`` as text (what ``hub-models recipe MODEL`` prints)."""
    path = recipe_path(model_cls)
    if path is None:
        raise HubModelsError(
            f"{model_cls.model_id} ships no recipe file; it trains with its train_defaults: "
            f"{getattr(model_cls, 'train_defaults', {})}"
        )
    return path.read_text(encoding="utf-8")
