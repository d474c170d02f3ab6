"""What each button of the demo does. Plain functions of plain values, so the UI and the tests share them.

Every handler validates its inputs and turns user errors into ``gr.Error`` (a toast), never a traceback.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
from ..spec import MAX_SEED, make_generator
from .preprocess import MAX_UPLOAD_PIXELS, mnist_like
from .store import ModelStore, gpu

# Which installed models each tab offers, from what the plugins declare (never by id): a third-party plugin that
# declares the same capabilities appears in the tab with no change here.
TAB_MODELS = {
    "faces": lambda cls: cls.output == "image" and cls.conditioning is None and cls.supports_interpolation,
    "classes": lambda cls: cls.output == "image" and cls.conditioning is not None,
    "reconstruction": lambda cls: cls.supports_reconstruction,
    "points": lambda cls: cls.output == "points",
}


def tab_models(tab: str) -> tuple[str, ...]:
    """The installed models (that import cleanly) whose declarations fit ``tab``."""
    return tuple(m for m in list_models() if TAB_MODELS[tab](get_model_class(m)))


def class_choices(model_id: str) -> tuple[str, ...]:
    """The values of the input that picks the class of a conditional model (e.g. "all", "0", ..., "9")."""
    cls = get_model_class(model_id)
    spec = next(spec for spec in cls.inputs if spec.name == cls.conditioning)
    return tuple(map(str, spec.choices)) if spec.choices else (str(spec.default),)


def vae_id() -> str:
    """The model of the reconstruction tab: vae-digits when installed, else the first that declares it."""
    found = tab_models("reconstruction")
    if not found:
        raise HubModelsError("no installed model declares reconstruction")
    return "vae-digits" if "vae-digits" in found else found[0]


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
MAX_UPLOAD_BYTES = 10 * 2**20
OUT = Path(tempfile.mkdtemp(prefix="hub-models-demo-"))
atexit.register(shutil.rmtree, OUT, ignore_errors=True)  # the app's launch() turns SIGTERM into a normal exit
# Decoding an upload costs up to ~64 MB (16 MP RGBA) however small the file: two at a time, the rest wait.
DECODES = threading.BoundedSemaphore(2)

# The models the GPU functions below use. Module-level on purpose: on a ZeroGPU Space, spaces.GPU pickles each
# call's arguments into a forked GPU worker, which inherits this global instead (a store holds a lock and
# loaded models, which do not pickle). build_app() sets it.
_STORE: ModelStore | None = None


def use_store(store: ModelStore) -> None:
    global _STORE
    _STORE = store


def _model(model_id: str):
    if _STORE is None:
        raise HubModelsError("the demo's models are not set up: call hub_models.app.build_app() first")
    return _STORE.get(model_id)


def friendly(fn: Callable) -> Callable:
    """HubModelsError (and bad numbers) → gr.Error with the same one-line message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HubModelsError as exc:
            raise user_error(str(exc)) from None

    return wrapper


def user_error(message: str) -> gr.Error:
    """A toast for the visitor; no traceback in the server log (it is the visitor's mistake, not a bug)."""
    return gr.Error(message, print_exception=False)


def friendly_stream(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator:
        try:
            yield from fn(*args, **kwargs)
        except HubModelsError as exc:
            raise user_error(str(exc)) from None

    return wrapper


def whole(value: Any, name: str, lo: int, hi: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HubModelsError(f"{name} must be a whole number from {lo} to {hi}") from None
    if not number.is_integer() or not lo <= number <= hi:
        raise HubModelsError(f"{name} must be a whole number from {lo} to {hi}, got {value}")
    return int(number)


def number(value: Any, name: str, lo: float, hi: float) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise HubModelsError(f"{name} must be a number from {lo:g} to {hi:g}") from None
    if not lo <= result <= hi:
        raise HubModelsError(f"{name} must be a number from {lo:g} to {hi:g}, got {value}")
    return result


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


def save_gif(frames: torch.Tensor, stem: str, size: int = 256) -> str:
    """``frames`` (float N×C×H×W in [0, 1]) as a looping GIF, forward and back, upscaled to ``size`` px, under a name
    of its own: concurrent requests never share (or half-read) a file.

    One palette for all frames, from the frames at native size (FASTOCTREE, no dithering), then each indexed frame
    upscaled nearest: 9 ms instead of 120 ms for PIL's default (a median-cut palette per 256 px frame), pixels
    within ~4/255 of the frames on average (2/255 before), and no palette flicker between frames."""
    prune()
    strip = render_grid(frames, nrow=len(frames), padding=0)
    indexed = strip.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    side, factor = strip.height, max(1, size // strip.height)
    pictures = [
        indexed.crop((i * side, 0, (i + 1) * side, side)).resize((side * factor,) * 2, Image.NEAREST)
        for i in range(len(frames))
    ]
    loop = pictures + pictures[::-1][1:-1]
    path = OUT / f"{stem}-{uuid.uuid4().hex[:8]}.gif"
    loop[0].save(path, save_all=True, append_images=loop[1:], duration=120, loop=0, optimize=False)
    return str(path)


# A large grid on the CPU is decoded in slices on threads of their own: launch() gives each concurrent request a
# one-thread torch pool (one per core would oversubscribe under load), so alone a 100-digit grid used one of the
# cores; the kernels release the GIL, so two slices take ~55% of the time (122 → 68 ms, bit-identical, 2 cores).
SLICE_POOL = ThreadPoolExecutor(thread_name_prefix="hub-models-slice")
MIN_SLICE = 32


def generate_sliced(model: Any, count: int, seed: int, **inputs: Any) -> torch.Tensor:
    """``model.generate(count, seed=seed, **inputs)``: the same latents from the same seed, decoded in slices in
    parallel on a CPU with idle cores (the samples of a slice do not depend on the others: eval-mode nets)."""
    slices = min(max(1, (os.cpu_count() or 1) // torch.get_num_threads()), count // MIN_SLICE)
    if model.device.type != "cpu" or slices <= 1:
        return model.generate(count, seed=seed, **inputs)
    parsed = model.parse_inputs(inputs)
    latents = model.sample_latents(count, make_generator(seed), **parsed)
    parts = [tuple(t.tensor_split(slices)) for t in latents] if isinstance(latents, tuple) else None
    chunks = list(zip(*parts)) if parts else latents.tensor_split(slices)
    rest = [SLICE_POOL.submit(model.decode_latents, chunk, **parsed) for chunk in chunks[1:]]
    return torch.cat([model.decode_latents(chunks[0], **parsed), *(f.result() for f in rest)])


# ---------------------------------------------------------------------------------------------------------------
# The GPU work. Every function handed to spaces.GPU is module-level and takes plain, picklable values (ids,
# numbers, dicts, CPU tensors) and returns picklable ones (paths, PIL images, strings); inputs are validated
# before, by the Handlers methods. tests/test_space.py pickles each of them with the arguments the app passes.
# ---------------------------------------------------------------------------------------------------------------
@gpu
@friendly
def faces_grid(model_id: str, seed: int, count: int, truncation: float) -> str:
    """The faces as one PNG grid: at native resolution from 8 faces on (a 128 px model: from 4), and for fewer
    upscaled by a whole factor of at most 4 to about 512 px, so one face is a face, not a wall of blocks; the
    page shows it at that size (at most the column's width) with crisp pixels, and its download button saves the
    file. One file per request, not one per face: Gradio's per-file work (encode, hash, copy, path checks, under
    the GIL) was 60% of a 16-face request's server time; and ``save_png``'s fast zlib level encodes the grid in
    half the time of Gradio's default."""
    model = _model(model_id)
    inputs = {"truncation": truncation} if any(spec.name == "truncation" for spec in model.inputs) else {}
    images = model.generate(count, seed=seed, **inputs)
    grid = render_grid(images, nrow=min(8, count))
    factor = min(4, max(1, 512 // max(grid.size)))
    grid = grid.resize((grid.width * factor, grid.height * factor), Image.NEAREST) if factor > 1 else grid
    return save_png(grid, f"{model_id}-seed{seed}-n{count}")


@gpu
@friendly
def face_interpolation(model_id: str, seed_a: int, seed_b: int, steps: int, truncation: float) -> tuple[str, str]:
    """A strip of the faces between two seeds (PNG), and the same frames as a looping GIF (forward and back)."""
    model = _model(model_id)
    inputs = {"truncation": truncation} if any(spec.name == "truncation" for spec in model.inputs) else {}
    frames = model.interpolate(seed_a, seed_b, steps=steps, **inputs)
    stem = f"{model_id}-{seed_a}-{seed_b}-{steps}-psi{truncation:g}".replace(".", "p")
    # both as files written here (the strip with save_png's fast zlib level, not Gradio's slower default)
    strip = save_png(upscale(render_grid(frames, nrow=steps, padding=0), 128 * steps), stem)
    return strip, save_gif(frames, stem)


@gpu
@friendly
def digit_grid(model_id: str, label: str, seed: int, count: int) -> str:
    model = _model(model_id)
    choice = {model.conditioning: label}  # the input that picks the class ("label" for the digit models)
    images = generate_sliced(model, count, seed, **choice)
    picture = render_grid(images, nrow=model.grid_nrow(count, **model.parse_inputs(choice)))
    if images.shape[1] == 1:  # grey digits as a greyscale PNG: the same pixels, a third of the bytes to encode
        picture = picture.convert("L")
    return save_png(upscale(picture, 640), f"{model_id}-{label}-seed{seed}-n{count}")


@gpu
@friendly
def vae_pair(x: torch.Tensor) -> tuple[Image.Image, str]:
    """``x`` (1x1x28x28, CPU) next to its reconstruction, and the reconstruction error."""
    recon = _model(vae_id()).reconstruct(x).cpu()
    side = torch.cat([x, recon]).clamp(0, 1)
    bce = torch.nn.functional.binary_cross_entropy(recon, x, reduction="sum").item()
    mse = torch.mean((recon - x) ** 2).item()
    picture = upscale(render_grid(side, nrow=2, padding=2), 448)
    return picture, f"input (left) vs reconstruction (right): MSE {mse:.4f} per pixel, BCE {bce:.1f} nats"


@gpu
@friendly
def vae_prior(seed: int, count: int) -> Image.Image:
    return upscale(render_grid(_model(vae_id()).generate(count, seed=seed)), 560)


@gpu
@friendly
def vae_latent_walk(seed: int, dims: tuple[int, int], steps: int) -> Image.Image:
    grid = _model(vae_id()).latent_walk(seed=seed, dims=dims, steps=steps)
    return upscale(render_grid(grid, nrow=steps, padding=0), 560)


@gpu
@friendly
def plugin_grid(model_id: str, seed: int, count: int, inputs: dict[str, Any]) -> str:
    model = _model(model_id)
    samples = model.generate(count, seed=seed, **inputs)
    picture = model.render(samples, nrow=model.grid_nrow(count, **model.parse_inputs(inputs)))
    if model.output == "image":
        picture = upscale(picture, 640)
    return save_png(picture, f"{model_id}-seed{seed}-n{count}")


def image_size(path: str | Path) -> tuple[int, int]:
    """An image file's width and height from its header, without decoding the pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # lazy: reads the header only
                return img.size
    except Image.DecompressionBombError:  # PIL refuses > 2x its pixel limit before reading further
        raise HubModelsError(TOO_LARGE) from None
    except (OSError, ValueError, SyntaxError):
        raise HubModelsError("the upload is not a readable image: upload a PNG, JPEG, WebP, BMP or GIF") from None


TOO_LARGE = f"the picture is too large: upload one under {MAX_UPLOAD_PIXELS // 2**20} megapixels"


def check_image_header(path: str | Path) -> None:
    width, height = image_size(path)
    if width * height > MAX_UPLOAD_PIXELS:
        raise HubModelsError(f"{TOO_LARGE} (this one is {width}x{height})")


class Handlers:
    """What the buttons do: validate the visitor's values, then call the GPU functions above."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        use_store(store)

    @staticmethod
    def allowed(model_id: str, allowed: tuple[str, ...]) -> str:
        if model_id not in allowed:
            raise HubModelsError(f"unknown model {model_id!r}: choose one of {', '.join(allowed)}")
        return model_id

    # ------------------------------------------------------------------ faces
    def faces(self, model_id: str, seed: Any, count: Any, truncation: Any) -> str:
        model_id = self.allowed(model_id, tab_models("faces"))
        seed, count = whole(seed, "seed", 0, MAX_SEED), whole(count, "count", 1, 64)
        return faces_grid(model_id, seed, count, number(truncation, "truncation ψ", 0.1, 1.0))

    def interpolate(self, model_id: str, seed_a: Any, seed_b: Any, steps: Any, truncation: Any) -> tuple[str, str, str]:
        """The strip, the GIF, and a caption naming what they show (the inputs may have changed since)."""
        model_id = self.allowed(model_id, tab_models("faces"))
        seed_a, seed_b = whole(seed_a, "seed A", 0, MAX_SEED), whole(seed_b, "seed B", 0, MAX_SEED)
        steps, psi = whole(steps, "steps", 2, 32), number(truncation, "truncation ψ", 0.1, 1.0)
        if not get_model_class(model_id).supports_interpolation:
            raise HubModelsError(f"{model_id} does not offer interpolation")
        strip, gif = face_interpolation(model_id, seed_a, seed_b, steps, psi)
        return strip, gif, f"{model_id}: seed {seed_a} → seed {seed_b}, ψ = {psi:g}, {steps} steps"

    # ------------------------------------------------------------------ digits
    def digits(self, model_id: str, digit: str, seed: Any, count: Any) -> tuple[str, str]:
        model_id = self.allowed(model_id, tab_models("classes"))
        seed, count = whole(seed, "seed", 0, MAX_SEED), whole(count, "count", 1, 100)
        label = "all" if str(digit).startswith("all") else str(digit)
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

    def vae_input(self, sketch: Any, upload: Any, example: Any = None) -> torch.Tensor:
        """What to reconstruct: the drawing or the upload (not both), else a test-set example."""
        drawn = self.sketch_ink(sketch)
        if drawn is not None and upload is not None:
            raise HubModelsError("there is both a drawing and an upload: clear the one you do not want")
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

    def vae_reconstruct(self, sketch: Any, upload: Any, example: Any = None) -> tuple[Image.Image, str]:
        return vae_pair(self.vae_input(sketch, upload, example))

    def vae_sample(self, seed: Any, count: Any) -> Image.Image:
        return vae_prior(whole(seed, "seed", 0, MAX_SEED), whole(count, "count", 1, 100))

    def vae_walk(self, seed: Any, dim_x: Any, dim_y: Any, steps: Any) -> Image.Image:
        z = _model(vae_id()).config.z_dim - 1
        dims = (whole(dim_x, "x dimension", 0, z), whole(dim_y, "y dimension", 0, z))
        return vae_latent_walk(whole(seed, "seed", 0, MAX_SEED), dims, whole(steps, "steps", 2, 20))

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
        metrics = model.evaluate(num_samples=4000)
        return ", ".join(f"{k} = {v}" for k, v in metrics.items())

    def toy_show(self, target: str, seed: Any) -> tuple[gr.ScatterPlot, str]:
        model = self.toy_model(target)
        fake = model.generate(1000, seed=whole(seed, "seed", 0, MAX_SEED))
        return self.plot(model.reference_points(), fake), "bundled weights: " + self.metric_text(model)

    def toy_train(self, target: str, steps: Any, seed: Any) -> Iterator[tuple[gr.ScatterPlot, str]]:
        """Train a fresh copy of the toy GAN in-process (CPU), yielding the moving distribution 20 times: each
        frame replaces the plot, and the text says the step (no progress bar over the plot it would hide)."""
        from ..engine import Trainer, resolve_training

        base = self.toy_model(target)
        steps, seed = whole(steps, "steps", 10, 5000), whole(seed, "seed", 0, MAX_SEED)
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
            raise HubModelsError(f"unknown model {model_id!r}; installed: {', '.join(list_models())}")
        try:
            inputs = json.loads(inputs_json or "{}")
        except json.JSONDecodeError:
            raise HubModelsError('inputs must be a JSON object, e.g. {"label": "7"}') from None
        if not isinstance(inputs, dict):
            raise HubModelsError('inputs must be a JSON object, e.g. {"label": "7"}')
        seed, count = whole(seed, "seed", 0, MAX_SEED), whole(count, "count", 1, 100)
        path = plugin_grid(model_id, seed, count, inputs)
        return path, path

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
