"""The alternating D/G update every GAN here shares (``hub_models.models.gan_steps``)."""

from __future__ import annotations

import contextlib
import sys
from unittest import mock

import pytest
import torch

from hub_models.models import gan_steps
from hub_models.registry import get_model_class

BATCHES = {
    "dcgan-faces": lambda: {"images": torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)},
    "gan-digits-mlp": lambda: {"images": torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)},
    "gan-toy2d": lambda: {"points": torch.randn(16, 2)},
}


def one_step(model_id: str, frozen=None) -> tuple[dict[str, int], list[torch.Tensor], torch.nn.Module]:
    """One training step from fixed seeds: how many gradients each D parameter received, and G afterwards."""
    torch.manual_seed(0)
    model = get_model_class(model_id)()
    setup = model.setup_training(torch.device("cpu"))
    disc = setup.nets["discriminator"]
    received = {name: 0 for name, _ in disc.named_parameters()}
    for name, param in disc.named_parameters():
        param.register_post_accumulate_grad_hook(lambda _, name=name: received.__setitem__(name, received[name] + 1))
    batch = BATCHES[model_id]()
    with contextlib.ExitStack() as patches:
        for module in {gan_steps, sys.modules[type(model).__module__]} if frozen else ():
            if hasattr(module, "frozen"):  # the shared step's, and a plugin's own step's
                patches.enter_context(mock.patch.object(module, "frozen", frozen))
        torch.manual_seed(1)
        model.train_step(setup, batch)
    return received, [p.detach().clone() for p in setup.nets["generator"].parameters()], disc


@pytest.mark.parametrize("model_id", sorted(BATCHES))
def test_gs_update_computes_no_discriminator_weight_gradients(model_id):
    """G's loss needs D's input gradient only: each D parameter gets one gradient per step (from D's own loss), not
    a second one from G's loss that the next D step would discard. G's update is the same as with that waste, and D
    is trainable again afterwards."""
    received, gen_after, disc = one_step(model_id)
    assert set(received.values()) == {1}, received
    assert all(p.requires_grad for p in disc.parameters())

    @contextlib.contextmanager
    def computing_them(disc):
        yield

    wasteful, gen_wasteful, _ = one_step(model_id, frozen=computing_them)
    assert set(wasteful.values()) == {2}, wasteful  # the check above can tell the two apart
    for a, b in zip(gen_after, gen_wasteful, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
