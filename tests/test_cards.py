"""The bundled checkpoints' cards as a stranger reads them: the training curve as a picture drawn from the
checkpoint's own curve.jsonl, and a Reproduce command that runs as written."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from PIL import Image
from test_dist import ROOT

import hub_models
from hub_models.cli_args import build_parser
from hub_models.images import render_curve
from hub_models.locations import CURVE_NAME, CURVE_PICTURE, bundled_dir, has_local_copy
from hub_models.models.mnist_classifier import MnistClassifierModel
from hub_models.spec import curve_picture, primary_metric
from hub_models.weights import load_weights

BUNDLED = [
    cls
    for cls in [*map(hub_models.get_model_class, hub_models.list_models()), MnistClassifierModel]
    if has_local_copy(cls)
]
NO_CURVE = "No training curve was recorded for this checkpoint"
# The checkpoints whose cards recorded a measured curve (turned into their curve.jsonl); the others say why not.
WITH_CURVE = {
    "cgan-digits",
    "cgan-digits-mlp",
    "dcgan-faces",
    "gan-digits-mlp",
    "gan-ring8",
    "gan-toy2d",
    "mnist-classifier",
    "vae-digits",
}


def plot_area(picture: Image.Image) -> np.ndarray:
    """The inside of the axes (grid, line, points, the best point's ring): drawn without any text, so the same
    rows give the same pixels whatever font rendering this Pillow has."""
    width, height = picture.size
    return np.asarray(picture.convert("RGB"))[60 : height - 60, 90 : width - 30]


@pytest.mark.parametrize("cls", BUNDLED, ids=lambda cls: cls.model_id)
def test_each_card_shows_its_curve_drawn_from_its_curve_file_or_says_why_not(cls):
    directory = bundled_dir(cls)
    card = (directory / "README.md").read_text(encoding="utf-8")
    if cls.model_id not in WITH_CURVE:
        assert NO_CURVE in card and not (directory / CURVE_NAME).exists(), cls.model_id
        return
    assert f"]({CURVE_PICTURE})" in card and f"]({CURVE_NAME})" in card and NO_CURVE not in card
    rows = [json.loads(line) for line in (directory / CURVE_NAME).read_text(encoding="utf-8").splitlines()]
    model = load_weights(cls, directory, device="cpu")
    assert model.training_curve == rows
    # the engine's format: step, epoch, the model's own metric keys, the best so far by its primary metric
    counts = {"num_samples", "num_images", "samples_per_class"}  # how many were measured
    declared = {metric.key for metric in cls.metrics} | counts
    per_epoch = model.provenance["steps"] / model.provenance["epochs"]
    metric = primary_metric(model)
    best = None
    for row in rows:
        assert set(row) - {"step", "epoch", "best", "time"} <= declared and metric.key in row, row
        assert row["epoch"] == round(row["step"] / per_epoch, 3) and row["step"] <= model.provenance["steps"]
        value = row[metric.key]
        if best is None or (value > best["value"] if metric.higher_is_better else value < best["value"]):
            best = {"step": row["step"], "value": value, "metric": metric.key}
        assert row["best"] == best
    # the picture is the engine's drawing of that file, not of other numbers
    with Image.open(directory / CURVE_PICTURE) as stored:
        drawn = curve_picture(rows, metric, cls.model_id)
        assert stored.size == drawn.size
        assert np.array_equal(plot_area(stored), plot_area(drawn)), f"{cls.model_id}: python -m hub_models.hub"
        other = [dict(row) for row in rows]
        other[len(other) // 2][metric.key] = rows[0][metric.key]  # one point moved
        assert not np.array_equal(plot_area(stored), plot_area(curve_picture(other, metric, cls.model_id)))


def test_the_curve_picture_labels_its_axes_and_rings_the_best_point():
    from hub_models.spec import Metric

    metric = Metric("fid", "Inception FID", protocol="")
    rows = [{"step": 100 * k, "fid": value, "num_samples": 500} for k, value in enumerate([90.0, 40.0, 20.0, 30.0], 1)]
    picture = np.asarray(curve_picture(rows, metric, "toy").convert("RGB")).astype(int)
    unlabelled = curve_picture(rows, Metric("fid", "x", protocol=""), "toy")
    assert (picture != np.asarray(unlabelled.convert("RGB"))).any(axis=2)[:, :40].any()  # the y label, sideways
    red = (picture[..., 0] > 180) & (picture[..., 1] < 90) & (picture[..., 2] < 90)
    _, xs = np.nonzero(red)
    width = picture.shape[1]
    # the ring sits on the third of four evenly spaced steps (the lowest FID): two thirds across the axes
    assert red.sum() > 20 and abs(xs.mean() - (84 + (width - 84 - 24) * 2 / 3)) < 3


def test_an_accuracy_curve_spreads_its_nines_and_stays_linear_within_one():
    """A label accuracy that climbs from 12% to 99.3% is drawn with 0.9, 0.99, 0.999 equally spaced (its last epochs,
    98.9% to 99.3%, would be one flat line on a linear axis); one that stays within a nine is drawn linear."""
    from hub_models.spec import Metric

    def gridlines(picture) -> list[int]:  # rows of the plot area crossed by a horizontal grey grid line
        pixels = np.asarray(picture.convert("RGB")).astype(int)[:, 100:600]
        return [y for y in range(len(pixels)) if ((pixels[y] == 225).all(axis=1)).mean() > 0.5]

    accuracy = Metric("label_accuracy", "label accuracy", protocol="", higher_is_better=True, scale="nines")
    linear = Metric("label_accuracy", "label accuracy", protocol="", higher_is_better=True)
    rows = [{"step": 468 * k, "label_accuracy": v} for k, v in enumerate([0.12, 0.83, 0.97, 0.989, 0.993], 1)]
    spread = curve_picture(rows, accuracy, "toy")
    ys = gridlines(spread)[::-1]  # bottom to top: the ticks 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995 (0 is the frame)
    heights = [-np.log10(1 - v) for v in (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)]
    assert len(ys) == len(heights), ys
    slope, offset = np.polyfit(heights, ys, 1)
    assert np.abs(np.polyval((slope, offset), heights) - ys).max() < 1.5 and slope < -100  # one nine: > 100 px
    close = [{"step": 468 * k, "label_accuracy": v} for k, v in enumerate([0.9775, 0.989, 0.993], 1)]
    assert np.array_equal(
        np.asarray(curve_picture(close, accuracy, "t")), np.asarray(curve_picture(close, linear, "t"))
    )
    with pytest.raises(ValueError, match="'linear' or 'nines'"):
        render_curve([1.0], [0.5], "x", "y", scale="log")
    with pytest.raises(ValueError, match="Metric 'label_accuracy': scale must be 'linear' or 'nines', not 'log'"):
        Metric("label_accuracy", "label accuracy", protocol="", scale="log")  # at the plugin's import, not its run


@pytest.mark.parametrize("cls", BUNDLED, ids=lambda cls: cls.model_id)
def test_the_cards_reproduce_command_runs_as_written(cls):
    """The command parses as `hub-models` parses it, its recipe exists, and a model whose data set hub-models
    cannot download names it with --data (the placeholder the card explains)."""
    card = (bundled_dir(cls) / "README.md").read_text(encoding="utf-8")
    line = next(line for line in card.splitlines() if line.startswith("Reproduce with `"))
    command = shlex.split(line.split("`")[1])
    assert command[:3] == ["hub-models", "train", cls.model_id], command
    args = build_parser(command="train").parse_args(command[1:])
    if args.config:
        assert (ROOT / args.config).is_file(), args.config
    needs = next((metric.data for metric in cls.metrics if metric.data), None)
    assert args.data == needs, (cls.model_id, args.data)
    if needs:
        assert f"`{needs}`: your copy of the data set" in line


def test_the_recorded_command_keeps_only_what_changes_the_weights():
    """Where the run was written, how it showed progress, that it was resumed or dry-run and where its data lay do
    not reproduce anything: the published provenance (config.json) and the card's command drop them, keep the rest."""
    from hub_models.card import _reproduce_line, public_provenance
    from hub_models.registry import get_model_class

    recorded = (
        "hub-models train gan-toy2d --out runs/toy --no-progress --resume --steps 10 --data /home/me/data "
        "--dry-run-steps 4 --dry-run --out=x --progress --eval-every 50"
    )
    command = public_provenance({"command": recorded})["command"]
    assert command == "hub-models train gan-toy2d --steps 10 --eval-every 50", command
    line = _reproduce_line(get_model_class("gan-toy2d")(), command)
    assert line == "Reproduce with `hub-models train gan-toy2d --steps 10 --eval-every 50`.", line
    for path in sorted((ROOT / "hub_models" / "weights").glob("*/config.json")):
        command = json.loads(path.read_text())["provenance"]["command"]
        assert public_provenance({"command": command})["command"] == command, (path.parent.name, command)


def test_a_value_that_misses_its_goal_by_a_hair_is_not_shown_as_the_goal():
    from hub_models.card import _shown

    assert _shown(100.035, 100.0) == "100.03" and _shown(99.996, 100.0) == "99.996"
    assert _shown(100.0, 100.0) == "100" and _shown(101.7, 100.0) == "101.7" and _shown(0.98956, 0.99) == "0.9896"
    assert _shown(82.0054) == "82.01"
