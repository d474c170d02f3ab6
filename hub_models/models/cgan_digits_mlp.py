"""``cgan-digits-mlp``: the MLP conditional GAN of seed 004 on 28x28 MNIST.

G: nn.Embedding(10, 10) label vector concatenated to z (100) → 110-256-512-1024-784, LeakyReLU(0.2), tanh.
D: the image (784) concatenated with its own label embedding (10) → 794-1024-512-256-1, LeakyReLU(0.2) and
dropout 0.4, one real/fake score. BCE loss; fakes get uniformly random labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..contract import CardInfo, GenerativeModel, TrainingSetup
from ..data.mnist import load_mnist
from ..metrics.digits import digit_metrics, digit_metrics_declared
from .digit_data import card_for_dataset
from .digit_labels import NUM_CLASSES, DigitLabelsMixin, labels_for
from .gan_steps import adam_pair, bce_gan_step


class EmbeddingGenerator(nn.Module):
    def __init__(self, nz: int = 100) -> None:
        super().__init__()
        self.label_emb = nn.Embedding(NUM_CLASSES, NUM_CLASSES)
        act = nn.LeakyReLU(0.2, inplace=True)
        self.model = nn.Sequential(
            nn.Linear(nz + NUM_CLASSES, 256), act, nn.Linear(256, 512), act, nn.Linear(512, 1024), act,
            nn.Linear(1024, 784), nn.Tanh(),
        )  # fmt: skip

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = self.model(torch.cat([z, self.label_emb(labels)], 1))
        return out.view(len(z), 1, 28, 28)


class EmbeddingDiscriminator(nn.Module):
    """Returns logits (the seed's Sigmoid + BCELoss as BCEWithLogits)."""

    def __init__(self, dropout: float = 0.4) -> None:
        super().__init__()
        self.label_emb = nn.Embedding(NUM_CLASSES, NUM_CLASSES)
        layers: list[nn.Module] = []
        for cin, cout in ((784 + NUM_CLASSES, 1024), (1024, 512), (512, 256)):
            layers += [nn.Linear(cin, cout), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout)]
        self.model = nn.Sequential(*layers, nn.Linear(256, 1))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat([images.flatten(1), self.label_emb(labels)], 1)).flatten()


@dataclass
class CganDigitsMlpConfig:
    nz: int = 100
    dropout: float = 0.4
    lr: float = 2e-4
    beta1: float = 0.5
    dataset: str = "mnist"  # or "fashion-mnist"


class CganDigitsMlp(DigitLabelsMixin, GenerativeModel):
    model_id = "cgan-digits-mlp"
    Config = CganDigitsMlpConfig
    metrics = digit_metrics_declared(conditional=True, fid_goal=2.0)
    card = CardInfo(
        summary="An MLP conditional GAN (label embedding concatenated to z) that draws the 28x28 digit you ask for.",
        datasets=("ylecun/mnist",),
        tags=("gan", "cgan", "mnist", "mlp", "conditional-image-generation"),
        pipeline_tag="other",  # class-conditional: the Hub has no such task, and it is not unconditional
        source="Seed 004: the CGAN of the book chapter (nn.Embedding(10, 10), G 110-256-512-1024-784, "
        "D 794-1024-512-256-1 with dropout 0.4).",
        notes="Architecture as in the seed; D outputs logits trained with BCEWithLogits; Adam 2e-4, beta1 0.5; "
        "images scaled to [-1, 1]. The exported G is an exponential moving average of the trained G "
        "(decay 0.999), which sharpens the digits. Label accuracy rose with epochs: 90.8% at 10, "
        "95.4% at 20, 97.4% at 30, 98.2% at 50 (200–300 samples per class, checked between runs) and 99.0% at 80 "
        "(the bundled weights). Measured with the digit protocol shared by all digit models (10,000 samples, "
        "1,000 asked of each digit, from one generator): label accuracy 99.07% (8 and 9 are the weakest at "
        "98.4% and 98.2%) and a classifier-feature Fréchet distance of 1.50 against 0.387 for real training digits, "
        "3.9x the floor (with the previous classifier: 99.09%, 1.36 vs 0.376, 3.6x). Both goals of issue 14 "
        "(≥ 99.5% and ≤ 2x the floor) are NOT met by these weights; "
        "what limits them is training time on this CPU: accuracy was still rising at 80 epochs, and one "
        "epoch takes about 63 s on one thread (938 steps of 67 ms), so 80 epochs are about 85 minutes and a "
        "longer run did not fit the session that added this protocol (its training slot went to gan-digits-mlp).",
    )
    train_defaults = {"epochs": 80, "batch_size": 64, "checkpoint_every": 1000, "sample_count": 100}

    def card_info(self) -> CardInfo:
        return card_for_dataset(self.card, self.config.dataset)

    def build(self, config: CganDigitsMlpConfig) -> nn.Module:
        return EmbeddingGenerator(config.nz)

    def sample_latents(self, n: int, generator: torch.Generator, label: Any = "all") -> tuple[torch.Tensor, ...]:
        return torch.randn(n, self.config.nz, generator=generator), labels_for(n, label)

    def decode(self, latents: tuple[torch.Tensor, torch.Tensor], label: Any = "all") -> torch.Tensor:
        z, labels = latents
        return (self.net(z, labels.to(z.device)) + 1) / 2

    def load_data(self, root: Path | None, split: str = "train") -> dict[str, torch.Tensor]:
        return load_mnist(root, split, name=self.config.dataset)

    def setup_training(self, device: torch.device) -> TrainingSetup:
        disc = EmbeddingDiscriminator(self.config.dropout).to(device)
        return adam_pair(self.net, disc, self.config.lr, self.config.beta1)

    def train_step(self, setup: TrainingSetup, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        gen, disc = setup.nets["generator"], setup.nets["discriminator"]
        real = batch["images"].float() / 127.5 - 1
        b, device = len(real), real.device
        fake_labels = torch.randint(0, NUM_CLASSES, (b,), device=device)
        fake = gen(torch.randn(b, self.config.nz, device=device), fake_labels)
        return bce_gan_step(
            setup,
            real_logits=lambda: disc(real, batch["labels"]),
            fake_logits=lambda for_d: disc(fake.detach() if for_d else fake, fake_labels),
        )

    def evaluate(self, data_root: Any = None, num_samples: int | None = None, seed: int = 0) -> dict[str, Any]:
        return digit_metrics(self, data_root=data_root, num_samples=num_samples, seed=seed, conditional=True)
