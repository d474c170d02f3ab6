"""Digit models: the MNIST reader, labels, the VAE's extra methods, training, and bundled-quality checks."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hub_models
from hub_models.data.mnist import load_mnist
from hub_models.errors import DataError, HubModelsError
from hub_models.models.vae_digits import vae_loss
from hub_models.testing import check_plugin

DIGIT_MODELS = ["cgan-digits", "cgan-digits-mlp", "vae-digits", "gan-digits-mlp"]
WEIGHTS = Path(hub_models.__file__).parent / "weights"
DATA = os.environ.get("HUB_MODELS_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="HUB_MODELS_DATA not set: real MNIST needed (CI sets ../shared/data)")


def write_idx(directory: Path, n: int = 96, gz: bool = True, seed: int = 0) -> Path:
    """A tiny MNIST-format data set: bright bars whose position depends on the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, label in enumerate(labels):
        images[i, 4:24, 2 + 2 * label : 5 + 2 * label] = 255
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        blobs = {
            f"{split}-images-idx3-ubyte": (2051).to_bytes(4, "big") + b"".join(
                d.to_bytes(4, "big") for d in images.shape) + images.tobytes(),
            f"{split}-labels-idx1-ubyte": (2049).to_bytes(4, "big") + n.to_bytes(4, "big") + labels.tobytes(),
        }  # fmt: skip
        for name, blob in blobs.items():
            if gz:
                with gzip.open(directory / f"{name}.gz", "wb") as fh:
                    fh.write(blob)
            else:
                (directory / name).write_bytes(blob)
    return directory


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_reads_gz_and_plain(tmp_path, gz):
    root = write_idx(tmp_path / "mnist", gz=gz)
    data = load_mnist(root, "train")
    assert data["images"].shape == (96, 1, 28, 28) and data["images"].dtype == torch.uint8
    assert data["labels"].dtype == torch.int64 and int(data["labels"].max()) <= 9
    # also found as a torchvision-style root and through HUB_MODELS_DATA
    assert len(load_mnist(tmp_path, "test")["labels"]) == 96


def test_idx_reader_errors_say_what_was_expected_where(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nope", "train")
    root = write_idx(tmp_path / "m", gz=False)
    (root / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 10)
    with pytest.raises(DataError, match="not an idx file|truncated"):
        load_mnist(root, "train")
    blob = (root / "t10k-images-idx3-ubyte").read_bytes()
    (root / "t10k-images-idx3-ubyte").write_bytes(blob[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_mnist(root, "test")
    with pytest.raises(DataError, match="unknown split"):
        load_mnist(root, "valid")


@pytest.mark.parametrize("model_id", DIGIT_MODELS)
def test_digit_plugins_follow_the_contract_and_train(model_id, tmp_path):
    cls = hub_models.get_model_class(model_id)
    check_plugin(cls, tmp_path, train=True, data_root=write_idx(tmp_path / "data"))


def test_a_fashion_mnist_run_records_uses_and_is_judged_on_fashion_mnist(tmp_path, monkeypatch):
    """The config's dataset (not the class's) is the run's: provenance, card and evaluation follow it."""
    from hub_models.cli import main

    monkeypatch.setenv("HUB_MODELS_DATA", str(tmp_path / "data"))
    write_idx(tmp_path / "data" / "mnist", seed=0)
    write_idx(tmp_path / "data" / "fashion-mnist", n=64, seed=1)  # another data set: 64 images, other bars
    out = tmp_path / "run"
    args = ["train", "vae-digits", "--set", "dataset=fashion-mnist", "--dry-run", "--batch-size", "8", "--out"]
    assert main([*args, str(out)]) == 0
    model = hub_models.load("vae-digits", weights=out / "model", device="cpu")
    assert model.config.dataset == "fashion-mnist" and model.provenance["dataset"] == "fashion-mnist"
    assert model.dataset_for(model.config) == "fashion-mnist"
    card = (out / "model" / "README.md").read_text()
    assert "zalando-datasets/fashion_mnist" in card and "ylecun/mnist" not in card
    assert "- dataset: fashion-mnist" in card
    # evaluated on its own test split (the losses), never on MNIST; the MNIST-classifier metrics do not apply
    result = model.evaluate(num_samples=20)
    fashion = load_mnist(None, "test", name="fashion-mnist")["images"][:20]
    assert result["num_images"] == 20 and "classifier_fid" not in result
    x = fashion.float() / 255
    with torch.no_grad():
        recon = model.net(x, torch.randn(20, model.config.z_dim, generator=torch.Generator().manual_seed(0)))
        bce, kld = vae_loss(x, *recon)
    assert result["test_loss"] == pytest.approx(float(bce + kld) / 20, abs=2e-3)
    gan = hub_models.get_model_class("gan-digits-mlp")({"dataset": "fashion-mnist"})
    with pytest.raises(HubModelsError, match="trained on fashion-mnist"):
        gan.evaluate(num_samples=20)
    assert hub_models.get_model_class("gan-digits-mlp")().dataset_for() == "mnist"


def test_labels_all_one_row_per_digit_and_bad_labels():
    from hub_models.models.cgan_digits_mlp import CganDigitsMlp

    model = CganDigitsMlp()
    assert model.generate(100, seed=0).shape == (100, 1, 28, 28)
    assert model.grid_nrow(100, label="all") == 10
    a = model.generate(6, seed=1, label=[3, 4])
    b = model.generate(6, seed=1, label="3,4")
    assert torch.equal(a, b)
    assert torch.equal(model.generate(4, seed=2, label=7), model.generate(4, seed=2, label="7"))
    for bad in (10, -1, "x", "12", []):
        with pytest.raises(HubModelsError, match="out of range|invalid label|empty label"):
            model.generate(4, label=bad)


def test_cli_label_out_of_range_is_one_line(capsys, tmp_path):
    """The label itself is refused (with the bundled weights, so nothing else can be what failed)."""
    from hub_models.cli import main

    assert main(["generate", "cgan-digits-mlp", "--label", "11", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "label '11' is out of range: digits are 0-9" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("model_id", "edit", "error"),
    [
        ("gan-digits-mlp", lambda c: c["architecture"].pop("r1_gamma"), r"missing config keys \['r1_gamma'\]"),
        ("cgan-digits", lambda c: c["architecture"].update(image_size=64), r"unknown keys \['image_size'\]"),
        ("vae-digits", lambda c: c["metrics"].update(eval_command="hub-models eval"), "must map names to numbers"),
    ],
)
def test_configs_load_strictly(model_id, edit, error, tmp_path):
    """A config.json with a key the Config lacks, without one it has, or with text among the metrics is refused
    (no key is dropped or defaulted on load); the bundled one loads as it is."""
    import shutil

    from hub_models.errors import WeightsError

    hub_models.load(model_id, weights=WEIGHTS / model_id, device="cpu")
    changed = tmp_path / "changed"
    shutil.copytree(WEIGHTS / model_id, changed)
    config = json.loads((changed / "config.json").read_text())
    edit(config)
    (changed / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match=error):
        hub_models.load(model_id, weights=changed, device="cpu")


# ---------------------------------------------------------------- the bundled checkpoints against their cards


def _bundled(model_id: str) -> dict:
    path = WEIGHTS / model_id / "config.json"
    if not path.is_file():
        pytest.fail(f"{model_id} ships no bundled weights")
    return json.loads(path.read_text())["metrics"]


@needs_data
def test_classifier_is_a_fair_judge():
    from hub_models.metrics.mnist_classifier import load_classifier, predict

    test = load_mnist(Path(DATA) / "mnist", "test")
    acc = float((predict(load_classifier(), test["images"][:2000]) == test["labels"][:2000]).double().mean())
    assert acc >= 0.99  # ≥ 99.2% on the full test set (card); 2,000 images leave a little slack
    card = json.loads((WEIGHTS / "mnist-classifier" / "config.json").read_text())
    assert card["metrics"]["test_accuracy"] >= 0.992


def _classifier_tensors(export: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(export / "model.safetensors")


def test_the_classifier_trains_through_the_engine_step_api(tmp_path):
    """One loop: `hub-models train mnist-classifier` (its packaged recipe through engine.fit) is the engine's Trainer
    step for step, its StepLR schedule is torch's, its recipe's evaluation puts the test accuracy on the card, and
    the export is written by the models' own code and loaded by the metrics' load_classifier."""
    from hub_models.cli import main
    from hub_models.engine import Trainer, resolve_training
    from hub_models.metrics import mnist_classifier as mc
    from hub_models.models.mnist_classifier import MnistClassifierModel

    root = write_idx(tmp_path / "mnist", n=256)
    run = {"batch_size": 32, "steps": 20, "threads": 1, "progress": False}  # 8 steps per epoch: 2 lr decays
    args = ["--batch-size", "32", "--steps", "20", "--threads", "1", "--no-progress"]
    assert main(["train", "mnist-classifier", "--data", str(root), "--out", str(tmp_path / "cli"), *args]) == 0
    export = tmp_path / "cli" / "model"

    torch.manual_seed(123)  # whatever the global RNG holds, the engine's seed decides the run
    model = MnistClassifierModel()
    trainer = Trainer(model, resolve_training(MnistClassifierModel, settings=run)[1], model.load_data(root))
    losses = [float(step["loss"].detach()) for step in trainer.run()]
    trainer.finish()
    assert len(losses) == 20 and losses[-1] < losses[0]
    assert trainer.setup.optimizers["classifier"].param_groups[0]["lr"] == pytest.approx(1.0 * 0.7 * 0.7)
    saved = _classifier_tensors(export)
    assert saved.keys() == model.net.state_dict().keys()
    for key, value in model.net.state_dict().items():
        assert torch.equal(saved[key], value), f"{key} differs"

    config = json.loads((export / "config.json").read_text())
    assert config["model_type"] == "mnist-classifier" and config["architecture"] == {"lr": 1.0, "max_shift": 1}
    assert config["provenance"]["train_settings"]["lr_schedule"] == "step" and config["provenance"]["steps"] == 20
    model.net.eval()
    assert config["metrics"] == model.evaluate(root)  # measured on the test split at the last step
    card = (export / "README.md").read_text()
    assert "pipeline_tag: image-classification" in card and "| test accuracy |" in card and "](curve.png)" in card
    judge = mc.load_classifier(export)
    assert isinstance(judge, mc.MnistClassifier) and not judge.training
    assert torch.equal(judge.fc2.weight, saved["fc2.weight"])
    with pytest.raises(HubModelsError, match="config for 'cgan-digits', not 'mnist-classifier'"):
        mc.load_classifier(WEIGHTS / "cgan-digits")


def test_the_classifier_recipe_file_and_resume_match_a_straight_run(tmp_path, capsys):
    from hub_models.cli import main

    root = write_idx(tmp_path / "mnist", n=256)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'model = "mnist-classifier"\n[config]\nmax_shift = 2\n'
        '[train]\nbatch_size = 32\nsteps = 20\nlr_schedule = "step"\nlr_gamma = 0.5\nseed = 4\ncheckpoint_every = 6\n'
    )
    common = ["train", "mnist-classifier", "--config", str(recipe), "--data", str(root), "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "straight")]) == 0
    # stop after 12 steps (mid-epoch, one lr decay done), then resume the plan to 20 steps
    half = tmp_path / "half"
    assert main([*common, "--out", str(half), "--steps", "12"]) == 0
    assert main([*common, "--out", str(half), "--resume"]) == 0
    straight, resumed = _classifier_tensors(tmp_path / "straight" / "model"), _classifier_tensors(half / "model")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight), "straight run != resumed run"
    # the schedule's factor is part of the run: a resume with another one is refused in one line
    capsys.readouterr()
    assert main([*common, "--out", str(half), "--resume", "--steps", "24", "--lr-gamma", "0.7"]) == 2
    assert "trained with lr_gamma = 0.5, not 0.7" in capsys.readouterr().err
    assert main(["train", "mnist-classifier", "--config", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: recipe") and "not found" in err


def test_step_schedule_settings_are_checked():
    from hub_models.engine import TrainSettings

    with pytest.raises(HubModelsError, match="needs lr_gamma between 0 and 1"):
        TrainSettings.from_dict({"lr_schedule": "step"})
    with pytest.raises(HubModelsError, match="lr_gamma applies only to lr_schedule = 'step'"):
        TrainSettings.from_dict({"lr_gamma": 0.5})


def test_gan_digits_mlp_r1_penalty_is_part_of_the_d_loss():
    from hub_models.models.gan_digits_mlp import GanDigitsMlp, GanDigitsMlpConfig

    batch = {"images": torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)}
    for gamma in (0.0, 10.0):
        torch.manual_seed(0)
        model = GanDigitsMlp(GanDigitsMlpConfig(r1_gamma=gamma))
        losses = model.train_step(model.setup_training(torch.device("cpu")), batch)
        assert ("penalty_d" in losses) == bool(gamma)
        if gamma:
            assert float(losses["penalty_d"].detach()) > 0


# ---------------------------------------------------------------- the bundled checkpoints against their cards


@needs_data
@pytest.mark.parametrize("model_id", DIGIT_MODELS)
def test_bundled_digit_metrics_match_card_on_fewer_samples(model_id):
    recorded = _bundled(model_id)
    measured = hub_models.load(model_id, device="cpu").evaluate(data_root=Path(DATA) / "mnist", num_samples=1000)
    if "label_accuracy" in recorded:
        # 1,000 samples at p ≈ 0.99 have a standard error ≈ 0.003: allow 4 of them plus the card's rounding
        assert measured["label_accuracy"] >= recorded["label_accuracy"] - 0.015
        # the reference reads the real test digits: no sampling in it, so it is exactly the card's
        assert measured["label_accuracy_real_test"] == recorded["label_accuracy_real_test"]
    # 1,000 samples: shares within a few standard errors (≈ 0.01 at p = 0.1) of the card's 10,000
    assert measured["class_share_min"] >= recorded["class_share_min"] - 0.03
    assert measured["class_share_max"] <= recorded["class_share_max"] + 0.03
    # fewer samples bias FD upwards (both the model's and the floor's); the floor stays below the model
    assert measured["classifier_fid"] < 2 * recorded["classifier_fid"] + 1
    assert measured["classifier_fid_real_train"] < measured["classifier_fid"]


@pytest.mark.slow
@pytest.mark.parametrize("model_id", DIGIT_MODELS)
def test_full_protocol_metrics_meet_the_card(model_id):
    if not DATA:
        pytest.skip("HUB_MODELS_DATA not set")
    model = hub_models.load(model_id, device="cpu")
    measured = model.evaluate(data_root=Path(DATA) / "mnist")
    checked = 0
    for metric in model.metrics:
        recorded = model.metric_values.get(metric.key)
        assert recorded is not None, f"{model_id}: the card does not report {metric.key}"
        if isinstance(recorded, dict):  # per-digit shares and accuracies: same samples, so float noise only
            assert measured[metric.key] == pytest.approx(recorded, abs=0.002), metric.key
        else:
            assert measured[metric.key] == pytest.approx(recorded, rel=0.05, abs=0.01), metric.key
            if metric.goal is not None:
                assert metric.meets_goal(measured[metric.key]) == metric.meets_goal(recorded), metric.key
        checked += 1
    assert checked == len(model.metrics)


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="needs Fashion-MNIST in /usr/share/datasets/fashion-mnist: apt-get install dataset-fashion-mnist",
)
def test_fashion_mnist_through_the_same_path(tmp_path):
    data = load_mnist(None, "test", name="fashion-mnist")
    assert data["images"].shape == (10_000, 1, 28, 28)
    # one flag trains any digit plugin on it
    from hub_models.cli import main

    out = tmp_path / "fashion"
    assert main(["train", "gan-digits-mlp", "--set", "dataset=fashion-mnist", "--dry-run", "--out", str(out)]) == 0
    assert json.loads((out / "model" / "config.json").read_text())["architecture"]["dataset"] == "fashion-mnist"


def test_r1_penalty_changes_the_discriminators_update():
    """With r1_gamma the penalty is part of what D descends: D's step differs from the step without it by the
    penalty's own gradient (plain SGD, so the step is the gradient; Adam's first step would hide its size)."""
    from hub_models.models.gan_digits_mlp import GanDigitsMlp, GanDigitsMlpConfig

    batch = {"images": torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)}
    after = {}
    for gamma in (0.0, 10.0):
        torch.manual_seed(0)
        model = GanDigitsMlp(GanDigitsMlpConfig(r1_gamma=gamma))
        setup = model.setup_training(torch.device("cpu"))
        disc = setup.nets["discriminator"]
        before = [p.detach().clone() for p in disc.parameters()]
        setup.optimizers["discriminator"] = torch.optim.SGD(disc.parameters(), lr=1.0)
        torch.manual_seed(1)
        model.train_step(setup, batch)
        after[gamma] = [b - p.detach() for b, p in zip(before, disc.parameters(), strict=True)]  # = D's gradient
    # the penalty's gradient on its own: gamma/2 * E||grad_x D(x)||^2 at D's initial weights, on the same reals
    torch.manual_seed(0)
    model = GanDigitsMlp(GanDigitsMlpConfig(r1_gamma=10.0))
    disc = model.setup_training(torch.device("cpu")).nets["discriminator"]
    real = (batch["images"].float() / 127.5 - 1).flatten(1).requires_grad_(True)
    (grad_x,) = torch.autograd.grad(disc(real).sum(), real, create_graph=True)
    penalty = 5.0 * grad_x.pow(2).sum(1).mean()
    params = list(disc.parameters())
    expected = torch.autograd.grad(penalty, params, allow_unused=True)  # D's last bias does not move grad_x
    expected = [torch.zeros_like(p) if g is None else g for p, g in zip(params, expected, strict=True)]
    assert any(float(g.abs().max()) > 1e-4 for g in expected)
    for with_r1, without, grad in zip(after[10.0], after[0.0], expected, strict=True):
        torch.testing.assert_close(with_r1 - without, grad, atol=1e-5, rtol=1e-4)


def test_all_digits_grid_has_one_row_per_digit(tmp_path):
    """`generate --label all -n 100 -o grid.png` draws a 10x10 grid whose row r holds the digit r, as the MNIST
    classifier of the digit metrics reads the cells of the written PNG (bundled weights)."""
    from hub_models.cli import main
    from hub_models.metrics.mnist_classifier import load_classifier, predict

    assert main(["generate", "cgan-digits-mlp", "--label", "all", "-n", "100", "--seed", "0",
                 "-o", str(tmp_path / "grid.png")]) == 0  # fmt: skip
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    step = 28 + 2  # cells of 28 px with 2 px of padding (torchvision's make_grid)
    assert grid.shape == (10 * step + 2, 10 * step + 2)
    cells = [grid[2 + r * step :][:28, 2 + c * step :][:, :28] for r in range(10) for c in range(10)]
    read = predict(load_classifier(), torch.from_numpy(np.stack(cells)).float()[:, None] / 255).view(10, 10)
    rows = torch.arange(10)[:, None].expand(10, 10)
    assert float((read == rows).float().mean()) >= 0.95, read
