"""The shared training engine: one loop, checkpoints, logging, devices and DDP for every plugin."""

from .loop import CHECKPOINT_NAME, fit
from .settings import TrainSettings
from .trainer import Trainer

__all__ = ["CHECKPOINT_NAME", "TrainSettings", "Trainer", "fit"]
