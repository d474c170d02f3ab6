"""What every BCE GAN here shares: the DCGAN initialisation, Adam for G and D, and the alternating D/G update.

Each plugin builds its own batch (real images, labels, fakes) and passes closures that score them, so its
file still shows the whole loss; only the update order lives here, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ..spec import TrainingSetup


def dcgan_init(module: nn.Module) -> None:
    """DCGAN init: conv weights N(0, 0.02); BatchNorm weights N(1, 0.02), biases 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def adam_pair(
    gen: nn.Module,
    disc: nn.Module,
    lr: float,
    beta1: float,
    beta2: float = 0.999,
    lr_d: float | None = None,
    **adam: object,
) -> TrainingSetup:
    """G and D with one Adam each (the DCGAN setting: lr 2e-4, betas (0.5, 0.999)); ``adam``: e.g. fused=True.

    ``lr_d``: D's own learning rate (the two time-scale update rule), ``lr`` when None.
    """
    betas = (beta1, beta2)
    return TrainingSetup(
        nets={"generator": gen, "discriminator": disc},
        optimizers={
            "generator": torch.optim.Adam(gen.parameters(), lr=lr, betas=betas, **adam),
            "discriminator": torch.optim.Adam(disc.parameters(), lr=lr if lr_d is None else lr_d, betas=betas, **adam),
        },
    )


@contextlib.contextmanager
def frozen(disc: nn.Module) -> Iterator[None]:
    """Score G's fakes for G's update without D's weight gradients.

    G's loss needs D's gradient with respect to its input only; with D's parameters requiring gradients, autograd
    also computes D's weight gradients, the costlier part of D's backward pass (DCGAN D's 256->512 convolution at
    batch 128 in bf16 on one CPU thread: forward + backward 147 ms with them, 64 ms without), only for the next D
    step to discard them; under DDP they were even all-reduced. Inside, D's parameters require no gradient and a
    DDP-wrapped D skips its gradient sync (it would otherwise wait for gradients that never come). The results are
    the same: G's gradients do not depend on D's.
    """
    params = [p for p in disc.parameters() if p.requires_grad]
    sync = disc.no_sync() if hasattr(disc, "no_sync") else contextlib.nullcontext()
    with sync:
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)


def bce_gan_step(
    setup: TrainingSetup,
    real_logits: Callable[[], torch.Tensor],
    fake_logits: Callable[[bool], torch.Tensor],
    d_penalty: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """(1) D: maximise log D(x) + log(1 - D(G(z))); (2) G: maximise log D(G(z)) (non-saturating).

    ``real_logits()`` scores the real batch; ``fake_logits(for_d)`` scores the fakes — detached when
    ``for_d`` is True. Logits + BCEWithLogits is the sources' Sigmoid + BCELoss, numerically safer and
    autocast-safe. ``d_penalty(real_logits)``, when given, is added to D's loss (e.g. an R1 gradient penalty,
    which needs the logits of the real batch to differentiate them with respect to the images).
    """
    opt_g, opt_d = setup.optimizers["generator"], setup.optimizers["discriminator"]
    opt_d.zero_grad(set_to_none=True)
    on_real = real_logits()
    loss_d = F.binary_cross_entropy_with_logits(on_real, torch.ones_like(on_real))
    on_fake = fake_logits(True)
    loss_d = loss_d + F.binary_cross_entropy_with_logits(on_fake, torch.zeros_like(on_fake))
    losses = {}
    if d_penalty is not None:
        losses["penalty_d"] = d_penalty(on_real)
        loss_d = loss_d + losses["penalty_d"]
    loss_d.backward()
    opt_d.step()
    opt_g.zero_grad(set_to_none=True)
    with frozen(setup.nets["discriminator"]):  # the graph is built here: backward() below skips D's weights
        on_fake = fake_logits(False)
    loss_g = F.binary_cross_entropy_with_logits(on_fake, torch.ones_like(on_fake))
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d, "loss_g": loss_g, **losses}
