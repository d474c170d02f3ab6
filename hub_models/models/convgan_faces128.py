"""``convgan-faces128``: the convolutional face GAN of T. Rashid's "Make Your First GAN With PyTorch", 128x128.

G: Linear(100, 3·11·11) + LeakyReLU(0.2) → 3×11×11 → ConvTranspose2d(3, 256, k8, s2) → 28×28 →
ConvTranspose2d(256, 256, k8, s2) → 62×62 → ConvTranspose2d(256, 3, k8, s2, p1) → 128×128, each followed by
BatchNorm + LeakyReLU(0.2), the last by BatchNorm + Sigmoid. D mirrors it: Conv2d(3, 256, k8, s2) → 61 →
Conv2d(256, 256, k8, s2) → 27 → Conv2d(256, 3, k8, s2) → 10, BatchNorm + LeakyReLU, then Linear(300, 1).
BCE, Adam; weights N(0, 0.02).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..contract import GenerativeModel
from ..data.faces import CELEBA_NOTE, load_faces
from ..metrics.fid import fid_declared, fid_kid
from ..spec import CardInfo, TrainingSetup
from .gan_steps import adam_pair, bce_gan_step, dcgan_init
from .latents import TRUNCATION, interpolate_seeds


def convgan_generator(nz: int = 100) -> nn.Module:
    return nn.Sequential(
        nn.Linear(nz, 3 * 11 * 11),
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
    def __init__(self, nz: int = 100) -> None:
        super().__init__()
        self.model = convgan_generator(nz)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)


def convgan_discriminator() -> nn.Module:
    """Returns logits (the book's Sigmoid + BCELoss as BCEWithLogits)."""
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
    nz: int = 100  # latent size (the book's 100)
    lr: float = 1e-4  # G's learning rate (and D's unless lr_d is set)
    lr_d: float | None = None  # D's learning rate, when it differs (TTUR, Heusel et al. 2017)
    beta1: float = 0.5
    beta2: float = 0.999
    flip: bool = True  # random horizontal flips of real faces (on the device)
    # R1 gradient penalty on D (Mescheder et al. 2018): gamma/2 * E||grad_x D(x)||^2 on real faces; 0 = off
    r1_gamma: float = 0.0


class ConvganFaces128(GenerativeModel):
    model_id = "convgan-faces128"
    Config = ConvganFaces128Config
    inputs = (TRUNCATION,)
    dataset = "celeba64"
    image_size = 128
    supports_interpolation = True
    reduced_precision = (torch.bfloat16,)
    metrics = fid_declared("64x64 upsampled to 128x128 bicubic, as in training")
    card = CardInfo(
        summary="A convolutional GAN generating 128x128 faces (Linear → 3x11x11 → three 8x8 transposed convolutions).",
        datasets=("flwrlabs/celeba",),
        license="other",
        license_name="celeba-non-commercial-research",
        license_link="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",  # CelebA terms: non-commercial research
        tags=("gan", "faces", "celeba", "non-commercial"),
        source="The convolutional face GAN of T. Rashid, 'Make Your First GAN With PyTorch' (2020), at 128x128.",
        notes="Trained on the 64x64 CelebA faces upsampled to 128x128 (PIL bicubic, once, when the faces are "
        "decoded). D outputs logits (BCEWithLogits). The bundled weights are a short CPU run "
        "(train/convgan-faces128.toml): 1,800 steps of batch 32, i.e. 1.44 epochs of the 40k train faces, ~2 h on "
        "2 cores with bfloat16 autocast and channels_last; the exported G is an exponential moving average "
        "(decay 0.998) of the generator over the last 550 steps (from epoch 1), with its BatchNorm statistics "
        "recomputed from its own samples. train/convgan-faces128-gpu.toml is the same recipe for 10 epochs on a "
        "GPU; these weights are not from it.",
        limits=CELEBA_NOTE + " An under-trained model: expect blurry, washed-out faces whose features do not "
        "always line up (as the book itself reports), with a blue cast and a faint 2-px grid from the stride-2 "
        "8x8 transposed convolutions: Inception FID 370 at 5k samples (dcgan-faces: 21.4 at 10k), measured with "
        "each 1,000-sample chunk seeded on its own rather than one generator for all samples. Trained from "
        "64 px faces, it cannot show detail beyond 64 px.",
    )

    def build(self, config: ConvganFaces128Config) -> nn.Module:
        gen = ConvGanGenerator(config.nz)
        gen.apply(dcgan_init)
        return gen

    # ------------------------------------------------------------------ generation
    def sample_latents(self, n: int, generator: torch.Generator, truncation: float = 1.0) -> torch.Tensor:
        return torch.randn(n, self.config.nz, generator=generator) * truncation

    def decode(self, latents: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        return self.net(latents)  # sigmoid output: already in [0, 1]

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, truncation: float = 1.0) -> torch.Tensor:
        """Faces along the great circle between the latents of two seeds (frames for an animation)."""
        return interpolate_seeds(self, seed_a, seed_b, steps, truncation=truncation)

    # ------------------------------------------------------------------ training
    def load_data(self, root: Path | None, split: str = "train") -> dict[str, torch.Tensor]:
        return load_faces(root, split, size=self.image_size)  # 64 px CelebA upsampled bicubic when decoded

    def setup_training(self, device: torch.device) -> TrainingSetup:
        disc = convgan_discriminator().to(device)
        disc.apply(dcgan_init)
        fused = {"fused": True} if device.type == "cuda" else {"foreach": True}  # fewer kernels per Adam step
        cfg = self.config
        return adam_pair(self.net, disc, cfg.lr, cfg.beta1, beta2=cfg.beta2, lr_d=cfg.lr_d, **fused)

    def train_step(self, setup: TrainingSetup, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        gen, disc = setup.nets["generator"], setup.nets["discriminator"]
        real = batch["images"].float().div_(255)  # uint8 → [0, 1], the range of G's sigmoid
        if self.config.flip:
            flip = torch.rand(len(real), device=real.device) < 0.5
            real = torch.where(flip[:, None, None, None], real.flip(3), real)
        fake = gen(torch.randn(len(real), self.config.nz, device=real.device))
        gamma = self.config.r1_gamma
        if gamma:
            real.requires_grad_(True)  # R1 differentiates D's real logits with respect to the images

        def r1(on_real: torch.Tensor) -> torch.Tensor:
            (grad,) = torch.autograd.grad(on_real.float().sum(), real, create_graph=True)
            return gamma / 2 * grad.float().pow(2).flatten(1).sum(1).mean()

        return bce_gan_step(
            setup,
            real_logits=lambda: disc(real),
            fake_logits=lambda for_d: disc(fake.detach() if for_d else fake),
            d_penalty=r1 if gamma else None,
        )

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data_root: Any = None, num_samples: int | None = None, seed: int = 0) -> dict[str, Any]:
        return fid_kid(self, data_root=data_root, num_samples=num_samples or 5_000, seed=seed)
