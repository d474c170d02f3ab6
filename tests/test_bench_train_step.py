"""The training-step benchmark's own-products limit counts exactly the operations torch's flop counter counts."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_train_step import ProductShapes

from hub_models.matmul_convs import use_matmul_convs


def test_each_convolution_pass_becomes_a_product_of_the_same_operation_count():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.ConvTranspose2d(8, 6, 4, 2, 1),  # 5x5 -> 10x10: a direct convolution
        nn.ReLU(),
        nn.Conv2d(6, 5, 3, 2, 1),  # 10x10 -> 5x5
        nn.Conv2d(5, 4, 4, 2, 1),  # 5x5 -> 2x2: a small map, computed as im2col and a product
        nn.Flatten(),
        nn.Linear(16, 1),
    )
    use_matmul_convs(net)
    x = torch.randn(3, 8, 5, 5, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    with ProductShapes() as recorder:
        net(x).sum().backward()
    assert sum(2 * m * k * n for m, k, n in recorder.shapes) == counter.get_total_flops()
    assert len(recorder.shapes) == 12  # 4 layers: forward, input gradient, weight gradient each
