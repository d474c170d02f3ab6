"""The judge of the digit models: a small MNIST CNN that hub-models trains and ships as an asset.

Architecture of pytorch/examples' MNIST net (conv 32 - conv 64 - max-pool - fc 128 - fc 10, dropout), trained
with small random shifts so it also reads slightly off-centre generated digits. Its 128-d penultimate layer
is the feature space of the digit models' Fréchet distance (which is therefore *not* Inception FID).

This module is what the metrics use: the network, :func:`load_classifier` and :func:`predict`. Its training is a
recipe through the engine like every model's (``hub-models train mnist-classifier``: the recipe
hub_models/recipes/mnist-classifier.toml, the training step and the card in hub_models/models/mnist_classifier.py);
it is not a generative model, so ``hub-models list`` and the demo do not show it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ..errors import WeightsError
from ..locations import CLASSIFIER_ENV, CONFIG_NAME, bundled_dir, has_local_copy, hub_repo_id, pinned_revision
from ..spec import config_from_dict
from ..utils import resolve_device
from ..weights import HubOptions, download, load_weights

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
        return self.read(images)[1]

    def read(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 128-d features and the logits of one pass (the metrics need both of every image)."""
        features = self.features(images)
        return features, self.fc2(self.dropout2(features))


class GivenFeatures(nn.Module):
    """A torchmetrics FID ``feature`` module for the classifier's 128-d features computed beforehand (by
    :meth:`MnistClassifier.read`, which also gives the logits): ``update`` is called with N×128 features."""

    num_features = 128

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.double()


@dataclass
class ClassifierConfig:
    """The hyper-parameters the classifier was trained with (its config.json records them; the network has none)."""

    lr: float = 1.0  # Adadelta, as pytorch/examples
    max_shift: int = 1  # random translation of the training digits, in pixels


class ClassifierCheckpoint:
    """The judge's checkpoint as the weights code reads it: the config it was trained with and its network (the
    trainable model, hub_models.models.mnist_classifier, adds the training step and the card)."""

    model_id = MODEL_TYPE
    Config = ClassifierConfig

    def __init__(self, config: ClassifierConfig | dict[str, Any] | None = None) -> None:
        if isinstance(config, dict):
            config = config_from_dict(ClassifierConfig, config, what=f"{MODEL_TYPE} config")
        self.config = config or ClassifierConfig()
        self.net: nn.Module = MnistClassifier().eval()
        self.device = torch.device("cpu")
        self.provenance: dict[str, Any] = {}
        self.metric_values: dict[str, Any] = {}
        self.weights_dir: Path | None = None
        self.training_curve: list[dict[str, Any]] = []

    def to(self, device: str | torch.device | None) -> ClassifierCheckpoint:
        self.device = resolve_device(device)
        self.net.to(self.device)
        return self


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
    if has_local_copy(ClassifierCheckpoint):
        return bundled_dir(ClassifierCheckpoint)
    repo_id, revision = hub_repo_id(ClassifierCheckpoint), pinned_revision(ClassifierCheckpoint)
    fetch = f"run `hub-models download --all` once while online (it fetches {repo_id}@{revision})"
    hint = (
        f"{fetch}, or set {CLASSIFIER_ENV} to a local copy of it",
        f"{fetch}, or pass --classifier DIR (a local copy of it)",
    )
    return download(repo_id, HubOptions(revision=revision), hint=hint)


def load_classifier(directory: Path | None = None) -> MnistClassifier:
    """The classifier's network, loaded strictly (in eval mode, on the CPU)."""
    return load_weights(ClassifierCheckpoint, directory or classifier_dir(), device="cpu").net.eval()


@torch.inference_mode()
def predict(model: MnistClassifier, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    return torch.cat([model(images[i : i + batch]).argmax(1) for i in range(0, len(images), batch)])
