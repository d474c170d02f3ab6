"""The judge of the digit models: a small MNIST CNN that the project trains itself and ships.

Architecture of pytorch/examples' MNIST net (conv 32 - conv 64 - max-pool - fc 128 - fc 10, dropout), trained
with small random shifts so it also reads slightly off-centre generated digits. Its 128-d penultimate layer
is the feature space of the digit models' Fréchet distance (which is therefore *not* Inception FID).

Reproduce the bundled weights (hub_models/weights/mnist-classifier):
    python -m hub_models.metrics.mnist_classifier --config train/mnist-classifier.toml --data ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ..errors import HubModelsError, WeightsError
from ..utils import atomic_path, git_revision

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


def bundled_dir() -> Path:
    return Path(str(resources.files("hub_models"))) / "weights" / MODEL_TYPE


def classifier_dir() -> Path:
    """The local copy (a checkout), else the Hub repo ``<org>/mnist-classifier`` at the package's pinned tag."""
    if (bundled_dir() / "config.json").is_file():
        return bundled_dir()
    from ..version import __version__
    from ..weights import HubOptions, download, hub_asset_repo_id

    repo_id, revision = hub_asset_repo_id(MODEL_TYPE), f"v{__version__}"
    hint = f"run `hub-models download --all` once while online (it fetches {repo_id}@{revision})"
    return download(repo_id, HubOptions(revision=revision), hint=hint)


def load_classifier(directory: Path | None = None) -> MnistClassifier:
    directory = directory or classifier_dir()
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"the MNIST classifier in {directory} is missing or unreadable: {exc}") from None
    if config.get("model_type") != MODEL_TYPE:
        raise WeightsError(f"{directory} does not hold the MNIST classifier")
    model = MnistClassifier()
    try:
        load_model(model, str(directory / "model.safetensors"), strict=True)
    except Exception as exc:
        raise WeightsError(f"cannot load the MNIST classifier from {directory}: {exc}") from None
    return model.eval()


@torch.inference_mode()
def predict(model: MnistClassifier, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    return torch.cat([model(images[i : i + batch]).argmax(1) for i in range(0, len(images), batch)])


@dataclass
class ClassifierRecipe:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1.0  # Adadelta, as pytorch/examples
    gamma: float = 0.7  # StepLR per epoch
    max_shift: int = 1  # random translation in pixels
    seed: int = 0
    threads: int | None = None


def _shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random integer translations (zero padding), one per image."""
    pad = F.pad(x, (max_shift,) * 4)
    n, size = len(x), x.shape[-1]
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    return torch.stack([pad[i, :, dy[i] : dy[i] + size, dx[i] : dx[i] + size] for i in range(n)])


def train_classifier(recipe: ClassifierRecipe, data_root: str | Path | None, out: Path) -> dict[str, float]:
    from ..data.mnist import load_mnist

    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    train, test = load_mnist(data_root, "train"), load_mnist(data_root, "test")
    model = MnistClassifier()
    opt = torch.optim.Adadelta(model.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=recipe.gamma)
    g = torch.Generator().manual_seed(recipe.seed)
    for epoch in range(recipe.epochs):
        model.train()
        order = torch.randperm(len(train["labels"]), generator=g)
        for i in range(0, len(order), recipe.batch_size):
            idx = order[i : i + recipe.batch_size]
            x = _shift(train["images"][idx], recipe.max_shift, g)
            loss = F.cross_entropy(model(x), train["labels"][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        acc = float((predict(model, test["images"]) == test["labels"]).double().mean())
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f}", file=sys.stderr)
    metrics = {"test_accuracy": round(acc, 5)}
    with atomic_path(out) as tmp:
        tmp.mkdir()
        save_model(model, str(tmp / "model.safetensors"))
        config = {
            "model_type": MODEL_TYPE,
            "recipe": dataclasses.asdict(recipe),
            "metrics": metrics,
            "git_revision": git_revision(),
        }
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (tmp / "README.md").write_text(
            CARD.format(acc=acc * 100, shift=recipe.max_shift, recipe=json.dumps(dataclasses.asdict(recipe)))
        )
    return metrics


CARD = """---
library_name: hub-models
license: mit
tags: [image-classification, mnist, hub-models]
datasets: [mnist]
pipeline_tag: image-classification
model-index:
- name: mnist-classifier
  results:
  - task: {{type: image-classification}}
    dataset: {{name: mnist, type: mnist, split: test}}
    metrics:
    - {{type: accuracy, value: {acc:.2f}, name: test accuracy (%)}}
---

# mnist-classifier

The judge of hub-models' digit generators: a small CNN (pytorch/examples' MNIST net: conv 32 - conv 64 -
max-pool - fc 128 - fc 10, dropout 0.25/0.5) trained with Adadelta and random ±{shift} px shifts.

**Test accuracy: {acc:.2f}%** on the 10,000 official MNIST test images.

It gives the conditional GANs' label accuracy, and its 128-d penultimate features give the unconditional
GAN's Fréchet distance (a classifier-feature FD, *not* Inception FID).

Reproduce: `python -m hub_models.metrics.mnist_classifier --config train/mnist-classifier.toml --data DIR`
(recipe `{recipe}`).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train the MNIST judge classifier")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data")
    parser.add_argument("--out", type=Path, default=Path("runs/mnist-classifier"))
    args = parser.parse_args(argv)
    try:
        raw = tomllib.loads(args.config.read_text()).get("train", {})
        recipe = ClassifierRecipe(**raw)
    except (OSError, tomllib.TOMLDecodeError, TypeError) as exc:
        print(f"error: bad recipe {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(train_classifier(recipe, args.data, args.out)))
    except HubModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
