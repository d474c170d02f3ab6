"""``dcgan-faces``: the DCGAN of the PyTorch DCGAN tutorial (N. Inkawhich) on 64x64 CelebA faces.

G: z (100×1×1) → ConvTranspose2d to ngf·8 × 4×4 → ngf·4 × 8×8 → ngf·2 × 16×16 → ngf × 32×32 → 3 × 64×64,
BatchNorm + ReLU between, tanh at the end. D mirrors it with strided Conv2d, BatchNorm and LeakyReLU(0.2) down to
one score. Weights N(0, 0.02), BatchNorm weights N(1, 0.02); BCE; Adam 2e-4, beta1 0.5; ngf = ndf = 64.
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


class DCGANGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """Returns logits: the tutorial's Sigmoid + BCELoss become BCEWithLogits (same loss, autocast-safe)."""

    def __init__(self, ndf: int = 64, channels: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).flatten()


@dataclass
class DcganFacesConfig:
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    flip: bool = True  # random horizontal flips of real faces (on the device)


class DcganFaces(GenerativeModel):
    model_id = "dcgan-faces"
    Config = DcganFacesConfig
    inputs = (TRUNCATION,)
    dataset = "celeba64"
    image_size = 64
    metrics = fid_declared("64x64", goal=25.0)
    card = CardInfo(
        summary="DCGAN (Radford et al., 2016) generating 64x64 faces, trained on CelebA.",
        datasets=("flwrlabs/celeba",),
        license="other",
        license_name="celeba-non-commercial-research",
        license_link="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",  # CelebA terms: non-commercial research
        tags=("gan", "dcgan", "faces", "celeba", "non-commercial"),
        source="'DCGAN Tutorial' of the PyTorch documentation (N. Inkawhich), after Radford et al., 'Unsupervised "
        "Representation Learning with Deep Convolutional Generative Adversarial Networks' (2016): weights_init "
        "N(0, 0.02), BCE, Adam 2e-4 beta1 0.5, fixed noise.",
        notes="Changes from the tutorial: D outputs logits (BCEWithLogits); real faces are randomly flipped "
        "left-right; training used bfloat16 autocast and channels_last on the CPU (train/dcgan-faces.toml, 48 "
        "epochs of the 40k train faces); the exported G is an exponential moving average (decay 0.999) of the "
        "generator, begun at epoch 20, with its BatchNorm statistics recomputed from its own samples. The curve "
        "under Training is the FID of the export after epochs 8, 16 and 20 (the raw G: no average yet), 32 and "
        "48 (the average), on 10,000 samples vs 10,000 test faces with each 1,000-sample chunk seeded on its own; "
        "at epoch 48 the raw G scores 35.9 where the average scores 21.5. The bundled weights score 21.4 with the "
        "protocol of the table above (one generator for all samples).",
        limits=CELEBA_NOTE + " 64x64 pixels: faces are recognisable but often distorted (asymmetric eyes, "
        "smeared backgrounds, artefacts at the hairline), and the sample mirrors CelebA's bias toward young, "
        "light-skinned, smiling celebrities.",
    )

    # capabilities (see the contract): interpolation between seeds; samples checked in bfloat16 too
    supports_interpolation = True
    reduced_precision = (torch.bfloat16,)

    def build(self, config: DcganFacesConfig) -> nn.Module:
        gen = DCGANGenerator(config.nz, config.ngf)
        gen.apply(dcgan_init)
        return gen

    # ------------------------------------------------------------------ generation
    def sample_latents(self, n: int, generator: torch.Generator, truncation: float = 1.0) -> torch.Tensor:
        return torch.randn(n, self.config.nz, 1, 1, generator=generator) * truncation

    def decode(self, latents: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        return (self.net(latents) + 1) / 2  # tanh → [0, 1]

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, truncation: float = 1.0) -> torch.Tensor:
        """Faces along the great circle between the latents of two seeds (frames for an animation)."""
        return interpolate_seeds(self, seed_a, seed_b, steps, truncation=truncation)

    # ------------------------------------------------------------------ training
    def load_data(self, root: Path | None, split: str = "train") -> dict[str, torch.Tensor]:
        return load_faces(root, split, size=64)

    def setup_training(self, device: torch.device) -> TrainingSetup:
        disc = DCGANDiscriminator(self.config.ndf).to(device)
        disc.apply(dcgan_init)
        fused = {"fused": True} if device.type == "cuda" else {"foreach": True}  # fewer kernels per Adam step
        return adam_pair(self.net, disc, self.config.lr, self.config.beta1, **fused)

    def train_step(self, setup: TrainingSetup, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        gen, disc = setup.nets["generator"], setup.nets["discriminator"]
        real = batch["images"].float().div_(127.5).sub_(1)  # uint8 → [-1, 1], the range of G's tanh
        if self.config.flip:  # random horizontal flips, on the device
            flip = torch.rand(len(real), device=real.device) < 0.5
            real = torch.where(flip[:, None, None, None], real.flip(3), real)
        fake = gen(torch.randn(len(real), self.config.nz, 1, 1, device=real.device))
        # real and fake go through D in separate batches, as in the tutorial (BatchNorm statistics)
        return bce_gan_step(
            setup, real_logits=lambda: disc(real), fake_logits=lambda for_d: disc(fake.detach() if for_d else fake)
        )

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data_root: Any = None, num_samples: int | None = None, seed: int = 0) -> dict[str, Any]:
        return fid_kid(self, data_root=data_root, num_samples=num_samples or 10_000, seed=seed)
