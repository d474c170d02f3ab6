"""Metrics of the digit models, judged by the project's own MNIST classifier (not Inception)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .mnist_classifier import ClassifierFeatures, load_classifier, predict

if TYPE_CHECKING:
    from ..contract import GenerativeModel


def label_accuracy(model: GenerativeModel, per_class: int = 1000, seed: int = 0, chunk: int = 500) -> dict[str, Any]:
    """Share of generated digits the classifier reads as the label they were asked for, per class and overall."""
    judge = load_classifier()
    correct = {}
    for digit in range(10):
        hits = 0
        for start in range(0, per_class, chunk):
            n = min(chunk, per_class - start)
            # one seed per (digit, chunk): reproducible and independent across digits
            images = model.generate(n, seed=seed * 100_003 + digit * 1000 + start // chunk, label=[digit])
            hits += int((predict(judge, images) == digit).sum())
        correct[str(digit)] = hits / per_class
    overall = sum(correct.values()) / 10
    return {
        "label_accuracy": round(overall, 5),
        "label_accuracy_per_class": {k: round(v, 4) for k, v in correct.items()},
        "samples_per_class": per_class,
        "eval_command": f"hub-models eval {model.model_id} --num-samples {per_class}",
    }


def classifier_fid(
    model: GenerativeModel, data_root: Any = None, num_samples: int = 10_000, seed: int = 0, chunk: int = 1000
) -> dict[str, Any]:
    """Fréchet distance between generated and MNIST-test images in the classifier's 128-d feature space.

    Computed with torchmetrics' FrechetInceptionDistance using the classifier as a custom feature
    extractor; the same number is reported for real *train* images against the test set, as the floor.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    from ..data.mnist import load_mnist

    features = ClassifierFeatures(load_classifier())
    test = load_mnist(data_root, "test")["images"][:num_samples].float() / 255
    train = load_mnist(data_root, "train")["images"]
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: len(test)]
    train = train[pick].float() / 255

    def fd(fake_batches) -> float:
        metric = FrechetInceptionDistance(feature=features, normalize=False)
        with torch.inference_mode():
            for i in range(0, len(test), chunk):
                metric.update(test[i : i + chunk], real=True)
            for batch in fake_batches:
                metric.update(batch, real=False)
        return float(metric.compute())

    generated = (model.generate(min(chunk, len(test) - i), seed=seed + i) for i in range(0, len(test), chunk))
    real_floor = (train[i : i + chunk] for i in range(0, len(train), chunk))
    return {
        "classifier_fid": round(fd(generated), 4),
        "classifier_fid_real_train": round(fd(real_floor), 4),
        "num_samples": len(test),
        "eval_command": f"hub-models eval {model.model_id} --num-samples {len(test)}",
    }
