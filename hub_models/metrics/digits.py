"""The evaluation protocol of every digit model, judged by the project's own MNIST classifier (not Inception).

One pass over ``num_samples`` generated digits (10,000 by default; a conditional model is asked for each digit
equally often, 1,000 of each) gives:

- ``class_share``: the share of each digit as the classifier reads it, with its minimum and maximum
  (a collapsed generator shows up here, whatever its fidelity);
- ``label_accuracy`` and ``label_accuracy_per_class`` (conditional models): the share read as the digit asked,
  beside ``label_accuracy_real_test`` (and per class), the classifier's accuracy on the 10,000 real MNIST test
  digits: what real digits it never saw score, the reference for samples that are new digits too;
- ``classifier_fid``: the Fréchet distance between the samples and the 10,000 MNIST test digits in the
  classifier's 128-d penultimate features (torchmetrics' FID with the classifier as a custom extractor), and
  ``classifier_fid_real_train``, the same distance for as many random real *training* digits: the floor a
  perfect generator would reach, so ``classifier_fid_over_floor`` says how far from real digits the samples are.

All latents come from one CPU generator seeded once and drawn chunk after chunk (no per-chunk seeds that could
repeat or overlap), so a run is reproducible on CPU and GPU.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F  # noqa: N812

from ..cache import cache_dir
from ..engine.distributed import state_digest
from ..errors import HubModelsError
from ..spec import Metric, move_to
from ..utils import atomic_path
from .mnist_classifier import GivenFeatures, load_classifier

if TYPE_CHECKING:
    from ..contract import GenerativeModel

NUM_DIGITS = 10
DEFAULT_SAMPLES = 10_000


def digit_metrics_declared(
    conditional: bool, fid_goal: float | None = None, train_size: int | None = None, share_goals: bool = False
) -> tuple[Metric, ...]:
    """The card entries of :func:`digit_metrics` (``fid_goal``: a goal for ``classifier_fid_over_floor``;
    ``share_goals``: every digit between 5% and 15% of the samples, the goal of the unconditional GAN)."""
    samples = (
        "10,000 samples, 1,000 asked of each digit (seed 0, one generator)"
        if conditional
        else "10,000 samples (seed 0, one generator)"
    )
    metrics = []
    if conditional:
        metrics += [
            Metric(
                "label_accuracy", "label accuracy", higher_is_better=True, goal=0.995, scale="nines",
                protocol=f"{samples}, classified by the bundled mnist-classifier (99.39% on the MNIST test set); "
                "share whose predicted digit is the label asked",
            ),
            Metric("label_accuracy_per_class", "label accuracy per digit", protocol="as label accuracy, per digit"),
            Metric("label_accuracy_real_test", "the same classifier on real test digits", higher_is_better=True,
                   protocol="the 10,000 MNIST test digits (never seen by the classifier or the GAN), classified "
                   "the same way: real unseen digits score this, the reference for label accuracy", reference=True),
            Metric("label_accuracy_real_test_per_class", "real test digits, per digit", reference=True,
                   protocol="as the reference above, per digit"),
        ]  # fmt: skip
    metrics += [
        Metric(
            "classifier_fid", "Fréchet distance in mnist-classifier features",
            protocol=f"{samples} vs the 10,000 MNIST test digits in the 128-d penultimate features of the bundled "
            "mnist-classifier (torchmetrics FID with a custom extractor); NOT Inception FID",
        ),
        Metric("classifier_fid_real_train", "same distance for real training digits (the floor)",
               protocol="as many random MNIST training digits (seed 0) vs the test digits, same features",
               reference=True),
        Metric("classifier_fid_over_floor", "Fréchet distance / floor", goal=fid_goal,
               protocol="classifier_fid divided by classifier_fid_real_train"),
        Metric("class_share", "share of each digit among the samples",
               protocol=f"{samples}, each read by the mnist-classifier; a uniform generator gives about 0.1 each"),
        Metric("class_share_min", "smallest digit share", higher_is_better=True, goal=0.05 if share_goals else None,
               protocol="the smallest entry of class_share"),
        Metric("class_share_max", "largest digit share", goal=0.15 if share_goals else None,
               protocol="the largest entry of class_share"),
    ]  # fmt: skip
    if train_size:
        metrics += [
            Metric("classifier_fid_real_train_resized", f"floor for digits resized to {train_size}x{train_size}",
                   protocol=f"the same real training digits resized 28→{train_size} bilinearly, as in training "
                   "(the classifier resizes them back to 28), vs the test digits", reference=True),
            Metric("classifier_fid_over_resized_floor", "Fréchet distance / resized floor",
                   protocol="classifier_fid divided by classifier_fid_real_train_resized"),
        ]  # fmt: skip
    return tuple(metrics)


def _samples(
    model: GenerativeModel, n: int, seed: int, chunk: int, conditional: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """``n`` generated images in chunks (and the digit each was asked for), all from one generator."""
    generator = torch.Generator().manual_seed(seed)
    asked = torch.arange(n) % NUM_DIGITS if conditional else None  # balanced in every chunk of ≥ 10
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        inputs = model.parse_inputs({"label": asked[start:stop].tolist()} if conditional else {})
        latents = model.sample_latents(stop - start, generator, **inputs)
        with torch.inference_mode():
            images = model.decode(move_to(latents, model.device), **inputs).float().cpu()
        yield images, None if asked is None else asked[start:stop]


def _per_digit(values: torch.Tensor) -> dict[str, float]:
    """A card's per-digit table: {"0": value, ..., "9": value}, 4 decimals."""
    return {str(d): round(float(v), 4) for d, v in enumerate(values)}


def digit_metrics(
    model: GenerativeModel,
    data_root: Any = None,
    num_samples: int | None = None,
    seed: int = 0,
    conditional: bool = False,
    chunk: int = 1000,
    train_size: int | None = None,
) -> dict[str, Any]:
    """The digit protocol (module docstring) for ``model``; ``conditional`` models take a ``label`` input.

    ``train_size``: for a model trained on MNIST resized to another size (bilinear, as cgan-digits does), also
    the floor of real training digits resized that way (``classifier_fid_real_train_resized``) and the model's
    distance over it: the classifier reads 28x28, and the resize there and back alone moves the features.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    n = _checked_count(model, num_samples)
    judge = load_classifier()
    real = _real_digits(judge, data_root, n, seed, chunk, train_size)
    # the test digits' statistics are fed once and kept across reset() (reset_real_features=False)
    metric = FrechetInceptionDistance(feature=GivenFeatures(), normalize=False, reset_real_features=False)
    counts = torch.zeros(NUM_DIGITS, dtype=torch.long)
    hits = torch.zeros(NUM_DIGITS, dtype=torch.long)
    with torch.inference_mode():
        for features in real.test_features:
            metric.update(features, real=True)
        for images, asked in _samples(model, n, seed, chunk, conditional):
            features, logits = judge.read(images)
            metric.update(features, real=False)
            predicted = logits.argmax(1)
            counts += torch.bincount(predicted, minlength=NUM_DIGITS)
            if asked is not None:
                hits += torch.bincount(asked[predicted == asked], minlength=NUM_DIGITS)
        fid = float(metric.compute())
        floor = _distance_to_test(metric, real.train_features)
        resized_floor = _distance_to_test(metric, real.resized_features) if real.resized_features else None
    shares = counts.double() / n
    result: dict[str, Any] = {
        "classifier_fid": round(fid, 4),
        "classifier_fid_real_train": round(floor, 4),
        "classifier_fid_over_floor": round(fid / floor, 3),
        "class_share": _per_digit(shares),
        "class_share_min": round(float(shares.min()), 4),
        "class_share_max": round(float(shares.max()), 4),
    }
    if resized_floor is not None:
        result["classifier_fid_real_train_resized"] = round(resized_floor, 4)
        result["classifier_fid_over_resized_floor"] = round(fid / resized_floor, 3)
    result["num_samples"] = n
    if conditional:
        result |= _label_accuracy(hits, n, real.test_hits, real.test_labels)
    return result


def _checked_count(model: GenerativeModel, num_samples: int | None) -> int:
    """The number of samples to judge; the judge is an MNIST digit classifier, so the model must be an MNIST one."""
    dataset = model.dataset_for(model.config)
    if dataset != "mnist":
        # it cannot read another data set's classes (not measured on MNIST either, which would describe a model that
        # was not trained)
        raise HubModelsError(
            f"the digit metrics judge samples with the MNIST classifier, so they apply to models trained on mnist; "
            f"this {model.model_id} was trained on {dataset} (config dataset)"
        )
    n = num_samples or DEFAULT_SAMPLES
    if n < NUM_DIGITS:
        raise HubModelsError(f"--num-samples must be at least {NUM_DIGITS} for the digit metrics, got {n}")
    return n


class _RealDigits(NamedTuple):
    """What the judge reads in real digits, the same for every model it measures: the test digits' features (chunk
    by chunk) and how many of each it reads right; the features of ``n`` random training digits (the floor), and of
    the same digits resized to ``train_size`` and back when asked."""

    test_features: list[torch.Tensor]
    test_hits: torch.Tensor
    test_labels: torch.Tensor
    train_features: list[torch.Tensor]
    resized_features: list[torch.Tensor] | None


# A run that evaluates as it trains measures the same real digits at every evaluation: they are read once per
# process (~10 MB kept) and once per machine (~/.cache/hub_models/digits, content-addressed like the FID cache). The
# key holds what they depend on: the judge's weights, the digits themselves (the test split and the training digits
# the seed picks), the chunking (the order of the sums) and the resize.
_REAL_DIGITS: dict[tuple[Any, ...], _RealDigits] = {}
CACHE = cache_dir("digits")


def _real_digits(judge: Any, data_root: Any, n: int, seed: int, chunk: int, train_size: int | None) -> _RealDigits:
    weights = state_digest(judge)
    key = (weights, str(data_root), os.environ.get("HUB_MODELS_DATA"), n, seed, chunk, train_size)
    if key not in _REAL_DIGITS:
        if len(_REAL_DIGITS) >= 4:
            _REAL_DIGITS.pop(next(iter(_REAL_DIGITS)))
        _REAL_DIGITS[key] = _cached_real_digits(judge, weights, data_root, n, seed, chunk, train_size)
    return _REAL_DIGITS[key]


def _cached_real_digits(
    judge: Any, weights: str, data_root: Any, n: int, seed: int, chunk: int, train_size: int | None
) -> _RealDigits:
    from ..data.mnist import load_mnist

    test = load_mnist(data_root, "test")
    train = load_mnist(data_root, "train")["images"]
    picked = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]]
    digest = hashlib.sha256(weights.encode())
    for part in (test["images"], test["labels"], picked):
        digest.update(part.numpy().tobytes())
    path = CACHE / f"real-{digest.hexdigest()[:16]}-{chunk}-{train_size or 28}.safetensors"
    if path.is_file():
        stored = load_file(str(path))
        resized = stored.get("resized_features")
        return _RealDigits(
            list(stored["test_features"].split(chunk)),
            stored["test_hits"],
            stored["test_labels"],
            list(stored["train_features"].split(chunk)),
            None if resized is None else list(resized.split(chunk)),
        )
    real = _read_real_digits(judge, test, picked, chunk, train_size)
    tensors = {
        "test_features": torch.cat(real.test_features),
        "test_hits": real.test_hits,
        "test_labels": real.test_labels,
        "train_features": torch.cat(real.train_features),
    }
    if real.resized_features is not None:
        tensors["resized_features"] = torch.cat(real.resized_features)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    return real


@torch.inference_mode()
def _read_real_digits(
    judge: Any, test: dict[str, torch.Tensor], picked: torch.Tensor, chunk: int, train_size: int | None
) -> _RealDigits:
    labels = test["labels"].long()
    test_features, hits = [], torch.zeros(NUM_DIGITS, dtype=torch.long)
    for i in range(0, len(labels), chunk):
        truth = labels[i : i + chunk]
        features, logits = judge.read(test["images"][i : i + chunk].float() / 255)
        test_features.append(features)
        hits += torch.bincount(truth[logits.argmax(1) == truth], minlength=NUM_DIGITS)
    chunks = [picked[i : i + chunk].float() / 255 for i in range(0, len(picked), chunk)]
    resized = None
    if train_size:  # bilinearly to train_size, as a model trained at that size saw them (the judge reads 28x28)
        resized = [judge.features(F.interpolate(x, size=(train_size, train_size), mode="bilinear")) for x in chunks]
    return _RealDigits(test_features, hits, labels, [judge.features(x) for x in chunks], resized)


def _distance_to_test(metric: Any, features: list[torch.Tensor]) -> float:
    """The Fréchet distance of ``features`` (real digits: a floor) to the test digits already in ``metric``."""
    metric.reset()  # the fake side only: the test digits' statistics stay
    for chunk in features:
        metric.update(chunk, real=False)
    return float(metric.compute())


def _label_accuracy(hits: torch.Tensor, n: int, real_hits: torch.Tensor, test_labels: torch.Tensor) -> dict[str, Any]:
    """Label accuracy of the samples (overall and per digit asked) beside the judge's on the real test digits."""
    asked_per_class = torch.bincount(torch.arange(n) % NUM_DIGITS, minlength=NUM_DIGITS).double()
    real_per_class = real_hits.double() / torch.bincount(test_labels, minlength=NUM_DIGITS).clamp(min=1)
    return {
        "label_accuracy": round(float(hits.sum()) / n, 5),
        "label_accuracy_per_class": _per_digit(hits.double() / asked_per_class),
        "samples_per_class": n // NUM_DIGITS,
        "label_accuracy_real_test": round(float(real_hits.sum()) / len(test_labels), 5),
        "label_accuracy_real_test_per_class": _per_digit(real_per_class),
    }
