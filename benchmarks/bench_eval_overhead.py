"""What evaluation during training costs at each recipe's settings, measured in one run per model.

For each model: the median time of one optimiser step of its recipe (``hub_models.engine.Trainer`` with the recipe's
batch size, autocast, memory format and threads, on synthetic training data of the right shape), and the time of one
evaluation as ``fit`` runs it (``hub_models.engine.evaluation``: a copy of the export, BatchNorm recalibrated when
the recipe averages, the model's ``evaluate`` on ``eval_samples`` samples of the real test data), twice: the first
also reads the real data's statistics, which the later evaluations of a run reuse. The overhead is
``eval_s / (eval_every * step_s)`` with the second: the share of training time the recipe's evaluations add (goal:
<= 10%); ``first_overhead`` is the first one's.
Needs the data sets (``HUB_MODELS_DATA``; CelebA at ``$HUB_MODELS_DATA/celeba64``) and the ``[eval]`` extra.

    HUB_MODELS_DATA=/path/to/data nice -n -5 python benchmarks/bench_eval_overhead.py [--models dcgan-faces ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from record import write_result

from hub_models.engine import Trainer, resolve_training
from hub_models.engine.evaluation import EVAL_SEED, exported_copy, isolated_rng
from hub_models.locations import ASSETS
from hub_models.registry import get_trainable_class, list_models


def measure(model_id: str, steps: int) -> dict[str, Any]:
    cls = get_trainable_class(model_id)
    config, settings, recipe = resolve_training(cls, settings={"device": "cpu", "progress": False})
    if not settings.eval_every:
        return {"model": model_id, "eval_every": None}
    if settings.threads:
        torch.set_num_threads(settings.threads)
    model = cls(config)
    faces = model.dataset_for(config).startswith("celeba")
    data_root = Path(os.environ["HUB_MODELS_DATA"]) / "celeba64" if faces else None
    if faces:  # random faces of the right size: a step's time does not depend on the pixels
        size = getattr(model, "image_size", 64)
        data = {"images": torch.randint(0, 256, (4 * settings.batch_size, 3, size, size), dtype=torch.uint8)}
    else:  # the (small) test split stands in for the training data
        data = model.load_data(None, "test")
    trainer = Trainer(model, settings, data, device=torch.device("cpu"))
    trainer.ema_start = 0  # the average exists, so the evaluation recalibrates its BatchNorm as fit's would
    run = trainer.run()
    next(run)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        next(run)
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    evaluations = []  # the first reads the real data's statistics, which later ones reuse (in memory or on disk)
    for _ in range(2):
        start = time.perf_counter()
        with isolated_rng(EVAL_SEED):
            net = exported_copy(trainer)
            model.net = net
            samples = {"num_samples": settings.eval_samples} if settings.eval_samples else {}
            metrics = model.evaluate(data_root, seed=EVAL_SEED, **samples)
        evaluations.append(time.perf_counter() - start)
    first_s, eval_s = evaluations
    return {
        "model": model_id,
        "recipe": Path(recipe.source).name,
        "threads": torch.get_num_threads(),
        "eval_every": settings.eval_every,
        "eval_samples": settings.eval_samples or "the model's protocol",
        "step_s": round(step_s, 4),
        "first_eval_s": round(first_s, 2),
        "eval_s": round(eval_s, 2),
        "overhead": round(eval_s / (settings.eval_every * step_s), 4),
        "first_overhead": round(first_s / (settings.eval_every * step_s), 4),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=[*list_models(), *ASSETS], help="default: every recipe")
    parser.add_argument("--steps", type=int, default=5, help="timed optimiser steps per model")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "eval_overhead.json")
    args = parser.parse_args()
    runs = []
    for model_id in args.models:
        runs.append(measure(model_id, args.steps))
        print(json.dumps(runs[-1]), flush=True)
    result = {
        "benchmark": "eval_during_training_overhead",
        "goal_overhead": 0.10,
        "runs": runs,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
