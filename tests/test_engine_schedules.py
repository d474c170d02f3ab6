"""Averages, schedules and precision in the engine: an EMA of G (its BatchNorm statistics recomputed, started on
resume), a decay started on resume, bf16 autocast with channels_last and torch.compile, each resuming exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_engine import assert_same_state, assert_same_tensors

from hub_models.engine.checkpoint import load_checkpoint


def test_batchnorm_recalibration_after_ema_matches_the_generators_own_statistics():
    """EMA exports averaged weights; their BN statistics are recomputed from the generator's own latents."""
    import hub_models
    from hub_models.engine.batchnorm import recalibrate_batchnorm

    torch.manual_seed(0)
    model = hub_models.get_model_class("cgan-digits")()
    norms = [m for m in model.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in norms:  # statistics that belong to other weights, as an EMA average leaves them
        bn.running_mean.fill_(0.5)
        bn.running_var.fill_(4.0)
    latents = model.sample_latents(256, torch.Generator().manual_seed(1))

    def eval_vs_batch_stats() -> float:
        with torch.no_grad():
            model.net.eval()
            frozen = model.decode(latents)
            model.net.train()
            batch = model.decode(latents)
            model.net.eval()
        return float((frozen - batch).abs().mean())

    before = eval_vs_batch_stats()
    recalibrate_batchnorm(model, batch_size=64, batches=4, seed=0)
    after = eval_vs_batch_stats()
    assert after < 0.01 < 0.05 < before, (before, after)  # measured: 0.003 after, 0.095 before
    assert not model.net.training and all(bn.momentum == 0.1 for bn in norms)


def test_a_decay_started_on_resume_matches_one_planned_from_the_start(tmp_path):
    """lr_decay_start_epoch: a constant-lr run stopped at epoch 2 and resumed with a decay from epoch 2 (pix2pix's
    n_epochs + n_epochs_decay) is the run planned that way from the start, bit for bit; an earlier start is refused."""
    from hub_models.engine.plan import lr_factor
    from hub_models.engine.settings import TrainSettings
    from hub_models.errors import HubModelsError
    from hub_models.models.toy2d import GanRing8

    # 8 steps/epoch; no evaluations: a run ended at epoch 2 evaluates there, one planned to 4 does not
    common = {"batch_size": 256, "data_limit": 2048, "seed": 5, "threads": 1, "progress": False, "eval_every": 0}
    decay = {"epochs": 4, "lr_schedule": "linear", "lr_decay_start_epoch": 2, "ema_decay": 0.9}
    planned = GanRing8().train(tmp_path / "planned", **decay, **common)
    staged = tmp_path / "staged"
    GanRing8().train(staged, epochs=2, ema_decay=0.9, **common)  # constant lr so far
    with pytest.raises(HubModelsError, match="gives step 9 another lr.*may start at epoch 2 or later"):
        GanRing8().train(staged, resume=True, **{**decay, "lr_decay_start_epoch": 1}, **common)
    GanRing8().train(staged, resume=True, **decay, **common)
    assert_same_tensors(planned / "model.safetensors", staged / "model" / "model.safetensors")
    assert_same_state(
        load_checkpoint(planned.parent / "checkpoint.safetensors"), load_checkpoint(staged / "checkpoint.safetensors")
    )
    # the lr holds for 2 epochs, then falls linearly to 0 at the last step
    plan = TrainSettings(**decay).to_dict()
    assert [lr_factor(plan, s, 32, 8) for s in (0, 15, 16, 24, 32)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    with pytest.raises(HubModelsError, match="lr_decay_start_epoch = 4 is not before the end of training"):
        GanRing8().train(tmp_path / "late", **{**decay, "lr_decay_start_epoch": 4}, **common)
    with pytest.raises(HubModelsError, match="lr_decay_start_epoch applies only to lr_schedule = 'linear'"):
        TrainSettings.from_dict({"lr_decay_start_epoch": 3})


def test_an_average_started_on_resume_matches_one_planned_from_the_start(tmp_path):
    """ema_start_epoch lets a finished run grow an EMA of G when extended, and a fresh run reproduce it exactly."""
    from hub_models.errors import HubModelsError
    from hub_models.models.toy2d import GanRing8

    # 8 steps/epoch; no evaluations: a run ended at epoch 2 evaluates there, one planned to 4 does not
    common = {"batch_size": 256, "data_limit": 2048, "seed": 5, "threads": 1, "progress": False, "eval_every": 0}
    planned = GanRing8().train(tmp_path / "planned", epochs=4, ema_decay=0.9, ema_start_epoch=2, **common)
    staged = tmp_path / "staged"
    GanRing8().train(staged, epochs=2, **common)  # a finished run without an average
    assert "ema" not in load_checkpoint(staged / "checkpoint.safetensors")

    with pytest.raises(HubModelsError, match="set ema_start_epoch to 2 or later"):
        GanRing8().train(staged, epochs=4, ema_decay=0.9, ema_start_epoch=1, resume=True, **common)
    with pytest.raises(HubModelsError, match="ema_start_epoch = 4 is not before the end of training"):
        GanRing8().train(tmp_path / "late", epochs=4, ema_decay=0.9, ema_start_epoch=4, **common)

    # a dry run averages from its first step, so a recipe's late start does not stop it
    GanRing8().train(tmp_path / "dry", epochs=4, ema_decay=0.9, ema_start_epoch=3, dry_run=True, **common)
    assert load_checkpoint(tmp_path / "dry" / "checkpoint.safetensors")["ema"]["n_averaged"].item() == 3

    GanRing8().train(staged, epochs=4, ema_decay=0.9, ema_start_epoch=2, resume=True, **common)
    assert_same_tensors(planned / "model.safetensors", staged / "model" / "model.safetensors")
    # a run averaging from step 0, replanned at epoch 1 to start its average at epoch 2, drops the early average
    early = tmp_path / "early"
    GanRing8().train(early, epochs=1, ema_decay=0.9, **common)
    assert load_checkpoint(early / "checkpoint.safetensors")["ema"]["n_averaged"].item() == 8
    GanRing8().train(early, epochs=4, ema_decay=0.9, ema_start_epoch=2, resume=True, **common)
    assert_same_tensors(planned / "model.safetensors", early / "model" / "model.safetensors")
    # what was exported is the average of the last 2 epochs, not the last generator
    state = load_checkpoint(staged / "checkpoint.safetensors")
    exported = load_file(staged / "model" / "model.safetensors")
    assert state["ema"]["n_averaged"].item() == 16
    assert any(not torch.equal(exported[k], state["nets"]["generator"][k]) for k in exported)


def _faces_folder(folder: Path, n: int = 16) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (64, 64), (16 * i, 255 - 16 * i, 128)).save(folder / f"{i}.png")
    return folder


def test_the_bundled_runs_settings_amp_channels_last_linear_threads_resume_exactly(tmp_path):
    """The face recipes train with bf16 autocast, channels_last, a linear decay and 2 threads: stop, resume, same."""
    from hub_models.engine import Trainer, TrainSettings
    from hub_models.models.dcgan_faces import DcganFaces

    torch.set_num_threads(2)
    data = DcganFaces().load_data(_faces_folder(tmp_path / "faces"))
    settings = TrainSettings(
        steps=6, batch_size=4, seed=4, amp=True, channels_last=True, lr_schedule="linear", threads=2, ema_decay=0.9
    )
    small = {"nz": 16, "ngf": 8, "ndf": 8}
    straight = Trainer(DcganFaces(small), settings, data)
    losses = [float(step["loss_d"].detach()) for step in straight.run()]
    assert len(losses) == 6 and all(torch.isfinite(torch.tensor(losses)))
    conv = straight.raw_nets["generator"].main[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    first = Trainer(DcganFaces(small), settings, data)
    for _ in first.run():
        if first.step == 2:
            break
    state = first.state_dict()  # before the next Trainer seeds torch: the RNG is process-wide, like torch's
    second = Trainer(DcganFaces(small), settings, data)
    second.load_state_dict(state)
    for _ in second.run():
        pass
    assert_same_state(straight.state_dict(), second.state_dict())
    straight.finish()
    second.finish()
    assert_same_state(straight.model.net.state_dict(), second.model.net.state_dict())


def test_compiled_training_checkpoints_the_plain_networks():
    """compile=True trains through torch.compile, but the checkpoint holds the plain modules' state dicts."""
    from hub_models.engine import Trainer, TrainSettings
    from hub_models.models.toy2d import GanRing8

    settings = TrainSettings(steps=4, batch_size=64, data_limit=256, compile=True)
    trainer = Trainer(GanRing8({**vars(GanRing8.Config()), "hidden": 16}), settings, GanRing8().load_data(None))
    for losses in trainer.run():
        assert torch.isfinite(losses["loss_g"])
    state = trainer.state_dict()
    assert trainer.setup.nets["generator"] is not trainer.raw_nets["generator"]  # compiled wrappers were used
    assert not any("_orig_mod" in key for net in state["nets"].values() for key in net)
    GanRing8({**vars(GanRing8.Config()), "hidden": 16}).net.load_state_dict(state["nets"]["generator"])
