"""Evaluation during training: the run measures its own export as it goes and keeps its best one.

Every ``eval_every`` optimiser steps (and at the last step) the generator that would be exported now — the EMA of
G with its BatchNorm statistics recomputed when the run averages, else G — is copied and measured with the
model's own ``evaluate`` (its declared metrics: Inception FID for faces, the MNIST classifier's metrics for digits,
the toys' distances) on ``eval_samples`` samples. Each result is a line of ``curve.jsonl`` in the run directory
(redrawn as ``curve.png``) and TensorBoard scalars under ``eval/``; the best export by the model's primary metric
is written to ``best/`` (its provenance says the step). The measurement runs under its own seed in a forked RNG,
on a copy of the networks, so a run with evaluations trains bit for bit the same weights as one without; the best
so far is part of the checkpoint and the curve is cut back to the checkpoint's step on ``--resume``, so a killed and
resumed run writes the same curve and the same best export as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import HubModelsError
from ..locations import CURVE_NAME, CURVE_PICTURE
from ..spec import curve_picture, primary_metric
from ..utils import atomic_path
from .batchnorm import recalibrate_batchnorm
from .trainer import Trainer

if TYPE_CHECKING:
    from ..contract import GenerativeModel

BEST_DIR = "best"
EVAL_SEED = 0  # the samples of every evaluation: one generator seeded 0, as the cards' protocol


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Run the block with torch's and Python's RNGs seeded with ``seed``, and give the training back its states."""
    python_state = random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)


def exported_copy(trainer: Trainer) -> torch.nn.Module:
    """A copy of the generator that :meth:`Trainer.finish` would export now (the average with recalibrated
    BatchNorm statistics, or G), in eval mode; the training networks are untouched."""
    model: GenerativeModel = trainer.model  # type: ignore[assignment]
    net = copy.deepcopy(trainer.sample_net())
    if trainer.ema is not None and trainer.ema.n_averaged > 0:
        training_net, model.net = model.net, net
        try:
            recalibrate_batchnorm(model, trainer.settings.batch_size, seed=trainer.settings.seed)
        finally:
            model.net = training_net
    return net.eval()


def evaluates(trainer: Trainer) -> bool:
    """Whether the run evaluates as it goes: ``eval_every`` is set and the model's declared metrics, made for its
    declared data set, apply to the data set this run trains on (a digit model trained on Fashion-MNIST cannot be
    judged by the MNIST classifier). A run that cannot be measured says so once and trains without evaluations.
    A dry run never evaluates: its few steps on a few examples cannot be measured with the recipe's samples."""
    if not trainer.settings.eval_every or trainer.settings.dry_run:
        return False
    model = trainer.model
    if not hasattr(model, "dataset_for"):  # a trainable without data set choices (the MNIST judge)
        return True
    declared, trained_on = model.dataset_for(), model.dataset_for(model.config)  # the Config's default vs this run
    if trained_on != declared:
        print(
            f"note: no evaluation during training: {model.model_id}'s metrics are declared for {declared}, this run "
            f"trains on {trained_on}",
            file=sys.stderr,
        )
        return False
    return True


class Evaluator:
    """The evaluations of one run of :func:`~hub_models.engine.fit` (main process only)."""

    def __init__(self, trainer: Trainer, out_dir: Path, data_root: Any, writer: Any) -> None:
        self.trainer, self.out_dir, self.data_root, self.writer = trainer, out_dir, data_root, writer
        self.every = trainer.settings.eval_every
        self.metric = primary_metric(trainer.model)
        self.curve_path = out_dir / CURVE_NAME
        self.last: tuple[int, dict[str, Any]] | None = None  # the step and numbers of the latest evaluation
        self.train_started = time.perf_counter()
        if self.every and trainer.settings.resume:
            self._cut_curve(trainer.step)  # evaluations after the checkpoint are done again, identically

    def due(self, step: int) -> bool:
        return bool(self.every) and (step % self.every == 0 or step == self.trainer.total)

    def __call__(self, step: int, export: Callable[[Path, torch.nn.Module, dict[str, Any]], None]) -> dict[str, Any]:
        """Measure the current export at ``step``; append it to the curve, log it, keep it if it is the best
        (``export(directory, net, metrics)`` writes a Hub-layout export of ``net``: the loop's own)."""
        trainer, model = self.trainer, self.trainer.model
        train_seconds = time.perf_counter() - self.train_started
        started = time.perf_counter()
        with isolated_rng(EVAL_SEED):
            net = exported_copy(trainer)
            training_net, model.net = model.net, net
            try:
                samples = {"num_samples": trainer.settings.eval_samples} if trainer.settings.eval_samples else {}
                metrics = model.evaluate(self.data_root, seed=EVAL_SEED, **samples)
            except HubModelsError as exc:
                failed, kept = f"the evaluation at step {step} failed", "the checkpoint is kept"
                raise HubModelsError(
                    f"{failed}: {exc} ({kept}: resume=True continues the run, with eval_every=0 to train without "
                    "evaluating)",
                    cli=f"{failed}: {exc.cli} ({kept}: --resume continues the run, with --eval-every 0 to train "
                    "without evaluating)",
                ) from None
            finally:
                model.net = training_net
        self.last = (step, metrics)
        value = metrics.get(self.metric.key) if self.metric else None
        best = trainer.eval_best
        improved = isinstance(value, int | float) and (
            not best or (value > best["value"] if self.metric.higher_is_better else value < best["value"])
        )
        if improved:
            trainer.eval_best = {"step": step, "value": value, "metric": self.metric.key}
        row = {"step": step, "epoch": round(step / trainer.per_epoch, 3), **metrics, "best": trainer.eval_best}
        row["time"] = {"eval_s": round(time.perf_counter() - started, 3), "train_s": round(train_seconds, 3)}
        rows = [*self.rows(), row]
        self._write(rows)
        for key, number in metrics.items():
            if isinstance(number, int | float) and not isinstance(number, bool):
                self.writer.add_scalar(f"eval/{key}", number, step)
        self.writer.flush()
        if improved:
            with isolated_rng(EVAL_SEED):  # the export draws its sample grid
                export(self.out_dir / BEST_DIR, net, metrics)
            row["time"]["eval_s"] = round(time.perf_counter() - started, 3)  # the export included: the full cost
            self._write(rows)
        self.train_started = time.perf_counter()
        return row

    # ------------------------------------------------------------------ the curve file
    def rows(self) -> list[dict[str, Any]]:
        if not self.curve_path.is_file():
            return []
        return [json.loads(line) for line in self.curve_path.read_text(encoding="utf-8").splitlines() if line]

    def _cut_curve(self, step: int) -> None:
        rows = self.rows()
        kept = [row for row in rows if row["step"] <= step]
        if len(kept) != len(rows):
            self._write(kept)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        with atomic_path(self.curve_path) as tmp:  # the whole file, renamed: a kill never leaves half a line
            tmp.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows), encoding="utf-8")
        picture = curve_picture(rows, self.metric, self.trainer.model.model_id)
        if picture is not None:
            with atomic_path(self.out_dir / CURVE_PICTURE) as tmp:
                picture.save(tmp, format="PNG")
