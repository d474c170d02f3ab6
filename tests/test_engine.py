"""The shared engine: exact resume after SIGKILL, DDP on gloo, checkpoints, logging, run directories."""

from __future__ import annotations

import json
import os
import re
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


def test_a_run_without_a_progress_bar_says_how_each_epoch_went(tmp_path):
    """--no-progress (a run in the background or under a scheduler) still reports its epochs on stderr: the first,
    then at most one a minute, and the last."""
    args = ["--epochs", "3", "--batch-size", "64", "--data-limit", "640", "--threads", "1", "--no-progress"]
    proc = cli("train", "gan-ring8", *args, "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if " epoch " in line]
    first, last = "gan-ring8 epoch 1/3 (step 10/30)", "gan-ring8 epoch 3/3 (step 30/30)"  # epoch 2: too soon
    assert [line.split(":")[0] for line in lines] == [first, last]
    assert all(re.search(r": loss_d [-\d.e]+, loss_g [-\d.e]+$", line) for line in lines), lines


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
