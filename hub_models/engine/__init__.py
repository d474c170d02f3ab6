"""The shared training engine: one loop, checkpoints, logging, devices and DDP for every plugin."""

from .loop import CHECKPOINT_NAME, fit
from .recipe import Recipe, model_recipe, packaged_recipes, read_recipe, recipe_text, resolve_training
from .settings import TrainSettings
from .trainer import Trainable, Trainer

__all__ = [
    "CHECKPOINT_NAME",
    "Recipe",
    "TrainSettings",
    "Trainable",
    "Trainer",
    "fit",
    "model_recipe",
    "packaged_recipes",
    "read_recipe",
    "recipe_text",
    "resolve_training",
]
