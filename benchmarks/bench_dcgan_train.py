"""Training throughput: the engine's DCGAN step vs a plain loop faithful to the tutorial, measured in one run.

The plain loop is the PyTorch DCGAN tutorial (N. Inkawhich) as written: float batches normalised on the host,
Sigmoid + BCELoss, two backward passes for D, three `.item()` host syncs per step, default Adam.
The engine path is `hub_models.engine.Trainer` (the loop `hub-models train` runs) on the `dcgan-faces` plugin,
with the recipe's options: uint8 data indexed and normalised on the device, BCEWithLogits, bfloat16 autocast,
channels_last, foreach/fused Adam, no per-step host sync. Same architecture, batch 128, same (synthetic uint8) images.

    python benchmarks/bench_dcgan_train.py [--steps 6] [--device cpu] [--out benchmarks/results/dcgan_train.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from record import write_result
from torch import nn

from hub_models.engine import Trainer, TrainSettings
from hub_models.models.dcgan_faces import DCGANDiscriminator, DcganFaces
from hub_models.models.gan_steps import dcgan_init


def plain_loop(images: torch.Tensor, steps: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = DcganFaces()
    net_g = model.net.to(device)
    net_d = nn.Sequential(*DCGANDiscriminator().main, nn.Sigmoid()).to(device)
    net_d.apply(dcgan_init)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    start = None
    for step in range(steps + 1):
        if step == 1:  # the first step warms up allocators and kernels
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        idx = torch.randint(0, len(images), (128,))
        real = ((images[idx].float() / 255 - 0.5) / 0.5).to(device)  # ToTensor + Normalize on the host
        b = real.size(0)
        net_d.zero_grad()
        label = torch.full((b,), 1.0, device=device)
        output = net_d(real).view(-1)
        err_real = criterion(output, label)
        err_real.backward()
        _ = output.mean().item()
        noise = torch.randn(b, 100, 1, 1, device=device)
        fake = net_g(noise)
        label.fill_(0.0)
        output = net_d(fake.detach()).view(-1)
        err_fake = criterion(output, label)
        err_fake.backward()
        _ = output.mean().item()
        opt_d.step()
        net_g.zero_grad()
        label.fill_(1.0)
        output = net_d(fake).view(-1)
        err_g = criterion(output, label)
        err_g.backward()
        _ = output.mean().item()
        opt_g.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * 128 / (time.perf_counter() - start)


def engine_loop(images: torch.Tensor, steps: int, device: torch.device, amp: bool, compile_: bool) -> float:
    """The engine's own step API (hub_models.engine.Trainer): what `hub-models train` runs, minus the disk."""
    settings = TrainSettings(
        steps=steps + 1, batch_size=128, amp=amp, channels_last=True, compile=compile_, device=str(device)
    )
    trainer = Trainer(DcganFaces(), settings, {"images": images}, device=device)
    start, last = None, {}
    for losses in trainer.run():
        last = losses
        if trainer.step == 1:  # the first step (allocations, compilation) is not timed
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
    float(last["loss_g"].detach())  # one host sync at the end
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * 128 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dcgan_train.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images = torch.randint(0, 256, (2048, 3, 64, 64), dtype=torch.uint8)
    plain = plain_loop(images, args.steps, device)
    fast = engine_loop(images, args.steps, device, amp=True, compile_=args.compile)
    exact = engine_loop(images, args.steps, device, amp=False, compile_=False)
    result = {
        "benchmark": "dcgan_train_throughput",
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch_size": 128,
        "steps_timed": args.steps,
        "plain_images_per_s": round(plain, 2),
        "engine_images_per_s": round(fast, 2),
        "engine_fp32_images_per_s": round(exact, 2),
        "speedup": round(fast / plain, 3),
        "speedup_fp32": round(exact / plain, 3),
        "goal_speedup": 3.0 if device.type == "cuda" else 1.5,
        "engine_options": {"amp_bf16": True, "channels_last": True, "compile": args.compile},
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
