"""Convolutions computed as matrix products where oneDNN's direct convolutions are slow: an exact fast path for any
network.

Two cases, each the same products as the convolution, summed in another order (results agree to float rounding, in
float32 and bfloat16):

- **a convolution that is one product.** A DCGAN starts with a transposed convolution of a 1x1 latent
  (``ConvTranspose2d(nz, C, 4, 1, 0)`` on ``nz x 1 x 1``: the latent projected to a 4x4 map) and ends with a
  convolution whose kernel covers its whole 4x4 input (D's score). Both are a product of a (batch x inputs) matrix
  with the weight. As one product, DCGAN G's first layer (batch 128, bf16, forward + backward) took 2.8 ms instead of
  14.5 ms.
- **a convolution on a small map** (on the CPU): when the input of a transposed convolution or the output of a
  convolution has at most ``SMALL_MAP`` positions (a DCGAN's 4x4 -> 8x8 and 8x8 -> 4x4 layers). oneDNN blocks its
  direct convolutions over positions, and 16 positions leave its matrix units idle: on this project's CPU (AMX bf16,
  batch 128) those two layers ran at 0.05-0.15 TFLOP/s where a matrix product runs at 0.4-1.1. Written as im2col
  (each output's input window as one row) and one product, with the product's transpose for the gradients, the
  forward + backward of each took 2.5-3.6x less time, and a DCGAN training step on two threads took 1.2-1.4x as long
  with the direct convolutions (``benchmarks/bench_train_step.py``, variant ``direct_small_maps``). On 8x8 maps the
  two are even, and on larger maps the im2col copies cost more than they save, so those stay oneDNN's.

``use_matmul_convs(net)`` changes, in place, the class of every plain ``nn.ConvTranspose2d`` / ``nn.Conv2d`` of
``net`` to a subclass whose ``forward`` takes a product when the input has such a shape (and the layer has no groups,
dilation, output padding or non-zero padding mode), and the parent's convolution otherwise. Parameters, their names
and the state dict are unchanged (checkpoints and exports stay interchangeable). The engine applies it to the networks
it trains and ``hub_models.inference`` to the ones it serves.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

SMALL_MAP = 16  # positions (4x4): at or under it a CPU convolution runs as im2col + one product (see above)


def _plain(layer: nn.Conv2d | nn.ConvTranspose2d) -> bool:
    return layer.groups == 1 and layer.dilation == (1, 1) and layer.padding_mode == "zeros"


def _autocast(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """The tensors in the autocast dtype when autocast is on (a custom autograd function is not cast for us)."""
    device = tensors[0].device.type
    if not torch.is_autocast_enabled(device):
        return list(tensors)
    dtype = torch.get_autocast_dtype(device)
    return [t.to(dtype) for t in tensors]


def _windows(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], out: tuple[int, int]) -> torch.Tensor:
    """im2col of an (already padded) NCHW tensor: [N * out_h * out_w, kh * kw * C], in (ky, kx, c) order."""
    n, c = x.shape[:2]
    nhwc = x.permute(0, 2, 3, 1).contiguous()  # free for a channels_last tensor
    sn, sh, sw, sc = nhwc.stride()
    rows = nhwc.as_strided((n, *out, *kernel, c), (sn, stride[0] * sh, stride[1] * sw, sh, sw, sc))
    return rows.reshape(n * out[0] * out[1], kernel[0] * kernel[1] * c)


def _overlap_add(
    rows: torch.Tensor, n: int, grid: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], size: tuple
) -> torch.Tensor:
    """col2im, the adjoint of ``_windows``: each row's kh x kw x C window added at its place in a padded map of
    ``size`` (H, W, C); returns it NCHW (channels_last memory)."""
    (gh, gw), (kh, kw), (sh, sw) = grid, kernel, stride
    windows = rows.view(n, gh, gw, kh, kw, size[2])
    out = rows.new_zeros(n, *size)
    for ky in range(kh):
        for kx in range(kw):
            out[:, ky : ky + sh * (gh - 1) + 1 : sh, kx : kx + sw * (gw - 1) + 1 : sw] += windows[:, :, :, ky, kx]
    return out.permute(0, 3, 1, 2)


class _ConvAsProduct(torch.autograd.Function):
    """y = im2col(x) @ W^T; dW = dy^T @ im2col(x); dx = col2im(dy @ W)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, stride: tuple, padding: tuple) -> torch.Tensor:
        c_out, c_in, kh, kw = weight.shape
        (ph, pw), n = padding, len(x)
        padded = F.pad(x, (pw, pw, ph, ph))
        out = ((padded.shape[2] - kh) // stride[0] + 1, (padded.shape[3] - kw) // stride[1] + 1)
        rows = _windows(padded, (kh, kw), stride, out)
        w = weight.permute(0, 2, 3, 1).reshape(c_out, kh * kw * c_in)
        ctx.save_for_backward(rows, w)
        ctx.shapes = (n, out, (kh, kw), stride, padding, padded.shape[2:], x.shape[2:])
        return (rows @ w.T).view(n, *out, c_out).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        rows, w = ctx.saved_tensors
        n, out, kernel, stride, (ph, pw), padded_hw, (h, wd) = ctx.shapes
        grad = grad.permute(0, 2, 3, 1).reshape(n * out[0] * out[1], -1)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            c_in = w.shape[1] // (kernel[0] * kernel[1])
            grad_x = _overlap_add(grad @ w, n, out, kernel, stride, (*padded_hw, c_in))[:, :, ph : ph + h, pw : pw + wd]
        if ctx.needs_input_grad[1]:
            grad_w = (grad.T @ rows).view(len(w), *kernel, -1).permute(0, 3, 1, 2)
        return grad_x, grad_w, None, None


class _ConvTransposeAsProduct(torch.autograd.Function):
    """y = col2im(x @ W); dx = im2col(dy) @ W^T; dW = x^T @ im2col(dy) (the convolution's passes, swapped)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, stride: tuple, padding: tuple) -> torch.Tensor:
        c_in, c_out, kh, kw = weight.shape
        (n, _, h, wd), (sh, sw), (ph, pw) = x.shape, stride, padding
        flat = x.permute(0, 2, 3, 1).reshape(n * h * wd, c_in)
        w = weight.permute(0, 2, 3, 1).reshape(c_in, kh * kw * c_out)
        padded_hw = ((h - 1) * sh + kh, (wd - 1) * sw + kw)
        ctx.save_for_backward(flat, w)
        ctx.shapes = (n, (h, wd), (kh, kw), stride, padding)
        y = _overlap_add(flat @ w, n, (h, wd), (kh, kw), stride, (*padded_hw, c_out))
        return y[:, :, ph : padded_hw[0] - ph, pw : padded_hw[1] - pw]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        flat, w = ctx.saved_tensors
        n, (h, wd), kernel, stride, (ph, pw) = ctx.shapes
        rows = _windows(F.pad(grad, (pw, pw, ph, ph)), kernel, stride, (h, wd))
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = (rows @ w.T).view(n, h, wd, -1).permute(0, 3, 1, 2)
        if ctx.needs_input_grad[1]:
            grad_w = (flat.T @ rows).view(len(w), *kernel, -1).permute(0, 3, 1, 2)
        return grad_x, grad_w, None, None


def _with_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return y if bias is None else y + bias.to(y.dtype)[:, None, None]


class MatmulConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` computed as a product for a 1x1 input, and as one plus col2im for a small one (CPU)."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.dim() != 4 or output_size or self.output_padding != (0, 0) or not _plain(self):
            return super().forward(x, output_size)
        c_in, c_out, kh, kw = self.weight.shape
        if x.shape[-2:] == (1, 1) and self.padding == (0, 0):
            # out[b, o, y, x] = sum_i z[b, i] W[i, o, y, x]; the weight in (inputs, kh*kw*outputs) order makes the
            # product come out channels_last, oneDNN's fast layout
            y = x.flatten(1) @ self.weight.permute(0, 2, 3, 1).reshape(c_in, kh * kw * c_out)
            return _with_bias(y.view(len(x), kh, kw, c_out).permute(0, 3, 1, 2), self.bias)
        if x.device.type == "cpu" and x.shape[-2] * x.shape[-1] <= SMALL_MAP:
            y = _ConvTransposeAsProduct.apply(*_autocast(x, self.weight), self.stride, self.padding)
            return _with_bias(y, self.bias)
        return super().forward(x, output_size)


class MatmulConv2d(nn.Conv2d):
    """``nn.Conv2d`` computed as a product when its kernel covers its input, and as im2col + one product when its
    output is small (CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or isinstance(self.padding, str) or not _plain(self):
            return super().forward(x)
        c_out, _, kh, kw = self.weight.shape
        if x.shape[-2:] == (kh, kw) and self.padding == (0, 0):
            # out[b, o] = sum_iyx x[b, i, y, x] W[o, i, y, x], in (y, x, channel) order on both sides: a channels_last
            # input flattens without a copy
            y = x.permute(0, 2, 3, 1).reshape(len(x), -1) @ self.weight.permute(0, 2, 3, 1).reshape(c_out, -1).T
            return _with_bias(y[:, :, None, None], self.bias)
        (ph, pw), (sh, sw) = self.padding, self.stride
        out = ((x.shape[-2] + 2 * ph - kh) // sh + 1) * ((x.shape[-1] + 2 * pw - kw) // sw + 1)
        if x.device.type == "cpu" and 0 < out <= SMALL_MAP:
            return _with_bias(_ConvAsProduct.apply(*_autocast(x, self.weight), self.stride, self.padding), self.bias)
        return super().forward(x)


def use_matmul_convs(net: nn.Module) -> nn.Module:
    """Give every plain ``nn.ConvTranspose2d`` / ``nn.Conv2d`` of ``net`` its matrix-product fast path (in place)."""
    for layer in net.modules():
        if type(layer) is nn.ConvTranspose2d:
            layer.__class__ = MatmulConvTranspose2d
        elif type(layer) is nn.Conv2d:
            layer.__class__ = MatmulConv2d
    return net
