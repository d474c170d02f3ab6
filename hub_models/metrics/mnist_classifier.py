"""The judge of the digit models: a small MNIST CNN that the project trains itself and ships.

Architecture of pytorch/examples' MNIST net (conv 32 - conv 64 - max-pool - fc 128 - fc 10, dropout), trained
with small random shifts so it also reads slightly off-centre generated digits. Its 128-d penultimate layer
is the feature space of the digit models' Fréchet distance (which is therefore *not* Inception FID).

It trains through the shared engine like every plugin (:class:`ClassifierModel` has the trainable part of the
contract: seeding, epoch order, the StepLR schedule, checkpoints and resume are the engine's), and its weights are
written and loaded by the models' own code (config.json, model.safetensors, a card), but it is not a generative
model: it is not an entry point, so ``hub-models list`` and the demo do not show it.

Reproduce the bundled weights (hub_models/weights/mnist-classifier):
    HUB_MODELS_DATA=/path/to/data python -m hub_models.metrics.mnist_classifier   (its recipe: hub_models/recipes)
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ..engine import fit, resolve_training
from ..errors import HubModelsError, WeightsError
from ..locations import CLASSIFIER_ENV, CONFIG_NAME, bundled_dir, has_local_copy, hub_repo_id, pinned_revision
from ..spec import CardInfo, Metric, TrainingSetup, config_from_dict
from ..utils import atomic_path, resolve_device
from ..weights import HubOptions, download, load_weights, update_metrics, write_card, write_weights

MODEL_TYPE = "mnist-classifier"


class MnistClassifier(nn.Module):
    num_features = 128  # read by torchmetrics' FrechetInceptionDistance for a custom feature extractor

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout1, self.dropout2 = nn.Dropout(0.25), nn.Dropout(0.5)

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float images, any square size → normalised 1×28×28 (MNIST mean/std)."""
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if x.shape[1] == 3:
            x = x.mean(1, keepdim=True)
        if x.shape[-1] != 28:
            x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
        return (x - 0.1307) / 0.3081

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(self.prepare(images)))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout1(x).flatten(1)
        return F.relu(self.fc1(x))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits over the 10 digits."""
        return self.fc2(self.dropout2(self.features(images)))


class ClassifierFeatures(nn.Module):
    """The classifier's 128-d features as a torchmetrics FID/KID ``feature`` module (float images in [0, 1])."""

    num_features = 128

    def __init__(self, classifier: MnistClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images).double()


def classifier_dir() -> Path:
    """``$HUB_MODELS_CLASSIFIER`` (``eval --classifier DIR``), else the local copy (a checkout), else the Hub repo
    ``<org>/mnist-classifier`` at the package's pinned tag (a pip install: ``hub-models download --all``)."""
    chosen = os.environ.get(CLASSIFIER_ENV)
    if chosen:
        if not (Path(chosen).expanduser() / CONFIG_NAME).is_file():
            raise WeightsError(
                f"{CLASSIFIER_ENV}={chosen} has no {CONFIG_NAME}: point it at a copy of hub-models/mnist-classifier"
            )
        return Path(chosen).expanduser()
    if has_local_copy(ClassifierModel):
        return bundled_dir(ClassifierModel)
    repo_id, revision = hub_repo_id(ClassifierModel), pinned_revision(ClassifierModel)
    fetch = f"run `hub-models download --all` once while online (it fetches {repo_id}@{revision})"
    hint = (
        f"{fetch}, or set {CLASSIFIER_ENV} to a local copy of it",
        f"{fetch}, or pass --classifier DIR (a local copy of it)",
    )
    return download(repo_id, HubOptions(revision=revision), hint=hint)


def load_classifier(directory: Path | None = None) -> MnistClassifier:
    """The classifier's network, loaded strictly (in eval mode, on the CPU)."""
    return load_weights(ClassifierModel, directory or classifier_dir(), device="cpu").net.eval()


@torch.inference_mode()
def predict(model: MnistClassifier, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    return torch.cat([model(images[i : i + batch]).argmax(1) for i in range(0, len(images), batch)])


def shift(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Random integer translations of up to ``max_shift`` pixels (zero padding), one per image, drawn from torch's
    global RNG (the engine seeds it and checkpoints it, so a resumed run draws the same shifts)."""
    n, size = len(images), images.shape[-1]
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), device=images.device)
    span = torch.arange(size, device=images.device)
    rows, cols = (offsets[0, :, None] + span)[:, :, None], (offsets[1, :, None] + span)[:, None, :]
    return padded[torch.arange(n, device=images.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


@dataclass
class ClassifierConfig:
    """The classifier's training hyper-parameters (the architecture has none)."""

    lr: float = 1.0  # Adadelta, as pytorch/examples
    max_shift: int = 1  # random translation of the training digits, in pixels


CARD = """---
{{ card_data }}
---

# {{ model_id }}

{{ summary }}

## Use

```python
from hub_models.metrics.mnist_classifier import load_classifier, predict

judge = load_classifier()  # the local copy, else {{ repo_id }} at the pinned tag
digits = predict(judge, images)  # uint8 or [0, 1] float N×1×H×W (any square size) -> N labels
```

`hub-models eval <digit model>` uses it for the label accuracy and the class shares, and its 128-d penultimate
features for the Fréchet distance (a classifier-feature FD, *not* Inception FID).

## Metrics

{{ metrics_table }}

## Training

{{ training }}

## Licence

{{ licence }}

## Source and notes

{{ source }}

{{ notes }}
"""


class ClassifierModel:
    """The MNIST classifier as the engine trains it and the weights code saves and loads it.

    It has the trainable part of the plugin contract (``build``, ``load_data``, ``setup_training``,
    ``train_step``) and the declarations the config and card writers read (``model_id``, ``Config``, ``metrics``,
    ``card``), but no ``generate``: it is not a :class:`~hub_models.contract.GenerativeModel` (which sits in a
    layer above the metrics) and is registered nowhere.
    """

    model_id = MODEL_TYPE
    Config = ClassifierConfig
    dataset = "mnist"
    inputs = ()
    # not a `hub-models eval` model: its test accuracy is measured at the end of its training run
    measured_by = "python -m hub_models.metrics.mnist_classifier"
    metrics = (
        Metric(
            "test_accuracy",
            "test accuracy",
            "share of the 10,000 official MNIST test images classified correctly",
            higher_is_better=True,
            goal=0.993,
        ),
    )
    card = CardInfo(
        summary="The judge of hub-models' digit generators: a small CNN (pytorch/examples' MNIST net: conv 32 - "
        "conv 64 - max-pool - fc 128 - fc 10, dropout 0.25/0.5) trained with Adadelta, a StepLR schedule and "
        "random shifts of the training digits.",
        datasets=("ylecun/mnist",),
        tags=("image-classification", "mnist"),
        pipeline_tag="image-classification",
        source="pytorch/examples, mnist/main.py (the architecture, the optimiser and the schedule); the shifts are "
        "ours, so that slightly off-centre generated digits are read too.",
        notes="Trained through the hub-models engine (train/mnist-classifier.toml: 8 epochs of batch 64, the lr "
        "multiplied by 0.7 after each epoch): 99.39% test accuracy. The digit metrics in the tables of the "
        "hub-models cards were measured with these weights.",
        template=CARD,
    )

    def __init__(self, config: ClassifierConfig | dict[str, Any] | None = None) -> None:
        if isinstance(config, dict):
            config = config_from_dict(ClassifierConfig, config, what=f"{MODEL_TYPE} config")
        self.config = config or ClassifierConfig()
        self.net = self.build(self.config).eval()
        self.device = torch.device("cpu")
        self.provenance: dict[str, Any] = {}
        self.metric_values: dict[str, Any] = {}
        self.weights_dir: Path | None = None
        self.training_curve: list[dict[str, Any]] = []

    @classmethod
    def dataset_for(cls, config: Any = None) -> str:
        """Always MNIST: the classifier has no data set choice (the engine's provenance asks every trainable)."""
        return cls.dataset

    def card_info(self) -> CardInfo:
        return self.card

    def build(self, config: ClassifierConfig) -> MnistClassifier:
        return MnistClassifier()

    def to(self, device: str | torch.device | None) -> ClassifierModel:
        self.device = resolve_device(device)
        self.net.to(self.device)
        return self

    # ------------------------------------------------------------------ training hooks (the engine's)
    def load_data(self, root: Path | None, split: str = "train") -> dict[str, torch.Tensor]:
        from ..data.mnist import load_mnist

        return load_mnist(root, split)

    def setup_training(self, device: torch.device) -> TrainingSetup:
        opt = torch.optim.Adadelta(self.net.parameters(), lr=self.config.lr)
        return TrainingSetup(nets={"classifier": self.net}, optimizers={"classifier": opt})

    def train_step(self, setup: TrainingSetup, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images = shift(batch["images"], self.config.max_shift) if self.config.max_shift else batch["images"]
        loss = F.cross_entropy(setup.nets["classifier"](images), batch["labels"])
        setup.optimizers["classifier"].zero_grad(set_to_none=True)
        loss.backward()
        setup.optimizers["classifier"].step()
        return {"loss": loss}

    def fixed_latents(self, n: int, generator: torch.Generator) -> None:
        return None  # nothing to draw at the end of an epoch

    def extra_state(self, setup: TrainingSetup) -> dict[str, Any]:
        return {}

    def load_extra_state(self, setup: TrainingSetup, state: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ weights and metrics
    def save_pretrained(self, directory: str | Path) -> None:
        """config.json, model.safetensors and the card, written by the models' writers; replaced in one rename."""
        with atomic_path(Path(directory)) as tmp:
            write_weights(self, tmp)
            write_card(self, tmp)

    def evaluate(
        self, data_root: str | Path | None = None, num_samples: int | None = None, seed: int = 0
    ) -> dict[str, float]:
        """Test accuracy on the 10,000 MNIST test images (``num_samples``, ``seed``: unused, no sampling here)."""
        test = self.load_data(Path(data_root) if data_root else None, "test")
        correct = predict(self.net.to("cpu").eval(), test["images"]) == test["labels"]
        self.net.to(self.device)
        return {"test_accuracy": round(float(correct.double().mean()), 5)}


def train_classifier(
    out_dir: str | Path,
    *,
    data: str | Path | None = None,
    recipe: Path | None = None,
    config: ClassifierConfig | dict[str, Any] | None = None,
    command: str | None = None,
    **settings: Any,
) -> Path:
    """Train the classifier with the shared engine into ``out_dir``; returns ``out_dir / "model"`` with its test
    accuracy on the card. The run is ``recipe`` (default: the packaged hub_models/recipes/mnist-classifier.toml)
    with ``settings`` (:class:`~hub_models.engine.TrainSettings` fields) over its [train] table, so ``resume=True``
    continues a run bit for bit."""
    overrides = config if isinstance(config, dict) else None
    given = config if isinstance(config, ClassifierConfig) else None
    config, resolved, source = resolve_training(
        ClassifierModel, recipe, config=given, config_overrides=overrides, settings=settings
    )
    model = ClassifierModel(config)
    command = command or ClassifierModel.measured_by
    export = fit(model, resolved, Path(out_dir), data_root=data, command=command, recipe=source)
    if not resolved.dry_run:
        update_metrics(export, model, model.evaluate(data))
    return export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train the MNIST judge classifier with the shared engine")
    parser.add_argument("--config", type=Path, help="a recipe (default: hub_models/recipes/mnist-classifier.toml)")
    parser.add_argument("--data", help="the MNIST directory (default: $HUB_MODELS_DATA/mnist)")
    parser.add_argument("--out", type=Path, default=Path("runs/mnist-classifier"))
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    args = parser.parse_args(argv)
    try:
        command = ClassifierModel.measured_by
        if args.config:
            command = f"python -m hub_models.metrics.mnist_classifier --config {args.config}"
        export = train_classifier(
            args.out,
            data=args.data,
            recipe=args.config,
            command=command,
            resume=args.resume or None,
            progress=args.progress,
        )
    except HubModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model written to {export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
