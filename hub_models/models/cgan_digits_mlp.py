"""``cgan-digits-mlp``: the MLP conditional GAN of the PyTorch book chapter on 28x28 MNIST.

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

from ..contract import GenerativeModel
from ..data.mnist import load_mnist
from ..metrics.digits import digit_metrics, digit_metrics_declared
from ..spec import CardInfo, TrainingSetup
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
    """Returns logits (the book's Sigmoid + BCELoss as BCEWithLogits)."""

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
        source="The conditional GAN of "
        "chapter 8, 'Generative deep learning', of Wu Maogui, Yu Mingmin, Yang Benfa, Li Tao and "
        "Zhang Yuelei, *Python Deep Learning: Based on PyTorch* (Python 深度学习：基于 PyTorch; China Machine Press, "
        "2019): nn.Embedding(10, 10), G 110-256-512-1024-784, D 794-1024-512-256-1 with dropout 0.4.",
        notes="Architecture as in the book; D outputs logits trained with BCEWithLogits; Adam 2e-4, beta1 0.5; "
        "images scaled to [-1, 1]; the book's 200 epochs at constant lr. Changed in training, not in the networks: "
        "the exported G is an exponential moving average (EMA) of the trained G, which matters more than any epoch "
        "count: at epoch 110 the raw G scores 98.6% label accuracy and FD 5.06, an average of it (decay 0.999 "
        "from the start) 99.1% and 1.41. The bundled weights (train/cgan-digits-mlp.toml) average longer over "
        "the end of the run: decay 0.9998 (about 5,000 steps) begun at epoch 150. The curve under Training is "
        "that average every 10 epochs from epoch 160, on 5,000 samples (500 asked of each digit; real training "
        "digits score FD 0.459 at that size), while the 0.999 average of the same run went from 91.9% and FD 20.0 "
        "at epoch 10 to 99.2% and 0.92 at epoch 200. With the full protocol (10,000 samples, "
        "1,000 asked of each digit, one generator) at epoch 200: label accuracy 99.52% (the weakest: 5 at 99.0%, "
        "3 and 9 at 99.3%) and FD 0.817 = 2.11x the 0.387 of real training digits; the 0.999 average of the same "
        "run: 99.28% and 0.814 (2.10x).",
        limits="The label accuracy goal (≥ 99.5%) is met at the edge (its standard error on 10,000 samples is "
        "about 0.07 point, and the first 5,000 samples score 99.40%); the FD goal (≤ 2x the real-digit floor) is "
        "not met (2.11x). For scale, the classifier reads the real test digits at 99.39% and its own training "
        "digits at 99.51%: these samples are read as reliably as real digits. The FD was still falling by about "
        "10% every 20 epochs at epoch 200 (one epoch: 55–70 s on one CPU thread), so a longer run would likely "
        "lower it. 28x28 greyscale digits only.",
    )

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
