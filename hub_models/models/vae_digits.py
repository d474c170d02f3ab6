"""``vae-digits``: the variational auto-encoder of the PyTorch book chapter (and pytorch/examples) on 28x28 MNIST.

Encoder 784 → 400 (ReLU) → μ, log σ² (20 each); a sample z = μ + σ·ε; decoder 20 → 400 (ReLU) → 784
(sigmoid). Loss per image: binary cross-entropy summed over pixels + KL(q(z|x) ‖ N(0, I)).
``generate`` samples the prior; ``reconstruct``, ``encode``, ``decode_latents`` (the contract's: latents →
images) and ``latent_walk`` expose the rest for the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ..contract import GenerativeModel
from ..data.mnist import load_mnist
from ..errors import HubModelsError
from ..metrics.digits import digit_metrics, digit_metrics_declared
from ..spec import CardInfo, Metric, TrainingSetup
from .digit_data import card_for_dataset


class VAE(nn.Module):
    def __init__(self, image_size: int = 784, h_dim: int = 400, z_dim: int = 20) -> None:
        super().__init__()
        self.fc1 = nn.Linear(image_size, h_dim)
        self.fc2 = nn.Linear(h_dim, z_dim)  # μ
        self.fc3 = nn.Linear(h_dim, z_dim)  # log σ²
        self.fc4 = nn.Linear(z_dim, h_dim)
        self.fc5 = nn.Linear(h_dim, image_size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(h), self.fc3(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc5(F.relu(self.fc4(z))))

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, log_var = self.encode(x)
        return self.decode(mu + eps * torch.exp(log_var / 2)), mu, log_var


def vae_loss(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(BCE summed over pixels, KL), each summed over the batch — as pytorch/examples."""
    bce = F.binary_cross_entropy(recon, x.flatten(1), reduction="sum")
    kld = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
    return bce, kld


PIXELS = 28 * 28  # the data is 28x28 digits: the encoder reads and the decoder writes exactly that many pixels


@dataclass
class VaeDigitsConfig:
    h_dim: int = 400
    z_dim: int = 20
    lr: float = 1e-3
    dataset: str = "mnist"  # or "fashion-mnist"


class VaeDigits(GenerativeModel):
    supports_reconstruction = True  # reconstruct(images): the demo's reconstruction tab offers it
    model_id = "vae-digits"
    Config = VaeDigitsConfig
    metrics = (
        Metric("test_loss", "test loss per image (BCE + KL, nats)", goal=100.0,
               protocol="the 10,000 MNIST test images in [0, 1]; one posterior sample each (seed 0); BCE summed over "
               "pixels + KL, averaged over images — the number pytorch/examples' VAE prints"),
        Metric("test_bce", "its reconstruction term (BCE)", protocol="the BCE part of the test loss, per image"),
        Metric("test_kld", "its KL term", protocol="the KL part of the test loss, per image: what the latents cost"),
        Metric("recon_mse", "reconstruction MSE per pixel",
               protocol="mean squared error between each test image and the decoding of its posterior mean μ"),
        *digit_metrics_declared(conditional=False),  # of samples of the prior, as for the GANs
    )  # fmt: skip
    card = CardInfo(
        summary="A variational auto-encoder (784-400-20) on MNIST: reconstruct, encode, sample, walk the latents.",
        datasets=("ylecun/mnist",),
        tags=("vae", "mnist", "autoencoder"),
        source="The VAE of "
        "chapter 8, 'Generative deep learning', of Wu Maogui, Yu Mingmin, Yang Benfa, Li Tao and "
        "Zhang Yuelei, *Python Deep Learning: Based on PyTorch* (Python 深度学习：基于 PyTorch; China Machine Press, "
        "2019): image_size 784, h_dim 400, z_dim 20, Adam 1e-3, batch 128; the same model as "
        "pytorch/examples' vae.",
        notes="Architecture, loss and optimiser as in the book; trained longer (150 epochs, the book: 30) with the "
        "learning rate decayed linearly to 0 (train/vae-digits.toml). Measured every 10 epochs, the test loss "
        "goes from 105.47 after 10 epochs to 101.78 after 50 and 100.035 after 150; the same recipe stopped at 50 "
        "epochs (the decay over 50) ends at 101.70. An earlier checkpoint scored 99.99 in a run that the recipe "
        "does not reproduce; this one is what `hub-models train vae-digits` trains.",
        limits="Reconstructions are faithful but soft, and samples of the prior are blurry: measured with the "
        "digit protocol of the GANs (10,000 samples read by the mnist-classifier) they cover every digit (6.2% "
        "to 13.8% each), but their classifier-feature Fréchet distance is 82.0, 212x that of real training "
        "digits (0.387; cgan-digits-mlp: 0.817). 28x28 greyscale digits only.",
    )

    def card_info(self) -> CardInfo:
        return card_for_dataset(self.card, self.config.dataset)

    def build(self, config: VaeDigitsConfig) -> nn.Module:
        return VAE(PIXELS, config.h_dim, config.z_dim)

    # ------------------------------------------------------------------ generation and the latent space
    def sample_latents(self, n: int, generator: torch.Generator, **inputs: Any) -> torch.Tensor:
        return torch.randn(n, self.config.z_dim, generator=generator)

    def decode(self, latents: torch.Tensor, **inputs: Any) -> torch.Tensor:
        return self.net.decode(latents).view(len(latents), 1, 28, 28)

    @staticmethod
    def _as_images(images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.shape[-2:] != (28, 28):
            raise HubModelsError("images must be a tensor of 28x28 digits (N×1×28×28 or N×28×28)")
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if x.min() < 0 or x.max() > 1:
            raise HubModelsError("float images must lie in [0, 1] (white digit on black, as MNIST)")
        return x.reshape(-1, 1, 28, 28)

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean μ and log-variance of each image (N×20 each)."""
        mu, log_var = self.net.encode(self._as_images(images).to(self.device))
        return mu.cpu(), log_var.cpu()

    @torch.inference_mode()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decode each image's posterior mean: N×1×28×28 in [0, 1]."""
        mu, _ = self.encode(images)
        return self.decode_latents(mu)

    @torch.inference_mode()
    def latent_walk(self, seed: int = 0, dims: tuple[int, int] = (0, 1), steps: int = 10, span: float = 2.5):
        """A steps×steps grid of decodings: two latent dimensions swept over ±span, the others from ``seed``."""
        if not 2 <= steps <= 30:
            raise HubModelsError(f"steps must be from 2 to 30, got {steps}")
        if not all(0 <= d < self.config.z_dim for d in dims) or dims[0] == dims[1]:
            raise HubModelsError(f"dims must be two different latent dimensions in 0..{self.config.z_dim - 1}")
        base = self.sample_latents(1, torch.Generator().manual_seed(seed))[0]
        values = torch.linspace(-span, span, steps)
        z = base.repeat(steps * steps, 1)
        z[:, dims[0]] = values.repeat(steps)
        z[:, dims[1]] = values.repeat_interleave(steps)
        return self.decode_latents(z)

    # ------------------------------------------------------------------ training
    def load_data(self, root: Path | None, split: str = "train") -> dict[str, torch.Tensor]:
        return {"images": load_mnist(root, split, name=self.config.dataset)["images"]}

    def setup_training(self, device: torch.device) -> TrainingSetup:
        return TrainingSetup(
            nets={"vae": self.net}, optimizers={"vae": torch.optim.Adam(self.net.parameters(), lr=self.config.lr)}
        )

    def train_step(self, setup: TrainingSetup, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        vae, opt = setup.nets["vae"], setup.optimizers["vae"]
        x = batch["images"].float() / 255
        mu_shape = (len(x), self.config.z_dim)
        recon, mu, log_var = vae(x, torch.randn(mu_shape, device=x.device))
        bce, kld = vae_loss(x, recon, mu, log_var)
        opt.zero_grad(set_to_none=True)
        (bce + kld).backward()
        opt.step()
        return {"loss": (bce + kld) / len(x), "bce": bce / len(x), "kld": kld / len(x)}

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data_root: Any = None, num_samples: int | None = None, seed: int = 0) -> dict[str, Any]:
        # the digit protocol of every digit model (samples of the prior; MNIST models only: its judge is an MNIST
        # classifier), then the VAE's own losses on the test split of the data set it was trained on
        result = {}
        if self.config.dataset == "mnist":
            result = digit_metrics(self, data_root=data_root, num_samples=num_samples, seed=seed)
        return {**result, **self.test_losses(data_root, num_samples, seed)}

    @torch.inference_mode()
    def test_losses(self, data_root: Any = None, num_images: int | None = None, seed: int = 0) -> dict[str, Any]:
        """Loss per image (BCE + KL, one posterior sample each) and reconstruction MSE on the test split of the
        config's data set (MNIST unless the config says otherwise)."""
        images = load_mnist(data_root, "test", name=self.config.dataset)["images"][: num_images or 10_000]
        x = images.float().to(self.device) / 255
        eps = torch.randn(len(x), self.config.z_dim, generator=torch.Generator().manual_seed(seed)).to(self.device)
        recon, mu, log_var = self.net(x, eps)
        bce, kld = vae_loss(x, recon, mu, log_var)
        mse = F.mse_loss(self.net.decode(mu), x.flatten(1))
        return {
            "test_loss": round(float(bce + kld) / len(x), 3),
            "test_bce": round(float(bce) / len(x), 3),
            "test_kld": round(float(kld) / len(x), 3),
            "recon_mse": round(float(mse), 5),
            "num_images": len(x),
        }
