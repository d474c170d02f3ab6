"""Engine settings: how to train (not what): steps, batch, devices, checkpoints, logging."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..spec import config_from_dict

LR_SCHEDULES = ("constant", "linear", "step")


def _setting(default: Any, help: str, **metadata: Any) -> Any:
    """A field with the one-line help that ``hub-models train --help`` shows (the CLI is generated from these)."""
    return field(default=default, metadata={"help": help, **metadata})


@dataclass
class TrainSettings:
    """How to train (the recipe's [train] table, ``train()`` keywords, ``hub-models train`` options)."""

    epochs: int = _setting(1, "passes over the training data")
    steps: int | None = _setting(None, "total optimiser steps (overrides epochs)")
    batch_size: int = _setting(64, "examples per optimiser step and process")
    seed: int = _setting(0, "seeds the initialisation, the shuffles and the noise of the whole run")
    device: str = _setting("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    checkpoint_every: int = _setting(500, "steps between training checkpoints (one is always written at the end)")
    log_every: int = _setting(20, "steps between host syncs for the progress bar and TensorBoard")
    sample_count: int = _setting(64, "size of the fixed-noise sample grid drawn at every epoch end")
    data_limit: int | None = _setting(None, "train on the first N examples only")
    dry_run: bool = _setting(False, "a few batches through every stage of the pipeline but evaluation, then stop")
    dry_run_steps: int = _setting(3, "steps of a dry run")
    resume: bool = _setting(False, "continue the run in --out from its checkpoint")
    amp: bool = _setting(False, "bfloat16 autocast (CUDA, or a CPU with bf16 support)")
    channels_last: bool = _setting(False, "channels_last memory format for the trained networks and image batches")
    compile: bool = _setting(False, "torch.compile the trained networks")
    threads: int | None = _setting(None, "torch CPU threads")
    lr_schedule: str = _setting(
        "constant",
        "constant; linear: every optimiser's lr decays to 0 at the last step (from lr_decay_start_epoch); step: it "
        "is multiplied by lr_gamma after every epoch (StepLR)",
        choices=LR_SCHEDULES,
    )
    lr_gamma: float | None = _setting(None, "with lr_schedule = step: the factor applied to the lr after every epoch")
    lr_decay_start_epoch: int = _setting(
        0, "with lr_schedule = linear: hold the lr until this epoch, then decay it (as pix2pix's n_epochs_decay)"
    )
    ema_decay: float | None = _setting(None, "export an exponential moving average of the generator with this decay")
    ema_start_epoch: int = _setting(0, "begin the average at this epoch (its first update copies G), as SWA's start")
    eval_every: int | None = _setting(
        None,
        "optimiser steps between evaluations of the exported generator (the EMA when there is one) with the model's "
        "declared metrics: a curve (curve.jsonl, curve.png, TensorBoard) and the best export in best/; 0: none",
    )
    eval_samples: int | None = _setting(None, "samples per evaluation during training (default: the model's protocol)")
    progress: bool = _setting(True, "show a progress bar")

    def __post_init__(self) -> None:
        self.validate()  # once, when the settings of a run are made (resolve_training, or a caller's own)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        return config_from_dict(cls, data, what="train settings")

    def validate(self) -> None:
        from ..errors import HubModelsError

        for name in ("epochs", "batch_size", "checkpoint_every", "log_every", "sample_count", "dry_run_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise HubModelsError(f"train setting {name} must be a positive integer, got {value!r}")
        for name in ("steps", "data_limit", "threads", "eval_samples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise HubModelsError(f"train setting {name} must be a positive integer, got {value!r}")

        if self.eval_every is not None and (not isinstance(self.eval_every, int) or self.eval_every < 0):
            raise HubModelsError(
                f"train setting eval_every must be a non-negative integer (0: no evaluation), got {self.eval_every!r}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise HubModelsError(
                f"train setting lr_schedule must be 'constant', 'linear' or 'step', got {self.lr_schedule!r}"
            )
        if self.lr_schedule == "step" and not (isinstance(self.lr_gamma, int | float) and 0.0 < self.lr_gamma <= 1.0):
            raise HubModelsError(
                f"train setting lr_schedule = 'step' needs lr_gamma between 0 and 1 (e.g. 0.7), got {self.lr_gamma!r}"
            )
        if self.lr_schedule != "step" and self.lr_gamma is not None:
            raise HubModelsError(
                f"train setting lr_gamma applies only to lr_schedule = 'step' (here {self.lr_schedule!r}): drop it "
                "or set lr_schedule = 'step'"
            )
        if not isinstance(self.lr_decay_start_epoch, int) or self.lr_decay_start_epoch < 0:
            raise HubModelsError(
                f"train setting lr_decay_start_epoch must be a non-negative integer, got {self.lr_decay_start_epoch!r}"
            )
        if self.lr_decay_start_epoch and self.lr_schedule != "linear":
            raise HubModelsError(
                "train setting lr_decay_start_epoch applies only to lr_schedule = 'linear' "
                f"(here {self.lr_schedule!r}): drop it or set lr_schedule = 'linear'"
            )
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise HubModelsError(f"train setting ema_decay must be between 0 and 1, got {self.ema_decay!r}")
        if not isinstance(self.ema_start_epoch, int) or self.ema_start_epoch < 0:
            raise HubModelsError(
                f"train setting ema_start_epoch must be a non-negative integer, got {self.ema_start_epoch!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
