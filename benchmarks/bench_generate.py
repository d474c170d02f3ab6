"""Latency of generating 64 faces with dcgan-faces: the plain network, `generate` of the model as loaded, and
`generate` after `optimize_for_inference` (BatchNorm folded into the convolutions, channels_last), in float32
(what `hub-models generate` uses) and in bfloat16 (the demo's choice on bf16 CPUs). Median of repeated runs,
measured in one process.

    python benchmarks/bench_generate.py [--repeats 30] [--out benchmarks/results/generate.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from record import write_result

import hub_models
from hub_models.inference import optimize_for_inference


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/generate.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = hub_models.load("dcgan-faces", device="cpu")
    except hub_models.HubModelsError:  # latency does not depend on the weights' values
        model = hub_models.get_model_class("dcgan-faces")()
    z = torch.randn(64, 100, 1, 1, generator=torch.Generator().manual_seed(0))

    def plain() -> None:
        with torch.no_grad():
            model.net.eval()(z)

    fast32, fast16 = optimize_for_inference(model), optimize_for_inference(model, torch.bfloat16)
    result = {
        "benchmark": "generate_64_faces_ms",
        "threads": torch.get_num_threads(),
        "plain_ms": round(timed(plain, args.repeats), 2),
        "generate_unoptimized_ms": round(timed(lambda: model.generate(64, seed=0), args.repeats), 2),
        "generate_ms": round(timed(lambda: fast32.generate(64, seed=0), args.repeats), 2),
        "generate_bf16_ms": round(timed(lambda: fast16.generate(64, seed=0), args.repeats), 2),
    }
    exact = model.generate(64, seed=0)
    for name, fast in (("fp32", fast32), ("bf16", fast16)):  # in [0, 1]
        result[f"{name}_max_abs_diff"] = round(float((fast.generate(64, seed=0) - exact).abs().max()), 5)
    result["goal_ms"] = 30
    result["speedup"] = round(result["plain_ms"] / result["generate_ms"], 3)
    result["speedup_bf16"] = round(result["plain_ms"] / result["generate_bf16_ms"], 3)
    write_result(result, args.out)


if __name__ == "__main__":
    main()
