"""Model-agnostic helpers for Gaussian latents: the truncation input and spherical interpolation between seeds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..spec import Input, check_steps, make_generator

if TYPE_CHECKING:
    from ..contract import GenerativeModel

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


def interpolate_seeds(model: GenerativeModel, seed_a: int, seed_b: int, steps: int, **inputs: Any) -> torch.Tensor:
    """``steps`` samples of ``model`` along the great circle between the latents of two seeds (the frames of an
    animation): ``interpolate`` of a model whose ``sample_latents`` draws one Gaussian tensor."""
    steps, inputs = check_steps(steps), model.parse_inputs(inputs)
    z = [model.sample_latents(1, make_generator(seed), **inputs) for seed in (seed_a, seed_b)]
    path = slerp(z[0].flatten(), z[1].flatten(), torch.linspace(0, 1, steps)).view(steps, *z[0].shape[1:])
    return model.decode_latents(path, **inputs)
