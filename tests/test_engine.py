"""The shared engine: exact resume after SIGKILL, DDP on gloo, checkpoints, logging, settings."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hub_models.engine.checkpoint import load_checkpoint

TRAIN = [
    "gan-ring8",
    "--steps",
    "1500",
    "--batch-size",
    "64",
    "--checkpoint-every",
    "25",
    "--seed",
    "3",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--no-progress",
    "--set",
    "hidden=64",
]


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hub_models.cli", *args], capture_output=True, text=True, timeout=600, **kwargs
    )


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, tb = load_file(a), load_file(b)
    assert ta.keys() == tb.keys()
    for key in ta:
        assert torch.equal(ta[key], tb[key]), f"{key} differs"


def train_then_sigkill(args: list[str], ckpt: Path, at_step: int, timeout: float = 300) -> int:
    """Start `hub-models train ARGS`, SIGKILL it once its checkpoint ``ckpt`` reaches ``at_step``; the step it holds."""
    child = subprocess.Popen(
        [sys.executable, "-m", "hub_models.cli", "train", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + timeout
    while time.time() < deadline and child.poll() is None:
        if ckpt.exists() and load_checkpoint(ckpt)["step"] >= at_step:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    return load_checkpoint(ckpt)["step"]


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    straight = tmp_path / "straight"
    proc = cli("train", *TRAIN, "--out", str(straight))
    assert proc.returncode == 0, proc.stderr

    killed = tmp_path / "killed"
    ckpt = killed / "checkpoint.safetensors"
    step = train_then_sigkill([*TRAIN, "--out", str(killed)], ckpt, 100)
    assert 100 <= step < 1500
    assert not (killed / "model").exists()

    proc = cli("train", *TRAIN, "--out", str(killed), "--resume")
    assert proc.returncode == 0, proc.stderr
    assert_same_tensors(straight / "model" / "model.safetensors", killed / "model" / "model.safetensors")
    # the whole training state (G and D, optimisers, RNG, fixed noise, loss sums) matches too
    a, b = load_checkpoint(straight / "checkpoint.safetensors"), load_checkpoint(ckpt)
    assert a["step"] == b["step"] == 1500
    assert_same_state(a, b)
    # the settings file still says how the run started, and records the resume
    record = json.loads((killed / "train_settings.json").read_text())
    assert record["settings"]["resume"] is False and record["resumed"][0]["step"] == step


def assert_same_state(a, b, where="state") -> None:
    """Recursive equality of two checkpoint states: every tensor, number and string."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}/{i}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_state_comparison_sees_each_part_of_a_checkpoint(tmp_path):
    """The helper above must fail when any part differs (optimiser moments, RNG, D), not only G."""
    from hub_models.models.toy2d import GanRing8

    run = GanRing8().train(tmp_path / "a", steps=5, batch_size=64, data_limit=512, progress=False).parent
    state = load_checkpoint(run / "checkpoint.safetensors")
    for path in (
        ("optimizers", "discriminator", "state", 0, "exp_avg"),
        ("rng", 0, "torch"),
        ("nets", "discriminator"),
    ):
        other = load_checkpoint(run / "checkpoint.safetensors")
        node = other
        for key in path[:-1]:
            node = node[key]
        leaf = node[path[-1]]
        if isinstance(leaf, dict):  # a network: change one of its tensors
            leaf[next(iter(leaf))] = leaf[next(iter(leaf))] + 1
        else:
            node[path[-1]] = leaf.clone().flatten().roll(1).view_as(leaf)
        with pytest.raises(AssertionError):
            assert_same_state(state, other)


def test_python_api_and_cli_with_the_same_seed_give_identical_weights(tmp_path):
    """The engine owns the seed, the initialisation included: no torch.manual_seed needed around .train()."""
    import hub_models

    args = ["--steps", "30", "--batch-size", "64", "--seed", "11", "--threads", "1", "--no-progress"]
    proc = cli("train", "gan-ring8", *args, "--set", "hidden=32", "--out", str(tmp_path / "cli"))
    assert proc.returncode == 0, proc.stderr
    torch.manual_seed(12345)  # whatever the global RNG holds before, the run is the same
    cls = hub_models.get_model_class("gan-ring8")
    export = cls({**vars(cls.Config()), "hidden": 32}).train(
        tmp_path / "api", steps=30, batch_size=64, seed=11, threads=1, progress=False
    )
    assert_same_tensors(tmp_path / "cli" / "model" / "model.safetensors", export / "model.safetensors")
    assert_same_state(
        load_checkpoint(tmp_path / "cli" / "checkpoint.safetensors"),
        load_checkpoint(tmp_path / "api" / "checkpoint.safetensors"),
    )


def test_step_api_resumes_a_linear_schedule_bit_for_bit():
    """Trainer (the engine's step API): stop anywhere, restore the state dict, continue = one straight run."""
    from hub_models.engine import Trainer, TrainSettings
    from hub_models.models.toy2d import GanToy2D

    settings = TrainSettings(steps=40, batch_size=128, seed=2, lr_schedule="linear", data_limit=2048)
    data = GanToy2D().load_data(None)
    straight = Trainer(GanToy2D(), settings, data)
    for _ in straight.run():
        pass
    lrs = [group["lr"] for opt in straight.setup.optimizers.values() for group in opt.param_groups]
    assert lrs == [0.0, 0.0]  # decayed to zero at the last step, by torch.optim.lr_scheduler

    first = Trainer(GanToy2D(), settings, data)
    for _ in first.run():
        if first.step == 17:
            break
    state = first.state_dict()
    second = Trainer(GanToy2D(), settings, data)
    second.load_state_dict(state)
    for _ in second.run():
        pass
    assert second.step == 40
    assert_same_state(straight.state_dict(), second.state_dict())


RESUME = {"batch_size": 64, "data_limit": 1024, "seed": 1, "threads": 1, "progress": False}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 2}, "trained with seed = 1, not 2"),
        ({"batch_size": 32}, "trained with batch_size = 64, not 32"),
        ({"data_limit": 512}, "trained with data_limit = 1024, not 512"),
        (
            {"lr_schedule": "linear"},
            r"lr_schedule = 'constant' over 32 steps; this plan \(lr_schedule = 'linear', 48 "
            r"steps\) gives step 1 another lr",
        ),
        ({"epochs": 1}, "past the 16 steps now planned"),
    ],
)
def test_resume_with_changed_settings_is_refused_in_one_line(tmp_path, change, message):
    from hub_models.errors import HubModelsError
    from hub_models.models.toy2d import GanRing8

    GanRing8().train(tmp_path / "run", epochs=2, **RESUME)  # 16 steps per epoch
    with pytest.raises(HubModelsError, match=message):
        GanRing8().train(tmp_path / "run", resume=True, **{"epochs": 3, **RESUME, **change})


def test_resume_rules_for_config_linear_plans_and_foreign_checkpoints(tmp_path):
    from hub_models.errors import HubModelsError
    from hub_models.models.toy2d import GanRing8, GanToy2D

    GanRing8().train(tmp_path / "run", epochs=1, **RESUME)
    with pytest.raises(HubModelsError, match=r"another gan-ring8 config \(hidden differ\)"):
        GanRing8({**vars(GanRing8.Config()), "hidden": 16}).train(tmp_path / "run", epochs=2, resume=True, **RESUME)
    with pytest.raises(HubModelsError, match="written by gan-ring8"):
        GanToy2D().train(tmp_path / "run", epochs=2, resume=True, **RESUME)
    # a longer plan at constant lr is the documented rule: it continues
    GanRing8().train(tmp_path / "run", epochs=2, resume=True, **RESUME)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")["step"] == 32
    # a linear decay cannot be re-planned: the steps already taken used the old plan
    GanRing8().train(tmp_path / "lin", epochs=1, lr_schedule="linear", **RESUME)
    with pytest.raises(HubModelsError, match=r"'linear' over 16 steps; this plan .* gives step 1 another lr"):
        GanRing8().train(tmp_path / "lin", epochs=2, lr_schedule="linear", resume=True, **RESUME)

    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # truncated
    with pytest.raises(HubModelsError, match="unreadable.*start a new run"):
        GanRing8().train(tmp_path / "run", epochs=3, resume=True, **RESUME)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(ckpt))  # a safetensors file of something else
    with pytest.raises(HubModelsError, match="not a hub-models training checkpoint"):
        GanRing8().train(tmp_path / "run", epochs=3, resume=True, **RESUME)
    proc = cli("train", "gan-ring8", "--epochs", "3", "--out", str(tmp_path / "run"), "--resume", "--no-progress")
    assert (
        proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a hub-models training checkpoint" in proc.stderr
    )


def test_resume_refuses_other_data(tmp_path, monkeypatch):
    from hub_models.errors import HubModelsError
    from hub_models.models.toy2d import GanRing8

    GanRing8().train(tmp_path / "run", epochs=1, **RESUME)
    load_data = GanRing8.load_data
    # the same config and settings, but the data directory now holds other examples
    monkeypatch.setattr(
        GanRing8, "load_data", lambda self, root, split="train": {"points": -load_data(self, root)["points"]}
    )
    with pytest.raises(HubModelsError, match="trained on other data .*resume with the same --data"):
        GanRing8().train(tmp_path / "run", epochs=2, resume=True, **RESUME)


def test_a_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """The checkpoint is written to a temporary name and renamed: dying mid-write loses nothing."""
    from hub_models.engine import checkpoint as ckpt_module
    from hub_models.models.toy2d import GanRing8

    run = tmp_path / "run"
    GanRing8().train(run, epochs=1, **RESUME)
    before = (run / "checkpoint.safetensors").read_bytes()
    real_save = ckpt_module.save_file

    def dies_midway(tensors, path, metadata=None):
        real_save(tensors, path, metadata=metadata)
        with open(path, "r+b") as fh:  # half of the new file is on disk when the process "dies"
            fh.truncate(len(before) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_module, "save_file", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        GanRing8().train(run, epochs=2, resume=True, **RESUME)
    assert (run / "checkpoint.safetensors").read_bytes() == before
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # no temporary left behind
    monkeypatch.undo()
    GanRing8().train(run, epochs=2, resume=True, **RESUME)  # and it resumes from there
    assert load_checkpoint(run / "checkpoint.safetensors")["step"] == 32


def test_run_directory_is_never_overwritten_and_resume_needs_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert cli("train", "gan-toy2d", "--steps", "5", "--out", str(out), "--no-progress").returncode == 0
    again = cli("train", "gan-toy2d", "--steps", "5", "--out", str(out), "--no-progress")
    assert again.returncode == 2 and "already holds a training run" in again.stderr
    fresh = cli("train", "gan-toy2d", "--resume", "--out", str(tmp_path / "new"), "--no-progress")
    assert fresh.returncode == 2 and "nothing to resume" in fresh.stderr


def test_run_directory_errors_speak_python_to_python_callers(tmp_path):
    from hub_models.errors import HubModelsError
    from hub_models.models.toy2d import GanToy2D

    GanToy2D().train(tmp_path / "run", steps=5, progress=False)
    with pytest.raises(HubModelsError) as again:
        GanToy2D().train(tmp_path / "run", steps=5, progress=False)
    assert "pass resume=True" in str(again.value) and "--" not in str(again.value)
    assert "pass --resume" in again.value.cli and "--out" in again.value.cli
    with pytest.raises(HubModelsError) as fresh:
        GanToy2D().train(tmp_path / "new", resume=True, progress=False)
    assert "drop resume=True" in str(fresh.value) and "drop --resume" in fresh.value.cli


def test_outputs_logs_samples_metrics_and_provenance(tmp_path):
    out = tmp_path / "run"
    proc = cli(
        "train",
        "gan-ring8",
        "--epochs",
        "2",
        "--data-limit",
        "2048",
        "--batch-size",
        "256",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "hidden=32",
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    metrics = json.loads((out / "metrics" / "epoch_002.json").read_text())
    assert metrics["step"] == 16 and {"loss_d", "loss_g"} <= metrics.keys()
    assert list((out / "logs").glob("events.out.tfevents.*"))
    config = json.loads((out / "model" / "config.json").read_text())
    prov = config["provenance"]
    assert prov["steps"] == 16 and prov["seed"] == 0 and prov["versions"]["torch"] == torch.__version__
    assert config["architecture"]["hidden"] == 32
    assert "hub-models train gan-ring8" in prov["command"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "logs"))
    events.Reload()
    assert "epoch/loss_d" in events.Tags()["scalars"]


def test_dry_run_touches_every_stage_quickly(tmp_path):
    proc = cli("train", "gan-ring8", "--dry-run", "--out", str(tmp_path / "dry"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "dry" / "model" / "config.json").read_text())
    assert config["provenance"]["steps"] == 3


def test_recipe_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "gan-ring8"\n[config]\nwidth = 3\n')
    proc = cli("train", "gan-ring8", "--config", str(bad), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "unknown keys ['width']" in proc.stderr
    bad.write_text('model = "gan-toy2d"\n')
    proc = cli("train", "gan-ring8", "--config", str(bad), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "is for 'gan-toy2d'" in proc.stderr
    bad.write_text("[train]\nbatch_size = 0\n")
    proc = cli("train", "gan-ring8", "--config", str(bad), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "batch_size must be a positive integer" in proc.stderr


# Settings that do not change a run's weights: where it ran (a recipe's device = "auto" resolves to the machine's) and
# how often it measures itself; the bundled runs recorded the device they resolved to and predate eval_every.
NOT_IN_THE_WEIGHTS = ("device", "eval_every", "eval_samples")


def test_every_bundled_checkpoint_has_the_recipe_it_was_trained_with():
    """Each bundled run has its recipe in the package, and the settings it finished with (in config.json) are it."""
    from hub_models.engine import packaged_recipes, read_recipe

    root = Path(__file__).resolve().parents[1]
    bundled = sorted((root / "hub_models" / "weights").glob("*/config.json"))
    recipes = packaged_recipes()
    assert bundled
    for config_path in bundled:
        name = config_path.parent.name
        assert name in recipes, f"no recipe hub_models/recipes/{name}.toml for bundled {name}"
        written = json.loads(config_path.read_text())
        recipe = read_recipe(recipes[name], name)
        trained = written["provenance"]["train_settings"]
        train = {k: v for k, v in recipe.train.items() if k not in NOT_IN_THE_WEIGHTS}
        assert {k: trained.get(k) for k in train} == train, f"{name}.toml [train] differs from the bundled run"
        assert recipe.train.get("device", "auto") in ("auto", trained["device"]), name
        config = recipe.config
        assert {k: written["architecture"].get(k) for k in config} == config, f"{name}.toml [config] differs"


def test_every_recipe_is_valid_and_train_is_the_packaged_folder():
    """Each packaged recipe names a known model, its tables are accepted as-is, it runs on any machine, and the
    checkout's train/ is that folder (never a second copy)."""
    from hub_models.engine import TrainSettings, packaged_recipes, read_recipe
    from hub_models.registry import get_trainable_class
    from hub_models.spec import config_from_dict

    root = Path(__file__).resolve().parents[1]
    assert (root / "train").resolve() == (root / "hub_models" / "recipes").resolve()
    recipes = packaged_recipes()
    assert len(recipes) >= 10
    for name, path in recipes.items():
        # a recipe names its model (convgan-faces128-gpu.toml: convgan-faces128); the digit models' judge is
        # trained by the engine too, but it is not a plugin
        recipe = read_recipe(path)
        cls = get_trainable_class(recipe.model_id)
        config_from_dict(cls.Config, recipe.config, what=path.name)
        settings = TrainSettings.from_dict(recipe.train)
        assert settings.device == "auto", f"{name}: a recipe must run on any machine (device = 'auto')"


def test_no_config_trains_exactly_the_recipe(tmp_path, monkeypatch):
    """`hub-models train MODEL` and `Model().train()`, given no recipe, hand the engine the settings and config of the
    model's packaged recipe (the one that produced its bundled weights), the MNIST judge's included."""
    import tomllib

    import hub_models.engine
    from hub_models import cli as cli_module
    from hub_models.engine import TrainSettings, packaged_recipes
    from hub_models.locations import BUILTIN_MODELS
    from hub_models.registry import get_model_class, get_trainable_class

    seen = []

    def fake_fit(model, settings, out_dir, data_root=None, command=None, recipe=None):
        seen.append((model.model_id, settings, model.config))
        return Path(out_dir) / "model"

    monkeypatch.setattr(hub_models.engine, "fit", fake_fit)
    recipes = packaged_recipes()
    for model_id in [*BUILTIN_MODELS, "mnist-classifier"]:
        table = tomllib.loads(recipes[model_id].read_text())
        cls = get_trainable_class(model_id)
        expected = (model_id, TrainSettings.from_dict(table["train"]), cls.Config(**table.get("config", {})))
        seen.clear()
        assert cli_module.main(["train", model_id, "--out", str(tmp_path)]) == 0
        if model_id != "mnist-classifier":  # a plugin (the judge generates nothing: no GenerativeModel.train)
            cls().train(tmp_path)
        assert seen == [expected] * (1 if model_id == "mnist-classifier" else 2), model_id
    # a model built with its own config keeps it; options given override the recipe's [train]
    seen.clear()
    gan = get_model_class("gan-digits-mlp")
    gan(gan.Config(r1_gamma=0.0)).train(tmp_path, epochs=2)
    assert seen[0][2].r1_gamma == 0.0 and seen[0][1].epochs == 2 and seen[0][1].ema_decay == 0.999


def test_recipe_command_prints_the_packaged_recipe():
    from hub_models.engine import packaged_recipes

    recipes = packaged_recipes()
    for name in ("gan-digits-mlp", "convgan-faces128-gpu", "mnist-classifier"):
        proc = cli("recipe", name)
        assert proc.returncode == 0 and proc.stdout == recipes[name].read_text(), name
    proc = cli("recipe", "no-such-model")
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not os.path.exists(Path(sys.executable).parent / "torchrun"),
    reason="torchrun not installed",
)
def test_two_process_gloo_run_saves_one_consistent_checkpoint(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "hub_models.cli",
            "train",
            "gan-ring8",
            "--steps",
            "40",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--no-progress",
            "--set",
            "hidden=32",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["provenance"]["world_size"] == 2
    # the digest both ranks agreed on (the engine refuses to export otherwise) is that of the exported generator
    import hub_models
    from hub_models.engine.distributed import state_digest

    exported_model = hub_models.load("gan-ring8", weights=out / "model", device="cpu")
    assert config["provenance"]["replica_digest"] == state_digest(exported_model.net)
    state = load_checkpoint(out / "checkpoint.safetensors")
    assert state["world_size"] == 2 and len(state["rng"]) == 2 and state["step"] == 40
    # the exported generator is the checkpointed one
    exported = load_file(out / "model" / "model.safetensors")
    for key, tensor in exported.items():
        assert torch.equal(tensor, state["nets"]["generator"][key])


def test_batchnorm_recalibration_after_ema_matches_the_generators_own_statistics():
    """EMA exports averaged weights; their BN statistics are recomputed from the generator's own latents."""
    import hub_models
    from hub_models.engine.trainer import recalibrate_batchnorm

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
    from hub_models.engine.settings import TrainSettings
    from hub_models.engine.trainer import lr_factor
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


def test_every_train_setting_is_a_cli_option_with_help(tmp_path):
    """The train options are generated from TrainSettings: a new setting needs no CLI code, and each one works."""
    import dataclasses

    from hub_models.engine import TrainSettings

    proc = cli("train", "--help")
    assert proc.returncode == 0 and "``" not in proc.stdout
    for f in dataclasses.fields(TrainSettings):
        flag = ("--no-" if f.default is True else "--") + f.name.replace("_", "-")
        assert flag in proc.stdout, flag
    out = tmp_path / "run"
    proc = cli(
        "train", "gan-ring8", "--steps", "16", "--batch-size", "64", "--lr-schedule", "linear", "--ema-decay", "0.9",
        "--log-every", "4", "--out", str(out), "--no-progress", "--set", "hidden=16",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    trained = json.loads((out / "model" / "config.json").read_text())["provenance"]["train_settings"]
    assert (trained["lr_schedule"], trained["ema_decay"], trained["log_every"]) == ("linear", 0.9, 4)
    # what reproduces the run, not how this invocation ran: no progress/resume/dry-run flags in config or card
    assert not {"progress", "resume", "dry_run", "dry_run_steps"} & set(trained)
    assert '"progress"' not in (out / "model" / "README.md").read_text()
    proc = cli("train", "gan-ring8", "--lr-schedule", "cosine", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "invalid choice: 'cosine'" in proc.stderr


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


def test_the_demos_live_training_is_the_engines_run(tmp_path):
    """One training loop: "train live" in the demo gives exactly what the engine gives with the same settings."""
    from hub_models.app.handlers import Handlers
    from hub_models.app.store import ModelStore
    from hub_models.models.toy2d import GanToy2D

    handlers = Handlers(ModelStore(device="cpu"))
    frames = list(handlers.toy_train("gan-toy2d", 40, 3))
    assert len(frames) == 20 and frames[-1][1].startswith("step 40/40: w2 = ")
    export = GanToy2D().train(tmp_path / "run", steps=40, seed=3, batch_size=1024, lr_schedule="linear", progress=False)
    trained = hub_models_load(export)
    shown = frames[-1][0].value["data"]  # the last frame's scatter: target points, then the generated ones
    generated = [row for row in shown if row[2] == "generated"]
    expected = trained.generate(1000, seed=0)
    assert len(generated) == 1000
    assert torch.allclose(torch.tensor([row[:2] for row in generated]), expected, atol=1e-5)


def hub_models_load(export: Path):
    import hub_models

    return hub_models.load("gan-toy2d", weights=export, device="cpu")
