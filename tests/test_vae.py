"""vae-digits: its extra methods (encode, reconstruct, decode_latents, latent_walk) and its bundled test loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_digits import DATA, _bundled, needs_data

import hub_models
from hub_models.errors import HubModelsError


def test_vae_reconstruct_encode_decode_walk():
    from hub_models.models.vae_digits import VaeDigits

    torch.manual_seed(0)
    vae = VaeDigits()
    images = torch.rand(5, 1, 28, 28)
    mu, log_var = vae.encode(images)
    assert mu.shape == log_var.shape == (5, 20)
    assert vae.reconstruct(images).shape == (5, 1, 28, 28)
    assert vae.decode_latents(mu).shape == (5, 1, 28, 28)
    assert vae.latent_walk(seed=0, steps=6).shape == (36, 1, 28, 28)
    with pytest.raises(HubModelsError, match="28x28"):
        vae.reconstruct(torch.rand(2, 1, 32, 32))
    with pytest.raises(HubModelsError, match="dims"):
        vae.latent_walk(dims=(0, 0))


@needs_data
def test_bundled_vae_test_loss_matches_card():
    recorded = _bundled("vae-digits")["test_loss"]
    measured = hub_models.load("vae-digits", device="cpu").test_losses(data_root=Path(DATA) / "mnist")["test_loss"]
    assert abs(measured - recorded) < 0.05  # same images, same seed: only float noise


def test_vae_reconstructs_each_digit_from_its_own_posterior():
    """reconstruct() decodes the posterior mean of each input: the bundled VAE gives back every test digit
    closer to itself than to any other, and the same output every call (no sampling)."""
    examples = np.load(Path(hub_models.__file__).parent / "app" / "mnist_test_examples.npy")
    images = torch.from_numpy(examples).float().reshape(-1, 1, 28, 28) / 255
    vae = hub_models.load("vae-digits", device="cpu")
    recon = vae.reconstruct(images)
    assert torch.equal(recon, vae.reconstruct(images))
    errors = (recon.flatten(1)[:, None] - images.flatten(1)[None]).pow(2).mean(-1)  # [reconstruction, input]
    assert torch.equal(errors.argmin(1), torch.arange(len(images)))
    assert float(errors.diagonal().mean()) < 0.03
    mu, _ = vae.encode(images)
    torch.testing.assert_close(recon, vae.decode_latents(mu))
