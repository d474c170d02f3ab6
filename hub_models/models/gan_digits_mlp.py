"""``gan-digits-mlp``: the unconditional MLP GAN of the PyTorch book chapter on 28x28 MNIST.

G: z (64) → 256 → 256 → 784 with ReLU and a tanh output; D: 784 → 256 → 256 → 1 with LeakyReLU(0.2).
BCE loss, fresh noise for the generator step, as in the book.
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
from .gan_steps import adam_pair, bce_gan_step


class MlpGenerator(nn.Module):
    def __init__(self, latent: int, hidden: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 784),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(len(z), 1, 28, 28)


@dataclass
class GanDigitsMlpConfig:
    latent_size: int = 64
    hidden_size: int = 256
    lr: float = 2e-4
    beta1: float = 0.5
    dataset: str = "mnist"  # or "fashion-mnist"
    # R1 gradient penalty on D (Mescheder et al. 2018): gamma/2 * E||grad_x D(x)||^2 on real images; 0 = off
    r1_gamma: float = 0.0


class GanDigitsMlp(GenerativeModel):
    model_id = "gan-digits-mlp"
    Config = GanDigitsMlpConfig
    metrics = digit_metrics_declared(conditional=False, share_goals=True)
    card = CardInfo(
        summary="A two-hidden-layer MLP GAN (latent 64, hidden 256) generating 28x28 MNIST digits.",
        datasets=("ylecun/mnist",),
        tags=("gan", "mnist", "mlp"),
        source="The MLP GAN of "
        "chapter 8, 'Generative deep learning', of Wu Maogui, Yu Mingmin, Yang Benfa, Li Tao and "
        "Zhang Yuelei, *Python Deep Learning: Based on PyTorch* (Python 深度学习：基于 PyTorch; China Machine Press, "
        "2019), itself after yunjey's pytorch-tutorial.",
        notes="Architecture and loss as in the book (BCE, fresh noise for the G step); D outputs logits "
        "(BCEWithLogits); Adam 2e-4, beta1 0.5. Changed in training, not in the networks: (1) an R1 gradient "
        "penalty on D (Mescheder et al. 2018, gamma 10: 5 * E||grad_x D(x)||^2 on the real digits), because "
        "without it G collapses: a 15-epoch run without the penalty drew 53.8% ones, 0.0% sixes and 0.01% zeros "
        "among 10,000 samples (FD 152), and after one epoch the raw G drew only 8s without R1 but every digit "
        "(2.2–26%) with it; (2) the exported G is an exponential moving average of G (decay 0.999). Trained "
        "170 epochs (train/gan-digits-mlp.toml; the book: 200): the curve is flat from about epoch 130, and "
        "with a constant learning rate a run stopped at 170 is the run planned for 170. The curve under Training "
        "is the FD of the exported (EMA) G after epoch 5 and every 10 epochs to 160, on 2,000 samples read by an "
        "earlier version of the mnist-classifier (99.42% test accuracy; real training digits score 0.84 at that "
        "size), so its numbers are on another scale than the table's; curve.jsonl also holds each point's "
        "smallest and largest digit share. The bundled weights (epoch 170, the table's protocol): every "
        "digit between 8.7% and 11.2% of 10,000 samples (goal 5–15%: met) and FD 6.47.",
        limits="FD 6.47 is 17x the real-digit floor (0.387) and 7.9x cgan-digits-mlp's 0.817 (goal: 3x, not "
        "met): the digits are legible but rougher than the conditional model's. More epochs of this recipe do "
        "not close that gap: the curve is flat, and a linear lr decay over the book's last 30 epochs "
        "(lr_decay_start_epoch = 170, epochs = 200, resumed from epoch 170) left it flat too: FD on 5,000 samples "
        "(floor 0.459) 6.73 at 170, then 6.52, 6.54, 6.55, 6.66, 6.77, 6.72 every 5 epochs to 200. Untested "
        "guesses at the cause: this G is 5x smaller than cgan-digits-mlp's (0.28M vs 1.49M parameters) and has "
        "no label to separate the digits.",
    )

    def card_info(self) -> CardInfo:
        return card_for_dataset(self.card, self.config.dataset)

    def build(self, config: GanDigitsMlpConfig) -> nn.Module:
        return MlpGenerator(config.latent_size, config.hidden_size)

    def sample_latents(self, n: int, generator: torch.Generator, **inputs: Any) -> torch.Tensor:
        return torch.randn(n, self.config.latent_size, generator=generator)

    def decode(self, latents: torch.Tensor, **inputs: Any) -> torch.Tensor:
        return (self.net(latents) + 1) / 2

    def load_data(self, root: Path | None, split: str = "train") -> dict[str, torch.Tensor]:
        return {"images": load_mnist(root, split, name=self.config.dataset)["images"]}

    def setup_training(self, device: torch.device) -> TrainingSetup:
        h = self.config.hidden_size
        disc = nn.Sequential(
            nn.Flatten(), nn.Linear(784, h), nn.LeakyReLU(0.2), nn.Linear(h, h), nn.LeakyReLU(0.2), nn.Linear(h, 1)
        ).to(device)
        return adam_pair(self.net, disc, self.config.lr, self.config.beta1)

    def train_step(self, setup: TrainingSetup, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        gen, disc = setup.nets["generator"], setup.nets["discriminator"]
        real = batch["images"].float() / 127.5 - 1
        b, device = len(real), real.device
        fake = gen(torch.randn(b, self.config.latent_size, device=device))

        def fake_logits(for_d: bool) -> torch.Tensor:
            # the book draws fresh noise for the G step
            return disc(fake.detach()) if for_d else disc(gen(torch.randn(b, self.config.latent_size, device=device)))

        gamma = self.config.r1_gamma
        if gamma:
            real.requires_grad_(True)

        def r1(on_real: torch.Tensor) -> torch.Tensor:
            (grad,) = torch.autograd.grad(on_real.sum(), real, create_graph=True)
            return gamma / 2 * grad.pow(2).flatten(1).sum(1).mean()

        return bce_gan_step(
            setup, real_logits=lambda: disc(real), fake_logits=fake_logits, d_penalty=r1 if gamma else None
        )

    def evaluate(self, data_root: Any = None, num_samples: int | None = None, seed: int = 0) -> dict[str, Any]:
        return digit_metrics(self, data_root=data_root, num_samples=num_samples, seed=seed)
