"""The matrix-product fast path of a DCGAN's first and last layers: same parameters, same numbers, same gradients."""

from __future__ import annotations

import copy

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
        (nn.ConvTranspose2d(4, 4, 4, 2, 1), (2, 4, 3, 3)),  # a larger input: the convolution itself
        (nn.ConvTranspose2d(4, 4, 4, 1, 1), (2, 4, 1, 1)),  # padding
        (nn.Conv2d(4, 4, 4, 2, 1), (2, 4, 4, 4)),  # padding
        (nn.Conv2d(4, 4, 3, 1, 0), (2, 4, 5, 5)),  # a kernel smaller than the input
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
