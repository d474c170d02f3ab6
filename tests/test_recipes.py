"""Recipes and train settings: one recipe per model, shipped in the package and equal to what trained the bundled
weights; the command-line options generated from the settings, which train what the same Python call trains; dry
runs and recipe errors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from test_engine import assert_same_state, assert_same_tensors, cli

from hub_models.engine.checkpoint import load_checkpoint


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
