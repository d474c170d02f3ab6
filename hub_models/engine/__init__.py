"""The shared training engine: one loop, checkpoints, logging, devices and DDP for every plugin."""

from .loop import CHECKPOINT_NAME, fit
from .settings import TrainSettings
from .trainer import Trainable, Trainer

__all__ = ["CHECKPOINT_NAME", "TrainSettings", "Trainable", "Trainer", "fit"]
