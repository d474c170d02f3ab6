"""The plan of a run, in pure functions: how many batches an epoch has, which examples each epoch visits, the
learning-rate factor at each step, and the fingerprint that ties a checkpoint to its data. A resumed run recomputes
them from the checkpoint's settings, so they depend only on their arguments.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from ..errors import HubModelsError


def lr_factor(settings: dict[str, Any], step: int, total: int, per_epoch: int) -> float:
    """The factor on every optimiser's lr at ``step`` of a ``total``-step run planned with ``settings`` (a dict).

    The linear schedule is computed here for torch's LambdaLR; the step schedule is torch's StepLR, mirrored here
    only so a resumed run can compare two plans (:meth:`Trainer.check_resumable`).
    """
    schedule = settings.get("lr_schedule", "constant")
    if schedule == "linear":  # constant until the decay start (0: from the first step), then linearly to 0
        start = settings.get("lr_decay_start_epoch", 0) * per_epoch
        return 1.0 if step < start else 1 - (step - start) / (total - start)
    if schedule == "step":
        return settings["lr_gamma"] ** (step // per_epoch)
    return 1.0


def batches_per_epoch(n: int, batch: int, world: int) -> int:
    per_epoch = n // (batch * world)  # drop the last incomplete batch, as DataLoader(drop_last=True)
    if per_epoch < 1:
        raise HubModelsError(
            f"the data set has {n} examples, fewer than one batch of {batch} x {world} processes: "
            "lower --batch-size or add data"
        )
    return per_epoch


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle of one epoch depends only on (seed, epoch), so a resumed run sees the same batches."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def data_fingerprint(data: dict[str, torch.Tensor]) -> str:
    """A digest of the training tensors (names, dtypes, shapes and bytes): a resumed run must see the same data."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(data):
        tensor = data[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
