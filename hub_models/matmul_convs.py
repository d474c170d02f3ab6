"""Two convolutions that are one matrix product, computed as one: an exact fast path for any network.

A DCGAN starts with a transposed convolution of a 1x1 latent (``ConvTranspose2d(nz, C, 4, 1, 0)`` on ``nz x 1 x 1``:
the latent projected to a 4x4 map) and ends with a convolution whose kernel covers its whole 4x4 input (D's score).
Both are a product of a (batch x inputs) matrix with the weight, but oneDNN runs them as general convolutions, and on
CPUs that is slow: a 1x1-input transposed convolution ran at under 1% of the machine's bfloat16 matrix-product rate.
As one product, DCGAN G's first layer (batch 128, bf16, forward + backward) took 2.8 ms instead of 14.5 ms; the
whole training step, ~5% less on one thread (``benchmarks/bench_train_step.py``, variant ``convolutions``).

``use_matmul_convs(net)`` changes, in place, the class of every plain ``nn.ConvTranspose2d`` / ``nn.Conv2d`` of
``net`` to a subclass whose ``forward`` takes the matrix product when the input has that shape (and the layer has no
padding, groups or dilation), and the parent's convolution otherwise. Parameters, their names and the state dict are
unchanged (checkpoints and exports stay interchangeable); results agree to float rounding, in float32 and bfloat16.
The engine applies it to the networks it trains and ``hub_models.inference`` to the ones it serves.
"""

from __future__ import annotations

import torch
from torch import nn


def _plain(layer: nn.Conv2d | nn.ConvTranspose2d) -> bool:
    return layer.padding == (0, 0) and layer.groups == 1 and layer.dilation == (1, 1)


class MatmulConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` whose 1x1-input case is one product: out[b, o, y, x] = sum_i z[b, i] W[i, o, y, x]."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (1, 1) or output_size or self.output_padding != (0, 0) or not _plain(self):
            return super().forward(x, output_size)
        c_in, c_out, kh, kw = self.weight.shape
        # the weight in (inputs, kh*kw*outputs) order: the product comes out channels_last, oneDNN's fast layout
        y = x.flatten(1) @ self.weight.permute(0, 2, 3, 1).reshape(c_in, kh * kw * c_out)
        y = y.view(len(x), kh, kw, c_out).permute(0, 3, 1, 2)
        return y if self.bias is None else y + self.bias.to(y.dtype)[:, None, None]


class MatmulConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose kernel-covers-its-input case is one product: out[b, o] = sum_iyx x[b,i,y,x] W[o,i,y,x]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_out, _, kh, kw = self.weight.shape
        if x.dim() != 4 or x.shape[-2:] != (kh, kw) or not _plain(self):
            return super().forward(x)
        # (y, x, channel) order on both sides: a channels_last input flattens without a copy
        y = x.permute(0, 2, 3, 1).reshape(len(x), -1) @ self.weight.permute(0, 2, 3, 1).reshape(c_out, -1).T
        y = y[:, :, None, None]
        return y if self.bias is None else y + self.bias.to(y.dtype)[:, None, None]


def use_matmul_convs(net: nn.Module) -> nn.Module:
    """Give every plain ``nn.ConvTranspose2d`` / ``nn.Conv2d`` of ``net`` its matrix-product fast path (in place)."""
    for layer in net.modules():
        if type(layer) is nn.ConvTranspose2d:
            layer.__class__ = MatmulConvTranspose2d
        elif type(layer) is nn.Conv2d:
            layer.__class__ = MatmulConv2d
    return net
