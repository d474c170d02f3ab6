"""The shared training engine: one loop, checkpoints, logging, devices and DDP for every plugin."""

from .loop import CHECKPOINT_NAME, fit
from .settings import TrainSettings

__all__ = ["CHECKPOINT_NAME", "TrainSettings", "fit"]
