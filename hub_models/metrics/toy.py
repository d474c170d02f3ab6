"""Metrics of the 2-D toy models: Fréchet (W2) distance between Gaussians, and mode coverage."""

from __future__ import annotations

import math

import torch


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (via eigh; negative noise clipped)."""
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T


def gaussian_w2(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """2-Wasserstein distance between N(mu1, cov1) and N(mu2, cov2).

    W2² = |mu1 - mu2|² + tr(cov1 + cov2 - 2 (cov2^½ cov1 cov2^½)^½) — the same formula FID uses (FID is
    W2² between Inception-feature Gaussians). Returns W2 (not squared), in data units.
    """
    mu1, cov1, mu2, cov2 = (t.double() for t in (mu1, cov1, mu2, cov2))
    root2 = _sqrtm_psd(cov2)
    cross = _sqrtm_psd(root2 @ cov1 @ root2)
    w2_sq = (mu1 - mu2).pow(2).sum() + torch.trace(cov1 + cov2 - 2 * cross)
    return math.sqrt(max(float(w2_sq), 0.0))


def mode_coverage(
    points: torch.Tensor, centers: torch.Tensor, std: float, min_share: float = 0.025
) -> dict[str, float]:
    """Modes hit by generated ``points`` (N×2) for a mixture with ``centers`` (K×2) and component ``std``.

    A sample is *high quality* when it lies within 3 std of its nearest center; a mode is *covered* when
    at least ``min_share`` of all samples are high-quality samples of that mode (a fifth of a fair share
    for 8 modes). Follows the protocol of the unrolled-GAN / VEEGAN ring experiments.
    """
    dist = torch.cdist(points.double(), centers.double())
    nearest_d, nearest = dist.min(dim=1)
    good = nearest_d <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    covered = int((counts >= min_share * len(points)).sum())
    return {"modes_covered": covered, "high_quality": float(good.double().mean())}
