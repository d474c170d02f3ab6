"""Engine settings: how to train (not what): steps, batch, devices, checkpoints, logging."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..contract import config_from_dict


@dataclass
class TrainSettings:
    epochs: int = 1
    steps: int | None = None  # total optimiser steps; overrides epochs when set
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    checkpoint_every: int = 500  # steps between training checkpoints (one is always written at the end)
    log_every: int = 20  # steps between host syncs for progress bar / TensorBoard
    sample_count: int = 64  # size of the fixed-noise grid drawn at every epoch end
    data_limit: int | None = None  # train on the first N examples only (quick experiments, tests)
    dry_run: bool = False  # a few batches through the whole pipeline, then stop
    dry_run_steps: int = 3
    resume: bool = False
    amp: bool = False  # bfloat16 autocast (CUDA, or CPUs with bf16 support)
    channels_last: bool = False
    compile: bool = False  # torch.compile the trained networks
    threads: int | None = None  # torch.set_num_threads on CPU
    lr_schedule: str = "constant"  # constant | linear (decay every optimiser's lr linearly to 0 at the last step)
    ema_decay: float | None = None  # keep an exponential moving average of the generator and export it
    ema_start_epoch: int = 0  # begin the average at this epoch (the first update copies G), like SWA's swa_start
    progress: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        settings = config_from_dict(cls, data, what="train settings")
        settings.validate()
        return settings

    def validate(self) -> None:
        from ..errors import HubModelsError

        for name in ("epochs", "batch_size", "checkpoint_every", "log_every", "sample_count", "dry_run_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise HubModelsError(f"train setting {name} must be a positive integer, got {value!r}")
        for name in ("steps", "data_limit", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise HubModelsError(f"train setting {name} must be a positive integer, got {value!r}")

        if self.lr_schedule not in {"constant", "linear"}:
            raise HubModelsError(f"train setting lr_schedule must be 'constant' or 'linear', got {self.lr_schedule!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise HubModelsError(f"train setting ema_decay must be between 0 and 1, got {self.ema_decay!r}")
        if not isinstance(self.ema_start_epoch, int) or self.ema_start_epoch < 0:
            raise HubModelsError(
                f"train setting ema_start_epoch must be a non-negative integer, got {self.ema_start_epoch!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
