"""``convgan-faces128``: the convolutional face GAN of seed 003 ("Make Your First GAN With PyTorch"), 128x128.

G: Linear(100, 3·11·11) + LeakyReLU(0.2) → 3×11×11 → ConvTranspose2d(3, 256, k8, s2) → 28×28 →
ConvTranspose2d(256, 256, k8, s2) → 62×62 → ConvTranspose2d(256, 3, k8, s2, p1) → 128×128, each followed by
BatchNorm + LeakyReLU(0.2), the last by BatchNorm + Sigmoid. D mirrors it: Conv2d(3, 256, k8, s2) → 61 →
Conv2d(256, 256, k8, s2) → 27 → Conv2d(256, 3, k8, s2) → 10, BatchNorm + LeakyReLU, then Linear(300, 1).
BCE, Adam; weights N(0, 0.02). Shares the face pipeline (data, truncation, slerp, BN folding, FID) with
``dcgan-faces``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..contract import CardInfo, Metric
from .cgan_digits import dcgan_init
from .dcgan_faces import CELEBA_NOTE, DcganFaces


def convgan_generator() -> nn.Module:
    return nn.Sequential(
        nn.Linear(100, 3 * 11 * 11),
        nn.LeakyReLU(0.2),
        nn.Unflatten(1, (3, 11, 11)),
        nn.ConvTranspose2d(3, 256, kernel_size=8, stride=2),  # 28x28
        nn.BatchNorm2d(256),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(256, 256, kernel_size=8, stride=2),  # 62x62
        nn.BatchNorm2d(256),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(256, 3, kernel_size=8, stride=2, padding=1),  # 128x128
        nn.BatchNorm2d(3),
        nn.Sigmoid(),
    )


class ConvGanGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = convgan_generator()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)


def convgan_discriminator() -> nn.Module:
    """Returns logits (the seed's Sigmoid + BCELoss as BCEWithLogits)."""
    return nn.Sequential(
        nn.Conv2d(3, 256, kernel_size=8, stride=2),  # 61
        nn.BatchNorm2d(256),
        nn.LeakyReLU(0.2),
        nn.Conv2d(256, 256, kernel_size=8, stride=2),  # 27
        nn.BatchNorm2d(256),
        nn.LeakyReLU(0.2),
        nn.Conv2d(256, 3, kernel_size=8, stride=2),  # 10
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(3 * 10 * 10, 1),
        nn.Flatten(0),
    )


@dataclass
class ConvganFaces128Config:
    nz: int = 100
    lr: float = 1e-4
    beta1: float = 0.5
    flip: bool = True


class ConvganFaces128(DcganFaces):
    model_id = "convgan-faces128"
    Config = ConvganFaces128Config
    image_size = 128
    metrics = (
        Metric("fid", "Inception FID", protocol="as dcgan-faces (test faces upsampled 64→128 bicubic, as in training)"),
        Metric("kid", "Inception KID", protocol="same features and images as FID; torchmetrics KID"),
    )
    card = CardInfo(
        summary="A convolutional GAN generating 128x128 faces (Linear → 3x11x11 → three 8x8 transposed convolutions).",
        datasets=("flwrlabs/celeba",),
        license="other",
        license_name="celeba-non-commercial-research",
        license_link="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",  # CelebA terms: non-commercial research
        tags=("gan", "faces", "celeba", "non-commercial"),
        source="Seed 003: the convolutional face GAN of 'Make Your First GAN With PyTorch' (T. Rashid), 128x128.",
        notes=CELEBA_NOTE + " Trained here on the 64x64 CelebA faces upsampled to 128x128 (PIL bicubic, once, "
        "when the faces are decoded), so it cannot show detail beyond 64 px. D outputs logits (BCEWithLogits). "
        "The bundled weights are a short CPU run (train/convgan-faces128.toml): 1,800 steps of batch 32, i.e. 1.44 "
        "epochs of the 40k train faces, ~2 h on 2 cores with bfloat16 autocast and channels_last; the exported G is "
        "an exponential moving average (decay 0.998) of the generator over the last 550 steps (from epoch 1), with "
        "its BatchNorm statistics recomputed from its own samples. Expect blurry, washed-out faces whose features "
        "do not always line up (as the seed itself reports), with a blue cast and a faint 2-px grid from the "
        "stride-2 8x8 transposed convolutions: Inception FID 370 at 5k samples (dcgan-faces: 21.5 at 10k). A longer "
        "run on a GPU (raise `steps`) should do better; it was not possible here.",
    )
    train_defaults = {"epochs": 1, "batch_size": 32, "checkpoint_every": 50, "sample_count": 16}

    def build(self, config: ConvganFaces128Config) -> nn.Module:
        gen = ConvGanGenerator()
        gen.apply(dcgan_init)
        return gen

    def generator_layers(self) -> nn.Sequential:
        return self.net.model

    def sample_latents(self, n: int, generator: torch.Generator, truncation: float = 1.0) -> torch.Tensor:
        return torch.randn(n, self.config.nz, generator=generator) * truncation

    @staticmethod
    def to_unit(images: torch.Tensor) -> torch.Tensor:
        return images  # sigmoid output is already in [0, 1]

    @staticmethod
    def from_uint8(images: torch.Tensor) -> torch.Tensor:
        return images.float().div_(255)

    def build_discriminator(self) -> nn.Module:
        return convgan_discriminator()

    def noise(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.config.nz, device=device)
