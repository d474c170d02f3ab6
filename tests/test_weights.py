"""Checkpoints on disk: bad weights are refused in one line (never unpickled), saves are atomic, the card and the
metrics recorded by ``eval --update-card``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_spine import run_cli

import hub_models
from hub_models.cli import main
from hub_models.models.toy2d import GanRing8

# ---------------------------------------------------------------- bad weights


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    directory = tmp_path / "ckpt"
    GanRing8().save_pretrained(directory)
    return directory


def _expect_weights_error(ref, match: str, model: str = "gan-ring8") -> None:
    with pytest.raises(hub_models.WeightsError, match=match):
        hub_models.load(model, weights=ref)
    code = main(["generate", model, "--weights", str(ref), "-o", "/dev/null.png"])
    assert code == 2


def test_truncated_weights(checkpoint):
    data = (checkpoint / "model.safetensors").read_bytes()
    (checkpoint / "model.safetensors").write_bytes(data[: len(data) // 2])
    _expect_weights_error(checkpoint, "corrupt or truncated")


def test_garbage_weights(checkpoint):
    (checkpoint / "model.safetensors").write_bytes(b"\x00" * 64)
    _expect_weights_error(checkpoint, "corrupt or truncated")


def test_wrong_shapes(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    config["architecture"]["hidden"] = 64  # the tensors were saved with hidden = 128
    (checkpoint / "config.json").write_text(json.dumps(config))
    _expect_weights_error(checkpoint, "does not match the gan-ring8 architecture")


def test_missing_tensor(checkpoint):
    from safetensors.torch import load_file, save_file

    tensors = load_file(checkpoint / "model.safetensors")
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, checkpoint / "model.safetensors")
    _expect_weights_error(checkpoint, "does not match.*Missing")


def test_missing_config_keys(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    del config["architecture"]["hidden"]
    (checkpoint / "config.json").write_text(json.dumps(config))
    _expect_weights_error(checkpoint, r"missing config keys \['hidden'\]")


def test_unknown_config_keys(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    config["architecture"]["depth"] = 3
    (checkpoint / "config.json").write_text(json.dumps(config))
    _expect_weights_error(checkpoint, "unknown keys")


def test_config_for_another_model(checkpoint):
    _expect_weights_error(checkpoint, "config for 'gan-ring8', not 'gan-toy2d'", model="gan-toy2d")


def test_corrupt_config(checkpoint):
    (checkpoint / "config.json").write_text("{not json")
    _expect_weights_error(checkpoint, "not valid JSON")


def test_unknown_repo_offline(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    _expect_weights_error("nobody/nothing", "not in the local Hugging Face cache and HF_HUB_OFFLINE is set")


class _Tripwire:
    """Unpickling this runs code: it creates the file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_no_pickle_is_ever_read(checkpoint, tmp_path):
    """Real pickles that run code when loaded, where a careless loader would look: none of them is ever unpickled."""
    import pickle

    tripwire = tmp_path / "unpickled"
    payload = pickle.dumps({"weight": _Tripwire(tripwire)})
    (checkpoint / "model.safetensors").unlink()
    for name in ("pytorch_model.bin", "model.pt", "model.ckpt"):
        (checkpoint / name).write_bytes(payload)
    _expect_weights_error(checkpoint, "no model.safetensors")
    # a training checkpoint that is a pickle is refused too
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.safetensors").write_bytes(payload)
    code, _, err = run_cli("train", "gan-ring8", "--out", str(run), "--resume", "--steps", "5")
    assert code == 2 and "start a new run" in err
    assert not tripwire.exists()
    pickle.loads(payload)  # and the tripwire works: unpickling it creates the file
    assert tripwire.exists()


def test_save_pretrained_replaces_atomically(checkpoint, monkeypatch):
    before = (checkpoint / "model.safetensors").read_bytes()
    model = GanRing8()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("hub_models.weights.build_card", explode, raising=False)
    monkeypatch.setattr("hub_models.card.build_card", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        model.save_pretrained(checkpoint)
    assert (checkpoint / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["ckpt"]  # no temp litter


def test_card_front_matter(checkpoint):
    from huggingface_hub import ModelCard

    card = ModelCard.load(checkpoint / "README.md")
    assert card.data.library_name == "hub-models"
    assert card.data.pipeline_tag == "other"
    assert "safetensors" in card.data.tags
    bundled = ModelCard.load(Path(hub_models.__file__).parent / "weights" / "gan-toy2d" / "README.md")
    results = bundled.data.eval_results
    assert results and results[0].metric_type == "w2" and results[0].metric_value <= 0.05


def test_eval_update_card_records_the_metrics_in_a_local_checkpoint_only(tmp_path, monkeypatch):
    """`hub-models eval --update-card` rewrites config.json and the card of a local copy, atomically."""

    from hub_models.locations import bundled_dir

    bundled = bundled_dir(GanRing8)
    before = {p.name: p.read_bytes() for p in bundled.iterdir() if p.is_file()}
    ckpt = tmp_path / "ring"
    shutil.copytree(bundled, ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["metrics"]["modes_covered"] = 3  # a stale number the evaluation must replace
    (ckpt / "config.json").write_text(json.dumps(config))
    code, out, err = run_cli("eval", "gan-ring8", "--weights", str(ckpt), "--update-card")
    assert code == 0, err
    measured = json.loads(out)
    written = json.loads((ckpt / "config.json").read_text())["metrics"]
    assert written["modes_covered"] == measured["modes_covered"] == 8
    assert "| 8 |" in (ckpt / "README.md").read_text().replace("| 8.0 |", "| 8 |")
    assert {p.name: p.read_bytes() for p in bundled.iterdir() if p.is_file()} == before  # the bundled copy untouched
    # a Hub reference is not a local checkpoint: nothing to update
    code, _, err = run_cli("eval", "gan-ring8", "--weights", "org/ring", "--update-card")
    assert code == 2 and err.count("\n") == 1
