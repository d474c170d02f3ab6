"""What each button of the demo does. Plain functions of plain values, so the UI and the tests share them.

Every handler validates its inputs and turns user errors into ``gr.Error`` (a toast), never a traceback.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..errors import HubModelsError
from ..images import render_grid
from ..registry import get_model_class, list_models
from .preprocess import mnist_like
from .store import ModelStore, gpu

FACE_MODELS = ("dcgan-faces", "convgan-faces128")
DIGIT_MODELS = ("cgan-digits", "cgan-digits-mlp")
TOY_MODELS = {"Gaussian (seed 001)": "gan-toy2d", "ring of 8 Gaussians": "gan-ring8"}
MAX_SEED = 2**31 - 1
MAX_UPLOAD_BYTES = 10 * 2**20
OUT = Path(tempfile.mkdtemp(prefix="hub-models-demo-"))


def friendly(fn: Callable) -> Callable:
    """HubModelsError (and bad numbers) → gr.Error with the same one-line message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HubModelsError as exc:
            raise gr.Error(str(exc)) from None

    return wrapper


def friendly_stream(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator:
        try:
            yield from fn(*args, **kwargs)
        except HubModelsError as exc:
            raise gr.Error(str(exc)) from None

    return wrapper


def whole(value: Any, name: str, lo: int, hi: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HubModelsError(f"{name} must be a whole number from {lo} to {hi}") from None
    if not number.is_integer() or not lo <= number <= hi:
        raise HubModelsError(f"{name} must be a whole number from {lo} to {hi}, got {value}")
    return int(number)


def upscale(picture: Image.Image, target: int = 512) -> Image.Image:
    """Nearest-neighbour upscaling by an integer factor: crisp pixels instead of a blur."""
    factor = max(1, target // max(picture.size))
    return picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)


def save_png(picture: Image.Image, stem: str) -> str:
    """Write ``picture`` once as a PNG (fast zlib level; shown and offered for download from the same file)."""
    prune()
    path = OUT / f"{stem}-{uuid.uuid4().hex[:8]}.png"
    picture.save(path, format="PNG", compress_level=1)
    return str(path)


def prune(max_age_s: float = 600, every: int = 200) -> None:
    """Delete this app's output files older than ``max_age_s`` (Gradio has copied them to its cache by then)."""
    global _SAVED
    _SAVED += 1
    if _SAVED % every:
        return
    cutoff = time.time() - max_age_s
    for path in OUT.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


_SAVED = 0


def to_pil(image: torch.Tensor) -> Image.Image:
    array = image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


class Handlers:
    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def model(self, model_id: str, allowed: tuple[str, ...] | None = None):
        if allowed is not None and model_id not in allowed:
            raise HubModelsError(f"unknown model {model_id!r}: choose one of {', '.join(allowed)}")
        return self.store.get(model_id)

    # ------------------------------------------------------------------ faces
    @gpu
    def faces(self, model_id: str, seed: Any, count: Any, truncation: Any) -> str:
        """The faces as one PNG grid at native resolution: the page upscales it crisply (image-rendering:
        pixelated) and its download button saves the file. One file per request, not one per face: Gradio's
        per-file work (encode, hash, copy, path checks, under the GIL) was 60% of a 16-face request's server
        time; and ``save_png``'s fast zlib level encodes the grid in half the time of Gradio's default."""
        model = self.model(model_id, FACE_MODELS)
        seed, count = whole(seed, "seed", 0, MAX_SEED), whole(count, "count", 1, 64)
        images = model.generate(count, seed=seed, truncation=truncation)
        return save_png(render_grid(images, nrow=min(8, count)), f"{model_id}-seed{seed}-n{count}")

    @gpu
    def interpolate(self, model_id: str, seed_a: Any, seed_b: Any, steps: Any, truncation: Any) -> tuple[Any, str]:
        model = self.model(model_id, FACE_MODELS)
        seed_a, seed_b = whole(seed_a, "seed A", 0, MAX_SEED), whole(seed_b, "seed B", 0, MAX_SEED)
        steps = whole(steps, "steps", 2, 32)
        if not hasattr(model, "interpolate"):
            raise HubModelsError(f"{model_id} does not offer interpolation")
        frames = model.interpolate(seed_a, seed_b, steps=steps, truncation=float(truncation))
        strip = upscale(render_grid(frames, nrow=steps, padding=0), 128 * steps)
        pictures = [upscale(to_pil(f), 256) for f in frames]
        gif = OUT / f"{model_id}-{seed_a}-{seed_b}-{steps}.gif"
        loop = pictures + pictures[::-1][1:-1]
        loop[0].save(gif, save_all=True, append_images=loop[1:], duration=120, loop=0)
        return strip, str(gif)

    # ------------------------------------------------------------------ digits
    @gpu
    def digits(self, model_id: str, digit: str, seed: Any, count: Any) -> tuple[str, str]:
        model = self.model(model_id, DIGIT_MODELS)
        seed, count = whole(seed, "seed", 0, MAX_SEED), whole(count, "count", 1, 100)
        label = "all" if str(digit).startswith("all") else digit
        if label == "all":
            count = max(10, count - count % 10)  # whole rows, one per digit
        images = model.generate(count, seed=seed, label=label)
        picture = render_grid(images, nrow=model.grid_nrow(count, label=model.parse_inputs({"label": label})["label"]))
        path = save_png(upscale(picture, 640), f"{model_id}-{label}-seed{seed}-n{count}")
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
        try:
            with Image.open(path) as img:
                array = np.asarray(img.convert("RGBA"))
        except OSError:
            raise HubModelsError("the upload is not a readable image") from None
        return mnist_like(array)

    def vae_input(self, sketch: Any, upload: Any, example: Any = None) -> torch.Tensor:
        """What to reconstruct: the drawing if it has ink, else the upload, else a test-set example."""
        drawn = self.sketch_ink(sketch)
        if drawn is not None:
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

    @gpu
    def vae_reconstruct(self, sketch: Any, upload: Any, example: Any = None) -> tuple[Image.Image, str]:
        vae = self.model("vae-digits")
        x = self.vae_input(sketch, upload, example)
        recon = vae.reconstruct(x)
        side = torch.cat([x, recon]).clamp(0, 1)
        bce = torch.nn.functional.binary_cross_entropy(recon, x, reduction="sum").item()
        mse = torch.mean((recon - x) ** 2).item()
        picture = upscale(render_grid(side, nrow=2, padding=2), 448)
        return picture, f"input (left) vs reconstruction (right): MSE {mse:.4f} per pixel, BCE {bce:.1f} nats"

    @gpu
    def vae_sample(self, seed: Any, count: Any) -> Image.Image:
        vae = self.model("vae-digits")
        images = vae.generate(whole(count, "count", 1, 100), seed=whole(seed, "seed", 0, MAX_SEED))
        return upscale(render_grid(images), 560)

    @gpu
    def vae_walk(self, seed: Any, dim_x: Any, dim_y: Any, steps: Any) -> Image.Image:
        vae = self.model("vae-digits")
        z = vae.config.z_dim - 1
        dims = (whole(dim_x, "x dimension", 0, z), whole(dim_y, "y dimension", 0, z))
        steps = whole(steps, "steps", 2, 20)
        grid = vae.latent_walk(seed=whole(seed, "seed", 0, MAX_SEED), dims=dims, steps=steps)
        return upscale(render_grid(grid, nrow=steps, padding=0), 560)

    # ------------------------------------------------------------------ the 2-D toys
    def toy_model(self, target: str):
        if target not in TOY_MODELS:
            raise HubModelsError(f"unknown target {target!r}: choose one of {', '.join(TOY_MODELS)}")
        return self.model(TOY_MODELS[target])

    @staticmethod
    def scatter(real: torch.Tensor, fake: torch.Tensor) -> pd.DataFrame:
        frames = [
            pd.DataFrame({"x": p[:, 0].numpy(), "y": p[:, 1].numpy(), "set": name})
            for name, p in (("target", real), ("generated", fake))
        ]
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def plot(real: torch.Tensor, fake: torch.Tensor) -> gr.ScatterPlot:
        """The scatter with axes fixed by the target (plus a margin), so training frames do not rescale."""
        lo, hi = real.min(0).values, real.max(0).values
        pad = 0.25 * (hi - lo)
        x_lim = [round(float(lo[0] - pad[0]), 2), round(float(hi[0] + pad[0]), 2)]
        y_lim = [round(float(lo[1] - pad[1]), 2), round(float(hi[1] + pad[1]), 2)]
        inside = fake.clamp(torch.tensor([x_lim[0], y_lim[0]]), torch.tensor([x_lim[1], y_lim[1]]))
        return gr.ScatterPlot(value=Handlers.scatter(real, inside), x_lim=x_lim, y_lim=y_lim)

    def metric_text(self, model: Any) -> str:
        metrics = {k: v for k, v in model.evaluate(num_samples=4000).items() if k != "eval_command"}
        return ", ".join(f"{k} = {v}" for k, v in metrics.items())

    def toy_show(self, target: str, seed: Any) -> tuple[gr.ScatterPlot, str]:
        model = self.toy_model(target)
        fake = model.generate(1000, seed=whole(seed, "seed", 0, MAX_SEED))
        return self.plot(model.reference_points(), fake), "bundled weights: " + self.metric_text(model)

    def toy_train(
        self, target: str, steps: Any, seed: Any, progress: Any = None
    ) -> Iterator[tuple[gr.ScatterPlot, str]]:
        """Train a fresh copy of the toy GAN in-process, yielding the moving distribution."""
        base = self.toy_model(target)
        steps, seed = whole(steps, "steps", 10, 5000), whole(seed, "seed", 0, MAX_SEED)
        torch.manual_seed(seed)
        model = type(base)(base.config)
        setup = model.setup_training(torch.device("cpu"))
        data = model.load_data(None)["points"]
        batch = base.train_defaults.get("batch_size", 256)
        g = torch.Generator().manual_seed(seed)
        real = model.reference_points()
        every, tick = max(1, steps // 20), max(1, steps // 100)
        for opt in setup.optimizers.values():
            for group in opt.param_groups:
                group["initial_lr"] = group["lr"]
        for step in range(1, steps + 1):
            for opt in setup.optimizers.values():  # the recipe's linear decay, scaled to this run
                for group in opt.param_groups:
                    if base.train_defaults.get("lr_schedule") == "linear":
                        group["lr"] = group["initial_lr"] * (1 - (step - 1) / steps)
            idx = torch.randint(0, len(data), (batch,), generator=g)
            model.train_step(setup, {"points": data[idx]})
            if progress is not None and (step % tick == 0 or step == steps):  # ~100 updates, not one per step
                progress(step / steps, desc=f"step {step}/{steps}")
            if step % every == 0 or step == steps:
                model.net.eval()
                fake = model.generate(1000, seed=0)
                text = f"step {step}/{steps}"
                if step == steps:
                    text += ": " + self.metric_text(model)
                yield self.plot(real, fake), text

    # ------------------------------------------------------------------ any plugin
    @gpu
    def generic(self, model_id: str, seed: Any, count: Any, inputs_json: str) -> tuple[Image.Image, str]:
        if model_id not in list_models():
            raise HubModelsError(f"unknown model {model_id!r}; installed: {', '.join(list_models())}")
        try:
            inputs = json.loads(inputs_json or "{}")
        except json.JSONDecodeError:
            raise HubModelsError('inputs must be a JSON object, e.g. {"label": "7"}') from None
        if not isinstance(inputs, dict):
            raise HubModelsError('inputs must be a JSON object, e.g. {"label": "7"}')
        model = self.model(model_id)
        seed, count = whole(seed, "seed", 0, MAX_SEED), whole(count, "count", 1, 100)
        samples = model.generate(count, seed=seed, **inputs)
        picture = model.render(samples, nrow=model.grid_nrow(count, **model.parse_inputs(inputs)))
        if model.output == "image":
            picture = upscale(picture, 640)
        path = save_png(picture, f"{model_id}-seed{seed}-n{count}")
        return path, path

    def describe(self, model_id: str) -> str:
        cls = get_model_class(model_id)
        reason = self.store.status(model_id)
        lines = [f"**{model_id}** — {cls.card.summary}"]
        if reason:
            lines.append(f"⚠️ {reason}")
        elif self.store.get(model_id).metric_values:
            shown = {k: v for k, v in self.store.get(model_id).metric_values.items() if isinstance(v, int | float)}
            lines.append("metrics on the card: " + ", ".join(f"{k} = {v}" for k, v in shown.items()))
        return "\n\n".join(lines)
