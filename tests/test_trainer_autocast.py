"""bfloat16 autocast in a training step must not hide an optimiser's in-place update from the next forward."""

from __future__ import annotations

import copy

import torch
from torch import nn

from hub_models.engine.trainer import autocast_for
from hub_models.models.gan_steps import adam_pair, bce_gan_step


def test_under_autocast_the_g_step_scores_fakes_with_the_d_its_d_step_just_updated():
    torch.manual_seed(0)
    gen, disc = nn.Linear(4, 8), nn.Linear(8, 1)
    setup = adam_pair(gen, disc, lr=0.1, beta1=0.5)
    real, z = torch.randn(16, 8), torch.randn(16, 4)
    scored, seen = [], {}

    def fake_logits(for_d: bool) -> torch.Tensor:
        fake = gen(z)
        logits = disc(fake.detach() if for_d else fake).flatten()
        scored.append(logits.detach().float())
        if not for_d:  # the G step: keep its fakes and D's weights at this moment
            seen.update(fake=fake.detach().clone(), disc=copy.deepcopy(disc.state_dict()))
        return logits

    with autocast_for(torch.device("cpu"), amp=True):
        bce_gan_step(setup, real_logits=lambda: disc(real).flatten(), fake_logits=fake_logits)
    d_step, g_step = scored
    # D took an Adam step at lr 0.1 between the two scorings: the same fakes must score differently
    # (a cached bfloat16 copy of D's weights would score them identically)
    assert not torch.equal(d_step, g_step)
    updated_d = nn.Linear(8, 1)
    updated_d.load_state_dict(seen["disc"])
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what the D of that moment gives those fakes
        expected = updated_d(seen["fake"]).flatten().float()
    assert torch.equal(g_step, expected)


def test_without_amp_the_step_runs_in_float32():
    with autocast_for(torch.device("cpu"), amp=False):
        assert nn.Linear(2, 2)(torch.randn(1, 2)).dtype == torch.float32
