"""The matrix-product fast paths (a DCGAN's first and last layers, convolutions on small maps): same parameters, same
numbers, same gradients."""

from __future__ import annotations

import copy
from unittest import mock

import pytest
import torch
from torch import nn

from hub_models.matmul_convs import MatmulConv2d, MatmulConvTranspose2d, use_matmul_convs


def _pair(layer: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Fresh copies (the parametrised layer is shared between cases): the plain one and the fast one."""
    plain = copy.deepcopy(layer).requires_grad_(True)
    plain.zero_grad(set_to_none=True)
    return plain, use_matmul_convs(copy.deepcopy(plain))


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (nn.ConvTranspose2d(10, 6, 4, 1, 0, bias=False), (5, 10, 1, 1)),  # a DCGAN's latent projection
        (nn.ConvTranspose2d(10, 6, 3, 2, 0, bias=True), (5, 10, 1, 1)),  # any stride, with a bias
        (nn.Conv2d(6, 1, 4, 1, 0, bias=False), (5, 6, 4, 4)),  # a DCGAN's final score
        (nn.Conv2d(6, 3, (4, 2), 2, 0, bias=True), (5, 6, 4, 2)),  # a non-square kernel covering its input
        (nn.ConvTranspose2d(12, 6, 4, 2, 1, bias=False), (5, 12, 4, 4)),  # a DCGAN's 4x4 -> 8x8 layer
        (nn.Conv2d(6, 12, 4, 2, 1, bias=False), (5, 6, 8, 8)),  # a DCGAN's 8x8 -> 4x4 layer
        (nn.ConvTranspose2d(4, 6, (3, 2), (2, 1), (1, 0), bias=True), (5, 4, 3, 2)),  # any kernel, stride, padding
        (nn.Conv2d(4, 6, (3, 2), (1, 2), (0, 1), bias=True), (5, 4, 5, 5)),  # output 3x3 from a 5x5 input
        (nn.Conv2d(4, 6, 3, 2, 0, bias=False), (5, 4, 8, 8)),  # a stride that leaves the last row and column out
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_product_matches_the_convolution_in_value_and_gradient(layer, shape, channels_last):
    torch.manual_seed(0)
    plain, fast = _pair(layer)
    assert type(fast) in (MatmulConv2d, MatmulConvTranspose2d)
    x = torch.randn(shape)
    if channels_last:
        plain, fast = plain.to(memory_format=torch.channels_last), fast.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y1, y2 = plain(x1), fast(x2)
    assert y1.shape == y2.shape
    torch.testing.assert_close(y2, y1, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # training's bfloat16: the same output dtype, bf16-close
        b1, b2 = plain(x), fast(x)
    assert b1.dtype == b2.dtype == torch.bfloat16
    torch.testing.assert_close(b2.float(), b1.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (nn.ConvTranspose2d(4, 4, 4, 2, 1), (2, 4, 5, 5)),  # an input of over 16 positions
        (nn.Conv2d(4, 4, 4, 2, 1), (2, 4, 10, 10)),  # an output of over 16 positions
        (nn.Conv2d(4, 4, 3, 1, 0, groups=2), (2, 4, 5, 5)),  # groups
        (nn.Conv2d(4, 4, 3, 1, 0, dilation=2), (2, 4, 6, 6)),  # dilation
        (nn.Conv2d(4, 4, 3, 1, 1, padding_mode="reflect"), (2, 4, 3, 3)),  # another padding mode
    ],
)
def test_other_shapes_run_the_convolution_unchanged(layer, shape):
    plain, fast = _pair(layer)
    x = torch.randn(shape)
    assert torch.equal(fast(x), plain(x))


def test_parameters_names_and_state_dict_are_the_networks_own():
    from hub_models.models.dcgan_faces import DCGANDiscriminator, DCGANGenerator

    for net in (DCGANGenerator(), DCGANDiscriminator()):
        before = copy.deepcopy(net.state_dict())
        use_matmul_convs(net)
        after = net.state_dict()
        assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
        copy.deepcopy(net).load_state_dict(before, strict=True)


def test_a_dcgan_generator_gives_the_same_faces_either_way():
    from hub_models.models.dcgan_faces import DCGANGenerator

    torch.manual_seed(0)
    plain = DCGANGenerator().eval()
    fast = use_matmul_convs(copy.deepcopy(plain))
    z = torch.randn(4, 100, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(fast(z), plain(z), rtol=1e-5, atol=1e-5)


def test_small_maps_take_the_product_on_the_cpu():
    """A DCGAN's 4x4 -> 8x8 and 8x8 -> 4x4 layers (oneDNN's slowest on the CPU) never reach the direct convolution."""
    from torch.nn import functional

    up = use_matmul_convs(nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False))
    down = use_matmul_convs(nn.Conv2d(8, 16, 4, 2, 1, bias=False))
    x = torch.randn(3, 16, 4, 4, requires_grad=True)
    refuse = {"side_effect": AssertionError("the direct convolution ran")}
    with (
        mock.patch.object(functional, "conv2d", **refuse),
        mock.patch.object(functional, "conv_transpose2d", **refuse),
        torch.autocast("cpu", dtype=torch.bfloat16),
    ):
        y = down(up(x))
        y.float().sum().backward()
    assert y.shape == (3, 16, 4, 4) and y.dtype == torch.bfloat16
    assert x.grad is not None and up.weight.grad is not None and down.weight.grad is not None
