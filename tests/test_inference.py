"""The model-agnostic inference pass: BatchNorm folded into the convolutions, channels_last, optional bfloat16."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hub_models
from hub_models.errors import WeightsError
from hub_models.inference import fold_batchnorm, optimize_for_inference

FOLDED_MODELS = ["dcgan-faces", "convgan-faces128", "cgan-digits"]  # the ones whose generators hold BatchNorm


def _with_running_statistics(model_id: str) -> hub_models.GenerativeModel:
    """A freshly initialised model whose BatchNorm layers hold non-trivial statistics and affine parameters."""
    torch.manual_seed(0)
    model = hub_models.get_model_class(model_id)()
    for module in model.net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            with torch.no_grad():
                module.weight.normal_(1, 0.3)
                module.bias.normal_(0, 0.3)
    return model


def _count(net: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


@pytest.mark.parametrize("model_id", FOLDED_MODELS)
def test_the_pass_is_exact_against_the_unfolded_model_in_float32(model_id):
    model = _with_running_statistics(model_id)
    inputs = {"label": "all"} if model_id == "cgan-digits" else {}
    plain = model.generate(20, seed=3, **inputs)
    fast = optimize_for_inference(model)
    assert _count(model.net, nn.BatchNorm2d) > 0 and _count(fast.net, nn.BatchNorm2d) == 0  # folded, in the copy
    torch.testing.assert_close(fast.generate(20, seed=3, **inputs), plain, atol=2e-6, rtol=0)
    assert torch.equal(model.generate(20, seed=3, **inputs), plain)  # the model passed in is unchanged
    if model.supports_interpolation:
        torch.testing.assert_close(fast.interpolate(1, 2, steps=4), model.interpolate(1, 2, steps=4), atol=2e-6, rtol=0)


def test_folding_fuses_convolutions_and_transposed_convolutions_with_their_batchnorm():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.ConvTranspose2d(4, 6, 3, 2, 1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 5, 3, padding=1, bias=False), nn.BatchNorm2d(5),
        nn.Sequential(nn.Conv2d(5, 3, 1), nn.BatchNorm2d(3)),
    )  # fmt: skip
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 1)
            module.running_var.uniform_(0.2, 3.0)
    x = torch.randn(2, 4, 5, 5)
    expected = net.eval()(x)
    folded = fold_batchnorm(net)
    assert _count(folded, nn.BatchNorm2d) == 0 and _count(folded, nn.Identity) == 3
    torch.testing.assert_close(folded(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_id", hub_models.list_models())
def test_bundled_models_sample_the_same_after_the_pass(model_id):
    """Every bundled model, through the pass in float32, and in bfloat16 where it declares it (the demo's choice on
    CPUs with bf16 support): float32 samples to rounding, bfloat16 ones within 8/255 and 0.5/255 on average (measured:
    at most 5.8/255, 0.15-0.22/255 on average)."""
    model = hub_models.load(model_id, device="cpu")
    exact = model.generate(16, seed=0)
    torch.testing.assert_close(optimize_for_inference(model).generate(16, seed=0), exact, atol=2e-6, rtol=0)
    if torch.bfloat16 in model.reduced_precision:
        half = optimize_for_inference(model, torch.bfloat16).generate(16, seed=0)
        assert half.dtype == torch.float32
        assert (half - exact).abs().max() <= 8 / 255 and (half - exact).abs().mean() <= 0.5 / 255


def test_the_optimised_copy_is_not_saved(tmp_path):
    model = hub_models.load("dcgan-faces", device="cpu")
    with pytest.raises(WeightsError, match="optimize_for_inference"):
        optimize_for_inference(model).save_pretrained(tmp_path / "fast")
    assert not (tmp_path / "fast").exists()
