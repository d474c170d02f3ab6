"""Model-agnostic helpers for Gaussian latents: the truncation input and spherical interpolation."""

from __future__ import annotations

import torch

from ..spec import Input

TRUNCATION = Input(
    "truncation",
    "float",
    1.0,
    label="truncation ψ",
    minimum=0.6,  # below it a face GAN's samples wash out into one mean face (0.5 ghostly, 0.1 plain squares)
    maximum=1.0,
    help="scale latents toward the mean (0): lower = more typical, less varied samples",
)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors ``a`` and ``b`` (D) at fractions ``t`` (T) → T×D."""
    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
