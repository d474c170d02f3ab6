"""BatchNorm statistics for an averaged generator, recomputed from its own samples."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..spec import move_to

if TYPE_CHECKING:
    from ..contract import GenerativeModel


def recalibrate_batchnorm(model: GenerativeModel, batch_size: int, batches: int = 50, seed: int = 0) -> None:
    """Recompute the BatchNorm running statistics of ``model.net`` from its own latents (no-op without BN).

    EMA averages the weights and the running statistics separately, and the averaged statistics do not match
    the activations of the averaged weights: cgan-digits exported that way scored 93.4% label accuracy, 98.9%
    once recalibrated (98.5% without EMA). Like ``torch.optim.swa_utils.update_bn``, which only feeds a model
    one input tensor, while conditional generators take latents and labels.
    """
    norms = [m for m in model.net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over all the batches
    generator = torch.Generator().manual_seed(seed)
    model.net.train()
    with torch.no_grad():
        for _ in range(batches):
            model.decode(move_to(model.sample_latents(batch_size, generator), model.device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.net.eval()
