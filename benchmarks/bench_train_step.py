"""How close each face model's training step runs to the machine's limit, measured in one run.

For dcgan-faces and convgan-faces128, one optimiser step of the engine (``hub_models.engine.Trainer``: D step, G
step, Adam, the EMA update, at the recipe's batch size with its bfloat16 autocast and channels_last) on synthetic
uint8 images:

- its operation count: torch's ``FlopCounterMode`` over one step (convolutions and matrix products, forward and
  backward; elementwise work is not counted), in TFLOP;
- its time: the median of ``--steps`` steps after two warm-up steps;
- its rate (TFLOP/s) as a fraction of the bfloat16 matrix-multiply rate of this machine on the same threads (a
  2048x2048 @ 2048x2048 bf16 product), measured for ~0.3 s before each round of steps: each step gets its own
  fraction, and the median of those is reported, so a load that comes and goes affects both sides of a ratio;
- its limit for its own shapes: every convolution pass and matrix product the step runs (recorded by a
  ``TorchDispatchMode``) as a plain bf16 matrix product of the same sizes (a convolution as its im2col product:
  rows = output positions, inner = input channels x kernel taps; its two gradients as that product's transposes),
  timed in each round. ``fraction_of_own_products`` is their total time over the step's (the median per round): the
  step against what it would take if each of its products ran as fast as a matrix product of its sizes does here,
  with the elementwise work (normalisation, activations, Adam, the EMA) free.

The variants of a model take turns step by step (one round: the matmul rate, then one step of each), and
``seconds_vs_first_variant`` is the median of the per-round ratios to the plain step. Variants: ``d_weight_grads``
is the step with G's update computing D's weight gradients too (as before ``gan_steps.frozen``: more work, counted
in its own operation count); for dcgan-faces, ``convolutions`` is the step without the engine's matrix-product paths
(``hub_models.matmul_convs``: its first and last layers as one product each, its 4x4 <-> 8x8 layers as im2col and a
product) and ``direct_small_maps`` the step with only the first of them (the 4x4 <-> 8x8 layers as oneDNN's direct
convolutions); for convgan-faces128 the variant ``polyphase``: the
same parameters (state-dict names and weights), with each 8x8 stride-2 transposed convolution of G computed as one
4x4 stride-1 convolution with 4x the output channels and a pixel shuffle (its four output phases), and each 8x8
stride-2 convolution of D as a pixel unshuffle and one 4x4 stride-1 convolution with 4x the input channels (its four
input phases). Exact in real arithmetic (the same products, summed in another order: ``check_polyphase`` compares
them in float32 and under bf16 autocast), with the same operation count. An FFT form of the same layers is measured
by ``bench_conv_fft.py``. The load average is reported with the numbers: stop other jobs first (a busy CPU is
oversubscribed by 2-thread steps and their times balloon). ``--compile`` adds torch.compile'd networks.

    nice -n -5 python benchmarks/bench_train_step.py [--threads 2] [--steps 5] [--models dcgan-faces ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from record import write_result
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from hub_models import matmul_convs
from hub_models.engine import Trainer, resolve_training
from hub_models.matmul_convs import MatmulConv2d, MatmulConvTranspose2d
from hub_models.models import gan_steps
from hub_models.registry import get_model_class


def matmul_rate(seconds: float = 0.3, n: int = 2048) -> float:
    """bfloat16 matrix-multiply rate of this machine on torch's current threads, in TFLOP/s (the median)."""
    a, b = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
    for _ in range(2):
        a @ b
    times, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e12


class ProductShapes(TorchDispatchMode):
    """Records, as (rows, inner, columns) triples, the matrix product each convolution pass and product would be."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, int, int]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        aten = torch.ops.aten
        if func in (aten.mm.default, aten.addmm.default):
            a, b = args[-2:]
            self.shapes.append((a.shape[0], a.shape[1], b.shape[1]))
        elif func is aten.convolution.default:
            x, w, transposed = args[0], args[1], args[6]
            self.shapes.append(_conv_product(x, w, out, transposed))
        elif func is aten.convolution_backward.default:
            grad, x, w, transposed, mask = args[0], args[1], args[2], args[7], args[10]
            rows, inner, cols = _conv_product(x, w, grad, transposed)
            if mask[0]:  # the input's gradient: grad [rows x cols] @ weight^T [cols x inner]
                self.shapes.append((rows, cols, inner))
            if mask[1]:  # the weight's: im2col^T [inner x rows] @ grad [rows x cols]
                self.shapes.append((inner, rows, cols))
        return out


def _conv_product(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor, transposed: bool) -> tuple[int, int, int]:
    """A convolution x -> y as its im2col product; a transposed one as the product before col2im."""
    if transposed:  # w: [in, out, kh, kw]; one row per input position, one column per (output channel, tap)
        return x.shape[0] * x.shape[2] * x.shape[3], w.shape[0], w[0].numel()
    return y.shape[0] * y.shape[2] * y.shape[3], w[0].numel(), w.shape[0]  # w: [out, in, kh, kw]


def products_seconds(shapes: list[tuple[int, int, int]]) -> float:
    """The time of the given bf16 matrix products, each run once (the first round is the warm-up)."""
    total = 0.0
    for rows, inner, cols in shapes:
        # constant operands: filled at memory speed (randn of convgan's largest ones takes seconds); the values do
        # not change a product's time
        a, b = (
            torch.full((rows, inner), 0.5, dtype=torch.bfloat16),
            torch.full((inner, cols), 0.5, dtype=torch.bfloat16),
        )
        start = time.perf_counter()
        a @ b
        total += time.perf_counter() - start
    return total


class PolyphaseConvTranspose2d(nn.ConvTranspose2d):
    """A stride-2 transposed convolution (even kernel k, no dilation or groups) as one stride-1 convolution with
    kernel k/2 and 4x the output channels, then a pixel shuffle: output pixel (2m+a, 2n+b) only meets the kernel
    taps of parity (a, b). Same parameters as nn.ConvTranspose2d."""

    def forward(self, x: torch.Tensor, output_size: Any = None) -> torch.Tensor:
        cin, cout, k, _ = self.weight.shape
        half = k // 2
        # taps of parity (a, b), flipped for a correlation: w[cin, cout, 2(half-1-i)+a, 2(half-1-j)+b]
        w = self.weight.flip(2, 3).reshape(cin, cout, half, 2, half, 2)  # [.., i, 1-a, j, 1-b] after the flip
        w = w.flip(3, 5).permute(1, 3, 5, 0, 2, 4).reshape(cout * 4, cin, half, half)
        y = F.conv2d(F.pad(x, (half - 1,) * 4), w)
        y = F.pixel_shuffle(y, 2)
        p = self.padding[0]
        if p:
            y = y[..., p:-p, p:-p]
        return y if self.bias is None else y + self.bias[:, None, None]


class PolyphaseConv2d(nn.Conv2d):
    """A stride-2 convolution (even kernel k, no padding) as a pixel unshuffle of the input (its four phases as
    channels) and one stride-1 convolution with kernel k/2. Same parameters as nn.Conv2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cout, cin, k, _ = self.weight.shape
        half = k // 2
        out = (x.shape[-1] - k) // 2 + 1
        x = x[..., : 2 * (out + half - 1), : 2 * (out + half - 1)]
        w = self.weight.reshape(cout, cin, half, 2, half, 2).permute(0, 1, 3, 5, 2, 4)
        w = w.reshape(cout, cin * 4, half, half)
        return F.conv2d(F.pixel_unshuffle(x, 2), w, self.bias)


def to_polyphase(net: nn.Module) -> None:
    """Switch every stride-2 8x8 (transposed) convolution of ``net`` to its polyphase form, in place."""
    for module in net.modules():
        if type(module) is nn.ConvTranspose2d and module.stride == (2, 2):
            module.__class__ = PolyphaseConvTranspose2d
        elif type(module) is nn.Conv2d and module.stride == (2, 2) and module.padding == (0, 0):
            module.__class__ = PolyphaseConv2d


def check_polyphase(trainer: Trainer) -> dict[str, float]:
    """Largest difference between the plain and the polyphase networks (same weights), float32 and bf16 autocast."""
    import copy

    gen, disc = trainer.raw_nets["generator"], trainer.raw_nets["discriminator"]
    z = torch.randn(8, 100)
    worst = {}
    for name, autocast in (("float32", False), ("bf16_autocast", True)):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            plain_g, plain_d = copy.deepcopy(gen).eval(), copy.deepcopy(disc).eval()
            fast_g, fast_d = copy.deepcopy(gen).eval(), copy.deepcopy(disc).eval()
            to_polyphase(fast_g)
            to_polyphase(fast_d)
            images = plain_g(z).float()
            worst[f"generator_{name}"] = float((images - fast_g(z).float()).abs().max())
            worst[f"discriminator_{name}"] = float((plain_d(images).float() - fast_d(images).float()).abs().max())
    return worst


def trainer_for(model_id: str, variant: str, compile_: bool) -> Trainer:
    cls = get_model_class(model_id)
    config, settings, _ = resolve_training(
        cls, settings={"device": "cpu", "compile": compile_, "steps": 1000, "ema_start_epoch": 0, "progress": False}
    )
    model = cls(config)
    size = getattr(model, "image_size", 64)
    images = torch.randint(0, 256, (4 * settings.batch_size, 3, size, size), dtype=torch.uint8)
    trainer = Trainer(model, settings, {"images": images}, device=torch.device("cpu"))
    if variant == "convolutions":  # without the engine's matrix-product path for 1x1 / whole-input convolutions
        for net in trainer.raw_nets.values():
            for layer in net.modules():
                if isinstance(layer, MatmulConv2d | MatmulConvTranspose2d):
                    layer.__class__ = layer.__class__.__mro__[1]
    if variant == "polyphase":
        for net in trainer.raw_nets.values():
            to_polyphase(net)
    return trainer


@contextlib.contextmanager
def d_weight_grads(disc: nn.Module) -> Iterator[None]:
    """The G step as it was before ``gan_steps.frozen``: D's weight gradients computed and discarded."""
    yield


def measure(model_id: str, variants: list[str], steps: int, compile_: bool) -> list[dict[str, Any]]:
    """Each variant's step time, the variants taking turns step by step (a load that comes and goes hits all)."""
    trainers = {variant: trainer_for(model_id, variant, compile_) for variant in variants}
    runs = {variant: trainer.run() for variant, trainer in trainers.items()}

    def step(variant: str) -> float:
        frozen = d_weight_grads if variant == "d_weight_grads" else gan_steps.frozen
        small_map = 0 if variant == "direct_small_maps" else matmul_convs.SMALL_MAP
        with mock.patch.object(gan_steps, "frozen", frozen), mock.patch.object(matmul_convs, "SMALL_MAP", small_map):
            start = time.perf_counter()
            losses = next(runs[variant])
            float(losses["loss_d"].detach())  # the step's work is done (a CPU runs it eagerly anyway)
            return time.perf_counter() - start

    flops, products = {}, {}
    for variant in variants:
        for _ in range(2):  # warm-up (and compilation)
            step(variant)
        with FlopCounterMode(display=False) as counter:
            step(variant)
        flops[variant] = counter.get_total_flops()
        with ProductShapes() as recorder:
            step(variant)
        products[variant] = recorder.shapes
    times: dict[str, list[float]] = {variant: [] for variant in variants}
    rates, own_products = [], {variant: [] for variant in variants}
    for _ in range(steps):
        rates.append(matmul_rate())  # the machine's limit now, just before this round of steps
        for variant in variants:
            own_products[variant].append(products_seconds(products[variant]))
        for variant in variants:
            times[variant].append(step(variant))
    results = []
    for variant in variants:
        seconds, flop = statistics.median(times[variant]), flops[variant]
        fractions = [flop / t / 1e12 / r for t, r in zip(times[variant], rates, strict=True)]
        results.append(
            {
                "model": model_id,
                "variant": variant + ("+compile" if compile_ else ""),
                "batch_size": trainers[variant].settings.batch_size,
                "tflop_per_step": round(flop / 1e12, 4),
                "seconds_per_step": round(seconds, 4),
                "seconds_all": [round(t, 4) for t in times[variant]],
                "tflops": round(flop / seconds / 1e12, 4),
                "images_per_s": round(trainers[variant].settings.batch_size / seconds, 2),
                "bf16_matmul_tflops_per_round": [round(r, 3) for r in rates],
                "fraction_of_bf16_matmul": round(statistics.median(fractions), 3),
                "own_products_seconds": round(statistics.median(own_products[variant]), 4),
                "fraction_of_own_products": round(
                    statistics.median(p / t for p, t in zip(own_products[variant], times[variant], strict=True)), 3
                ),
                "fraction_per_step": [round(f, 3) for f in fractions],
                "seconds_vs_first_variant": round(
                    statistics.median(t / t0 for t, t0 in zip(times[variant], times[variants[0]], strict=True)), 3
                ),
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["dcgan-faces", "convgan-faces128"])
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile'd networks")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    runs = []
    for model_id in args.models:
        variants = ["plain", "d_weight_grads"]
        variants += ["polyphase"] if model_id == "convgan-faces128" else ["convolutions", "direct_small_maps"]
        for compile_ in [False, True] if args.compile else [False]:
            runs += measure(model_id, variants, args.steps, compile_)
            print(json.dumps(runs[-len(variants) :]), flush=True)
    result = {
        "benchmark": "train_step_vs_bf16_matmul",
        "threads": args.threads,
        "runs": runs,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
