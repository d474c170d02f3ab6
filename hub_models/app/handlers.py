"""What each button of the demo does: the Handlers validate the visitor's values (``checks``), then call the
model work (``gpu_work``). Plain methods of plain values, so the UI, the API and the tests share them.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..errors import HubModelsError
from ..registry import get_model_class, list_models
from ..spec import MAX_SEED
from .checks import (
    MAX_UPLOAD_BYTES,
    check_every_class,
    check_image_header,
    limited,
    number,
    quote,
    tab_models,
    vae_id,
    whole,
)
from .gpu_work import (
    _model,
    digit_grid,
    face_interpolation,
    faces_grid,
    plugin_grid,
    use_store,
    vae_latent_walk,
    vae_pair,
    vae_prior,
)
from .preprocess import mnist_like
from .store import ModelStore

# the headline metrics a card may carry, and how to read them (counts and spreads are left to the card)
METRIC_HINTS = {
    "fid": "Inception FID, lower is better",
    "kid": "lower is better",
    "label_accuracy": "share drawn as the asked digit",
    "test_loss": "BCE + KL per test image, lower is better",
    "classifier_fid": "Fréchet distance in MNIST-classifier features, lower is better",
    "w2": "Wasserstein-2 to the target, lower is better",
    "modes_covered": "of 8",
}
# Decoding an upload costs up to ~64 MB (16 MP RGBA) however small the file: two at a time, the rest wait.
DECODES = threading.BoundedSemaphore(2)


class Handlers:
    """What the buttons do: validate the visitor's values, then call the GPU functions above."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        use_store(store)

    @staticmethod
    def allowed(model_id: str, allowed: tuple[str, ...]) -> str:
        if model_id not in allowed:
            raise HubModelsError(f"unknown model {quote(model_id)}: choose one of {', '.join(allowed)}")
        return model_id

    # ------------------------------------------------------------------ faces
    def faces(self, model_id: str, seed: Any, count: Any, truncation: Any) -> str:
        model_id = self.allowed(model_id, tab_models("faces"))
        seed, count = whole(seed, "seed", 0, MAX_SEED), limited(count, "count", "faces_count")
        return faces_grid(model_id, seed, count, self.truncation(model_id, truncation))

    @staticmethod
    def truncation(model_id: str, value: Any) -> float:
        """ψ within the bounds the model declares for its truncation input."""
        spec = next(spec for spec in get_model_class(model_id).inputs if spec.name == "truncation")
        return number(value, spec.label or "truncation ψ", spec.minimum, spec.maximum)

    def interpolate(self, model_id: str, seed_a: Any, seed_b: Any, steps: Any, truncation: Any) -> tuple[str, str, str]:
        """The strip, the GIF, and a caption naming what they show (the inputs may have changed since)."""
        model_id = self.allowed(model_id, tab_models("faces"))
        seed_a, seed_b = whole(seed_a, "seed A", 0, MAX_SEED), whole(seed_b, "seed B", 0, MAX_SEED)
        steps, psi = limited(steps, "steps", "interpolation_steps"), self.truncation(model_id, truncation)
        if not get_model_class(model_id).supports_interpolation:
            raise HubModelsError(f"{model_id} does not offer interpolation")
        strip, gif = face_interpolation(model_id, seed_a, seed_b, steps, psi)
        return strip, gif, f"{model_id}: seed {seed_a} → seed {seed_b}, ψ = {psi:g}, {steps} steps"

    # ------------------------------------------------------------------ digits
    def digits(self, model_id: str, digit: str, seed: Any, count: Any) -> tuple[str, str]:
        model_id = self.allowed(model_id, tab_models("classes"))
        seed, count = whole(seed, "seed", 0, MAX_SEED), limited(count, "count", "digits_count")
        label = "all" if str(digit).startswith("all") else str(digit)
        check_every_class(model_id, {get_model_class(model_id).conditioning: label}, count)
        path = digit_grid(model_id, label, seed, count)
        return path, path

    # ------------------------------------------------------------------ VAE
    @staticmethod
    def sketch_ink(sketch: Any) -> torch.Tensor | None:
        """The drawing as an MNIST-style digit, or None when the canvas is blank."""
        if isinstance(sketch, dict):  # the Sketchpad's value: background, layers, composite
            sketch = sketch.get("composite")
        if sketch is None:
            return None
        try:
            return mnist_like(np.asarray(sketch))
        except HubModelsError as exc:
            if "empty" in str(exc) or "no image" in str(exc):
                return None
            raise

    @staticmethod
    def upload_digit(upload: Any) -> torch.Tensor:
        path = Path(upload)
        if path.suffix.lower() not in {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}:
            raise HubModelsError("upload a PNG, JPEG, WebP, BMP or GIF image")
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise HubModelsError("the upload is larger than 10 MB: use a smaller picture")
        check_image_header(path)  # before any pixel is decoded
        with DECODES:
            try:
                with Image.open(path) as img:
                    img.thumbnail((1024, 1024))  # plenty for a 28x28 digit; bounds the arrays below
                    array = np.asarray(img.convert("RGBA"))
            except OSError:
                raise HubModelsError("the upload is not a readable image") from None
        return mnist_like(array)

    def vae_input(self, sketch: Any, upload: Any, example: Any = None, latest: str = "sketch") -> torch.Tensor:
        """What to reconstruct: the drawing or the upload (the newer of the two, ``latest``, when there are both),
        else a test-set example."""
        drawn = self.sketch_ink(sketch)
        if drawn is not None and (upload is None or latest != "upload"):
            return drawn
        if upload is not None:
            return self.upload_digit(upload)
        if example not in (None, ""):
            return self.test_digit(whole(example, "test example", 0, len(self.test_set()) - 1))
        raise HubModelsError("the canvas is empty: draw a digit first (or upload a picture of one)")

    @functools.cache  # noqa: B019 - one store per app, cached for its lifetime
    def test_set(self) -> torch.Tensor:
        """The MNIST test images when a local copy is found (HUB_MODELS_DATA), else the 30 bundled ones.

        Never downloads: the demo must start and answer offline.
        """
        from ..data.mnist import find_root, load_mnist

        if find_root(None) is not None:
            try:
                return load_mnist(None, "test")["images"]
            except HubModelsError:
                pass
        bundled = Path(__file__).parent / "mnist_test_examples.npy"
        return torch.from_numpy(np.load(bundled))[:, None]

    def test_digit(self, index: int) -> torch.Tensor:
        images = self.test_set()
        if not 0 <= index < len(images):
            raise HubModelsError(f"test example must be from 0 to {len(images) - 1}, got {index}")
        return images[index].float()[None] / 255

    def vae_example(self, index: Any) -> tuple[Image.Image, str]:
        """Reconstruct test-set image ``index``."""
        return self.vae_reconstruct(None, None, whole(index, "test example", 0, len(self.test_set()) - 1))

    def vae_reconstruct(
        self, sketch: Any, upload: Any, example: Any = None, latest: str = "sketch"
    ) -> tuple[Image.Image, str]:
        return vae_pair(self.vae_input(sketch, upload, example, latest))

    def vae_sample(self, seed: Any, count: Any) -> Image.Image:
        return vae_prior(whole(seed, "seed", 0, MAX_SEED), limited(count, "count", "vae_count"))

    def vae_z_dim(self) -> int:
        """How many latent dimensions the reconstruction tab's model has (the walk's choices)."""
        try:
            return int(_model(vae_id()).config.z_dim)
        except HubModelsError:
            return 20

    def vae_walk(self, seed: Any, dim_x: Any, dim_y: Any, steps: Any) -> Image.Image:
        z = _model(vae_id()).config.z_dim - 1
        dims = (whole(dim_x, "x dimension", 0, z), whole(dim_y, "y dimension", 0, z))
        return vae_latent_walk(whole(seed, "seed", 0, MAX_SEED), dims, limited(steps, "steps", "walk_steps"))

    # ------------------------------------------------------------------ the 2-D toys
    def toy_model(self, target: str):
        return _model(self.allowed(target, tab_models("points")))

    @staticmethod
    def scatter(real: torch.Tensor, fake: torch.Tensor) -> pd.DataFrame:
        frames = [
            pd.DataFrame({"x": p[:, 0].numpy(), "y": p[:, 1].numpy(), "set": name})
            for name, p in (("target", real), ("generated", fake))
        ]
        return pd.concat(frames, ignore_index=True)

    @functools.cached_property
    def toy_limits(self) -> tuple[list[float], list[float]]:
        """One pair of axis ranges for every toy model: their targets' extent (plus a margin), so neither a
        training frame nor a change of model rescales the chart. (Gradio's chart redraws a change of axes and of
        points in two steps, and drew the previous model's points in the new model's axes.)"""
        targets = [_model(m).reference_points() for m in tab_models("points") if self.store.status(m) is None]
        targets = [t for t in targets if t is not None]  # a plugin may declare no target
        points = torch.cat(targets) if targets else torch.tensor([[-3.0, -3.0], [3.0, 3.0]])
        lo, hi = points.min(0).values, points.max(0).values
        pad = 0.25 * (hi - lo)
        x_lim = [round(float(lo[0] - pad[0]), 2), round(float(hi[0] + pad[0]), 2)]
        y_lim = [round(float(lo[1] - pad[1]), 2), round(float(hi[1] + pad[1]), 2)]
        return x_lim, y_lim

    def points(self, real: torch.Tensor, fake: torch.Tensor) -> pd.DataFrame:
        """The chart's table (points outside the axes drawn on their border)."""
        x_lim, y_lim = self.toy_limits
        real = real if real is not None else fake[:0]  # a plugin may declare no target
        inside = fake.clamp(torch.tensor([x_lim[0], y_lim[0]]), torch.tensor([x_lim[1], y_lim[1]]))
        return Handlers.scatter(real, inside)

    def plot(self, real: torch.Tensor, fake: torch.Tensor) -> gr.ScatterPlot:
        """An update of the page's chart: the points only (its axes are fixed, ``toy_limits``)."""
        return gr.ScatterPlot(value=self.points(real, fake))

    def toy_points(self, target: str, seed: Any) -> tuple[pd.DataFrame, str]:
        """The bundled toy model's 1000 points next to its target's, and its metrics."""
        model = self.toy_model(target)
        fake = model.generate(1000, seed=whole(seed, "seed", 0, MAX_SEED))
        return self.points(model.reference_points(), fake), "bundled weights: " + self.metric_text(model)

    def metric_text(self, model: Any) -> str:
        metrics = model.evaluate(num_samples=4000)
        return ", ".join(f"{k} = {v}" for k, v in metrics.items())

    def toy_show(self, target: str, seed: Any) -> tuple[gr.ScatterPlot, str]:
        frame, text = self.toy_points(target, seed)
        return gr.ScatterPlot(value=frame), text

    def toy_train(self, target: str, steps: Any, seed: Any) -> Iterator[tuple[gr.ScatterPlot, str]]:
        """Train a fresh copy of the toy GAN in-process (CPU), yielding the moving distribution 20 times: each
        frame replaces the plot, and the text says the step (no progress bar over the plot it would hide)."""
        from ..engine import Trainer, resolve_training

        base = self.toy_model(target)
        steps, seed = limited(steps, "steps", "toy_steps"), whole(seed, "seed", 0, MAX_SEED)
        self.toy_limits  # noqa: B018 - computed before training: it loads models, which must not happen mid-run
        # the engine's own step API with the model's recipe, scaled to this run's steps: one training loop
        run = {"steps": steps, "seed": seed, "device": "cpu", "progress": False}
        config, settings, _ = resolve_training(type(base), settings=run)
        model = type(base)(config)
        trainer = Trainer(model, settings, model.load_data(None), device=torch.device("cpu"))
        real = model.reference_points()
        every = max(1, steps // 20)
        for _ in trainer.run():
            step = trainer.step
            if step % every == 0 or step == steps:
                model.net.eval()
                fake = model.generate(1000, seed=0)
                text = f"step {step}/{steps}"
                if step == steps:
                    text += ": " + self.metric_text(model)
                yield self.plot(real, fake), text

    # ------------------------------------------------------------------ any plugin
    def generic(self, model_id: str, seed: Any, count: Any, inputs_json: str) -> tuple[str, str]:
        if model_id not in list_models():
            raise HubModelsError(f"unknown model {quote(model_id)}; installed: {', '.join(list_models())}")
        inputs = self.parse_inputs_json(model_id, inputs_json)
        seed, count = whole(seed, "seed", 0, MAX_SEED), limited(count, "count", "all_count")
        check_every_class(model_id, inputs, count)
        _model(model_id).parse_inputs(inputs)  # an unknown name or a bad value: its one-line message, here
        path = plugin_grid(model_id, seed, count, inputs)
        return path, path

    @staticmethod
    def parse_inputs_json(model_id: str, inputs_json: Any) -> dict[str, Any]:
        """The "inputs" field of the generic endpoint: a JSON object of the model's declared inputs."""
        example = 'inputs must be a JSON object of the model\'s inputs, e.g. {"label": "7"}'
        if inputs_json is not None and not isinstance(inputs_json, str):
            raise HubModelsError(example)
        if len(inputs_json or "") > 10_000:
            raise HubModelsError(f"{example}; this one is {len(inputs_json)} characters long")
        try:
            inputs = json.loads(inputs_json or "{}")
        except (json.JSONDecodeError, RecursionError):
            raise HubModelsError(example) from None
        if not isinstance(inputs, dict):
            raise HubModelsError(example)
        reserved = sorted(set(inputs) & {"seed", "n", "count"})
        if reserved:
            raise HubModelsError(f"{', '.join(reserved)} is a field of its own, not one of {model_id}'s inputs")
        return inputs

    def generic_points(self, model_id: str, seed: Any, count: Any, inputs_json: str) -> gr.ScatterPlot:
        """A 2-D model's samples in the toy tab's chart (axes, legend, colours), its target behind them."""
        inputs = self.parse_inputs_json(model_id, inputs_json)
        seed, count = whole(seed, "seed", 0, MAX_SEED), limited(count, "count", "all_count")
        model = _model(model_id)
        fake = model.generate(count, seed=seed, **inputs).float().cpu()
        real = model.reference_points()
        return self.plot(real if real is not None else fake[:0], fake)

    def describe(self, model_id: str) -> str:
        """One line for a model: what it is (its card's summary) and its measured quality (the card's metrics)."""
        if not model_id:
            return ""
        cls = get_model_class(model_id)
        reason = self.store.status(model_id)
        line = f"**{model_id}**: {cls.card.summary.rstrip('.')}."
        if reason:
            return f"{line} ⚠️ {reason}"
        values = self.store.get(model_id).metric_values
        numbers = {k: v for k, v in values.items() if isinstance(v, int | float)}
        shown = [f"{k} = {numbers[k]:g} ({hint})" for k, hint in METRIC_HINTS.items() if k in numbers]
        if shown:
            line += " Measured on its card: " + ", ".join(shown) + "."
        return line
