"""Evaluation during training: the curve file, TensorBoard, the best export, and exact resume after SIGKILL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image
from safetensors.torch import load_file
from test_engine import train_then_sigkill

RUN = ["gan-ring8", "--steps", "600", "--batch-size", "64", "--seed", "5", "--device", "cpu", "--threads", "1"]
RUN += ["--no-progress", "--set", "hidden=32", "--eval-samples", "2000"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub_models.cli", *args], capture_output=True, text=True, timeout=600)


def curve(run: Path) -> list[dict]:
    """The curve without its timings (the only field that depends on the machine's load)."""
    rows = [json.loads(line) for line in (run / "curve.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "time"} for row in rows]


def same_tensors(a: Path, b: Path) -> bool:
    ta, tb = load_file(a), load_file(b)
    return ta.keys() == tb.keys() and all((ta[k] == tb[k]).all() for k in ta)


def test_a_run_measures_itself_keeps_its_best_and_trains_the_same_weights(tmp_path):
    plain = tmp_path / "plain"
    assert cli("train", *RUN, "--eval-every", "0", "--out", str(plain)).returncode == 0  # the recipe's: off
    run = tmp_path / "eval"
    proc = cli("train", *RUN, "--eval-every", "100", "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    # measuring (own seed, forked RNG, a copy of G) changes nothing in the training
    assert same_tensors(plain / "model" / "model.safetensors", run / "model" / "model.safetensors")
    assert not (plain / "curve.jsonl").exists() and not (plain / "best").exists()
    assert "No training curve was recorded" in (plain / "model" / "README.md").read_text()

    rows = curve(run)
    assert [row["step"] for row in rows] == [100, 200, 300, 400, 500, 600]
    said = [line for line in proc.stderr.splitlines() if " evaluated: " in line]  # no progress bar: one line each
    assert [line.split(" evaluated")[0] for line in said] == [f"gan-ring8 step {row['step']}" for row in rows]
    assert all(f"modes_covered {row['modes_covered']} (best" in line for line, row in zip(said, rows, strict=True))
    assert all(0 <= row["modes_covered"] <= 8 and row["num_samples"] == 2000 for row in rows), rows
    # best/ is the export of the best evaluation by the primary metric (modes covered; ties keep the earliest)
    top = max(row["modes_covered"] for row in rows)
    best_step = next(row["step"] for row in rows if row["modes_covered"] == top)
    assert rows[-1]["best"] == {"step": best_step, "value": top, "metric": "modes_covered"}
    best = json.loads((run / "best" / "config.json").read_text())
    assert best["provenance"]["steps"] == best_step and best["metrics"]["modes_covered"] == top
    if best_step == 600:  # the last evaluation measured the very export of the run
        assert same_tensors(run / "best" / "model.safetensors", run / "model" / "model.safetensors")
    # the export records the numbers of the evaluation at its step, and its card states them
    final = json.loads((run / "model" / "config.json").read_text())
    assert final["metrics"] == {k: v for k, v in rows[-1].items() if k not in ("step", "epoch", "best")}
    # the picture of the curve, in the run and in the export, whose card shows it and keeps the curve file
    for where in (run, run / "model"):
        with Image.open(where / "curve.png") as picture:
            assert picture.format == "PNG" and picture.width >= 400
    assert curve(run / "model") == rows and "](curve.png)" in (run / "model" / "README.md").read_text()
    # TensorBoard has every evaluated number under eval/
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "logs"))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/modes_covered")] == [100, 200, 300, 400, 500, 600]
    # the resolved settings of the run are in its directory
    record = json.loads((run / "train_settings.json").read_text())
    assert record["settings"]["eval_every"] == 100 and record["settings"]["ema_decay"] is None


def test_sigkill_then_resume_gives_the_same_curve_best_and_weights(tmp_path):
    """Evaluations every 30 steps, checkpoints every 100: the kill lands with evaluations past the checkpoint."""
    args = [*RUN, "--eval-every", "30", "--checkpoint-every", "100", "--ema-decay", "0.99"]
    straight = tmp_path / "straight"
    assert cli("train", *args, "--out", str(straight)).returncode == 0

    killed = tmp_path / "killed"
    step = train_then_sigkill([*args, "--out", str(killed)], killed / "checkpoint.safetensors", 200)
    assert 200 <= step < 600

    proc = cli("train", *args, "--out", str(killed), "--resume")
    assert proc.returncode == 0, proc.stderr
    assert curve(killed) == curve(straight)
    for part in ("model", "best"):
        assert same_tensors(straight / part / "model.safetensors", killed / part / "model.safetensors"), part
        a, b = (json.loads((run / part / "config.json").read_text()) for run in (straight, killed))
        assert a["metrics"] == b["metrics"] and a["provenance"]["steps"] == b["provenance"]["steps"], part


def test_bad_eval_settings_are_one_line_errors(tmp_path):
    proc = cli("train", "gan-ring8", "--eval-every", "-1", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "eval_every must be a non-negative integer" in proc.stderr
    proc = cli("train", "gan-ring8", "--eval-samples", "0", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "eval_samples must be a positive integer" in proc.stderr


def test_a_failed_evaluation_names_the_fix_in_the_callers_terms(tmp_path, monkeypatch):
    import pytest

    from hub_models.errors import DataError, HubModelsError
    from hub_models.models.toy2d import GanToy2D

    def no_data(self, *args, **kwargs):
        raise DataError.worded("no test data: {fix}", fix=("pass data=DIR", "pass --data DIR"))

    monkeypatch.setattr(GanToy2D, "evaluate", no_data)
    with pytest.raises(HubModelsError) as failed:
        GanToy2D().train(tmp_path / "run", steps=4, eval_every=2, progress=False)
    python, command_line = str(failed.value), failed.value.cli
    assert python.startswith("the evaluation at step 2 failed: no test data: pass data=DIR"), python
    assert "resume=True" in python and "eval_every=0" in python and "--" not in python
    assert "pass --data DIR" in command_line and "--resume" in command_line and "--eval-every 0" in command_line
