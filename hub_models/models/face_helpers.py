"""Pieces both face GANs use for generation, kept here once so each plugin file still reads on its own:
the CelebA terms note, the truncation input, spherical interpolation, and BatchNorm folding for fast inference."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..contract import Input

CELEBA_NOTE = (
    "Trained on CelebA (Liu et al., CUHK MMLab): **non-commercial research use only, CelebA terms**. The "
    "weights may reproduce features of people in the training set."
)

TRUNCATION = Input(
    "truncation",
    "float",
    1.0,
    label="truncation ψ",
    minimum=0.6,  # below it the faces wash out into one brown mean face (0.5 already ghostly, 0.1 plain squares)
    maximum=1.0,
    help="scale latents toward the mean (0): lower = more typical, less varied faces",
)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors ``a`` and ``b`` (D) at fractions ``t`` (T) → T×D."""
    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def fold_batchnorm(seq: nn.Sequential) -> nn.Sequential:
    """An eval-only copy of ``seq`` with every (ConvTranspose2d|Conv2d, BatchNorm2d) pair fused into one conv."""
    layers: list[nn.Module] = []
    modules = list(copy.deepcopy(seq).eval())
    i = 0
    while i < len(modules):
        layer = modules[i]
        nxt = modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d) and isinstance(nxt, nn.BatchNorm2d):
            layers.append(fuse_conv_bn_eval(layer, nxt, transpose=isinstance(layer, nn.ConvTranspose2d)))
            i += 2
        else:
            layers.append(layer)
            i += 1
    return nn.Sequential(*layers).eval().requires_grad_(False)


class FoldedGenerator:
    """The BN-folded, eval-only copy of a generator for inference, rebuilt whenever its weights change.

    Training mode gets the real network; on the CPU the copy runs channels_last, in ``dtype`` (bfloat16 is ~3x
    faster than float32 on CPUs with AVX512-BF16/AMX, pixels within 2/255).
    """

    def __init__(self) -> None:
        self._cached: tuple[tuple, nn.Module] | None = None

    def get(self, net: nn.Module, layers: nn.Sequential, dtype: torch.dtype) -> nn.Module:
        if net.training:
            return net
        params = net.state_dict().values()  # detached views share the parameters' version counters
        device = next(iter(params)).device
        version = (id(net), device, sum(p._version for p in params), dtype)
        if self._cached is None or self._cached[0] != version:
            fused = fold_batchnorm(layers).to(device, dtype)
            if device.type == "cpu":
                fused = fused.to(memory_format=torch.channels_last)
            self._cached = (version, fused)
        return self._cached[1]
