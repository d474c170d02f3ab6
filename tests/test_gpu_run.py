"""The prepared GPU run of convgan-faces128 (train/gpu/convgan-faces128.py), on the CPU so the script cannot rot.

The device part runs as on the lent GPU (the two calls, fake CelebA-format shards carried in a stage folder), with
the environment overrides its header documents: the CPU, 2 steps of batch 1. Then `collect` takes the files back
as the device tool lays them out. Nothing here needs CelebA or a GPU. The FID on the device (a 2-sample one) is a
slow test: torchmetrics' FID takes ~1 min on 2 cores whatever the sample count (2048x2048 eigenvalues); the fast
collect tests record a given measurement in device.json, as a device with the Inception network would.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "train" / "gpu" / "convgan-faces128.py"
BUNDLED = ROOT / "hub_models" / "weights" / "convgan-faces128"


def write_shard(path: Path, n: int, seed: int) -> None:
    """A shard in the CelebA copy's format: JPEG bytes back to back, and their offsets."""
    rng = np.random.default_rng(seed)
    blobs = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
        blobs.append(buf.getvalue())
    offsets = np.cumsum([0, *map(len, blobs)])
    np.savez(path, jpeg=np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets=offsets)


def stage_part(stage: Path, part: int, shards: dict[str, int]) -> None:
    import hashlib

    folder = stage / f"part{part}"
    folder.mkdir(parents=True)
    for i, (name, n) in enumerate(shards.items()):
        write_shard(folder / name, n, seed=10 * part + i)
    sums = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in shards}
    (folder / "SHA256SUMS.json").write_text(json.dumps(sums))


def script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600)


def device_env(tmp: Path) -> dict[str, str]:
    stage = tmp / "stage"
    stage_part(stage, 1, {"celeba64_train_00.npz": 4})
    stage_part(stage, 2, {"celeba64_train_01.npz": 4, "celeba64_test_00.npz": 4})
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HUB_MODELS_GPU_STAGE": str(stage),
        "HUB_MODELS_GPU_WORK": str(tmp / "work"),
        "HUB_MODELS_GPU_DEVICE": "cpu",
        "HUB_MODELS_GPU_SMOKE": "0",  # call 1's dry run is call 2's training command with --dry-run
        "HUB_MODELS_GPU_TRAIN_ARGS": "--steps 2 --batch-size 1 --ema-start-epoch 0 --threads 2 --no-progress",
        "HUB_MODELS_GPU_EVAL": "0",
        "HUB_MODELS_CACHE": str(tmp / "cache"),
    }


@pytest.fixture(scope="module")
def device_run(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Calls 1 and 2 of the device part on the CPU; yields (the files of call 2, the environment)."""
    tmp = tmp_path_factory.mktemp("gpu_run")
    env = device_env(tmp)
    fresh = script("device", "2", env={**env, "OUT": str(tmp / "out0")})
    assert fresh.returncode == 3 and "make call 1 again" in fresh.stderr, fresh.stderr  # part 2 before part 1
    for part in (1, 2):
        proc = script("device", str(part), env={**env, "OUT": str(tmp / f"out{part}")})
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp / "out2", env


def test_device_part_trains_and_packs_what_can_come_back(device_run):
    out, env = device_run
    assert sorted(p.name for p in (Path(env["HUB_MODELS_GPU_WORK"]) / "celeba64").iterdir()) == [
        "celeba64_test_00.npz", "celeba64_train_00.npz", "celeba64_train_01.npz"
    ]  # fmt: skip
    report = json.loads((out / "device.json").read_text())
    assert report["status"] == "trained" and report["train"] == "ok" and not report["resumed"]
    assert report["provenance"]["steps"] == 2 and report["provenance"]["examples"] == 8
    assert (
        report["provenance"]["command"] == "hub-models train convgan-faces128 --config train/convgan-faces128-gpu.toml"
    )
    # what the device tool brings back: at most 8 plain files of at most 16 MiB, in $OUT itself
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir()), files
    assert {"device.json", "train.log", "samples.png"} <= set(files)
    assert report["parts"] == ["export.tar.000", "export.tar.001"]  # the 17 MB safetensors needs two parts


def with_measurement(out: Path, tmp: Path, fid: float) -> Path:
    """The files of call 2 as a device with the Inception network returns them: its 5k measurement in device.json."""
    files = tmp / "files_at"
    shutil.copytree(out, files)
    report = json.loads((files / "device.json").read_text())
    report["eval"] = {"fid": fid, "kid": 0.05, "kid_std": 0.001, "num_samples": 5000}
    (files / "device.json").write_text(json.dumps(report))
    return files


def test_collect_refuses_fid_over_the_goal_and_leaves_the_bundled_weights(device_run, tmp_path):
    out, env = device_run
    before = {p.name: p.read_bytes() for p in BUNDLED.iterdir() if p.is_file()}
    stage = tmp_path / "stage"
    proc = script("collect", str(with_measurement(out, tmp_path, 95.5)), "--stage", str(stage), env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "FID 95.50 > 80: the bundled weights are untouched" in proc.stdout
    assert {p.name: p.read_bytes() for p in BUNDLED.iterdir() if p.is_file()} == before
    (kept,) = stage.glob("rejected-*")
    config = json.loads((kept / "model" / "config.json").read_text())
    assert config["metrics"] == {"fid": 95.5, "kid": 0.05, "kid_std": 0.001, "num_samples": 5000}
    assert config["provenance"]["command"] == "hub-models train convgan-faces128 --config train/convgan-faces128.toml"


def test_collect_installs_an_export_that_meets_the_goal(device_run, tmp_path):
    out, env = device_run
    target = tmp_path / "weights" / "convgan-faces128"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("the previous bundle")
    files = with_measurement(out, tmp_path, 42.0)
    proc = script("collect", str(files), "--stage", str(tmp_path / "stage"), "--target", str(target), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in target.iterdir()) == [
        ".eval_results", "README.md", "config.json", "model.safetensors", "sample.png"
    ]  # fmt: skip
    assert json.loads((target / "config.json").read_text())["metrics"]["fid"] == 42.0
    card = (target / "README.md").read_text()
    assert "--config train/convgan-faces128.toml" in card and "42" in card
    # a damaged part is refused before anything is measured or installed
    (files / "export.tar.001").write_bytes(b"damaged")
    proc = script("collect", str(files), "--stage", str(tmp_path / "stage"), "--target", str(target), env=env)
    assert proc.returncode == 2 and "does not match its sha256" in proc.stderr


@pytest.mark.slow
def test_device_part_measures_fid_where_it_can(tmp_path):
    """Call 2 with the Inception network there (as here): a 2-sample FID lands in $OUT as metrics.json."""
    env = {**device_env(tmp_path), "HUB_MODELS_GPU_EVAL": "1", "HUB_MODELS_GPU_EVAL_SAMPLES": "2"}
    for part in (1, 2):
        proc = script("device", str(part), env={**env, "OUT": str(tmp_path / f"out{part}")})
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "out2" / "metrics.json").read_text())
    assert metrics["num_samples"] == 2 and metrics["fid"] > 0
    assert json.loads((tmp_path / "out2" / "device.json").read_text())["eval"] == metrics
