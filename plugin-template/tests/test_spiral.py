"""The contract checks hub-models runs on its own models, run on this plugin."""

from pathlib import Path

import torch
from hub_models_spiral.spiral import SpiralGAN

import hub_models
from hub_models.testing import check_plugin


def test_contract(tmp_path: Path) -> None:
    check_plugin(SpiralGAN, tmp_path, train=True)  # declarations, generate, save/load round trip, dry-run training


def test_installed_with_its_weights() -> None:
    assert "spiral-gan" in hub_models.list_models()
    model = hub_models.load("spiral-gan", device="cpu")  # the weights shipped in the wheel (package data)
    assert model.weights_dir is not None and model.weights_dir.name == "spiral-gan"
    points = model.generate(2000, seed=0)
    radius = points.norm(dim=1)
    assert torch.isfinite(points).all() and 0.3 < float(radius.median()) < 1.7  # on the spiral's scale (t/6)
