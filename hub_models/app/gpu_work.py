"""The demo's model work, as module-level functions of plain values (what a ZeroGPU Space needs), and the
pictures they write: each image once, inside Gradio's cache (``runfiles.outputs_dir``).

Every function handed to spaces.GPU takes plain, picklable values (ids, numbers, dicts, CPU tensors) and returns
picklable ones (paths, PIL images, strings); inputs are validated before, by the Handlers methods.
tests/test_space.py pickles each of them with the arguments the app passes."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from PIL import Image

from ..errors import HubModelsError
from ..images import render_grid
from ..spec import make_generator
from .checks import friendly, vae_id
from .runfiles import outputs_dir
from .store import ModelStore, gpu, running

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


GRID_WIDTH = 1024  # about how wide (px) the face grids and strips are drawn: a page column's width


def upscale(picture: Image.Image, target: int = 512) -> Image.Image:
    """Nearest-neighbour upscaling by an integer factor: crisp pixels instead of a blur."""
    factor = max(1, target // max(picture.size))
    return picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)


def save_png(picture: Image.Image, stem: str) -> str:
    """Write ``picture`` once as a PNG (fast zlib level; shown and offered for download from the same file, in
    Gradio's cache: served without a copy, removed by its ``delete_cache``)."""
    path = outputs_dir() / f"{stem}-{uuid.uuid4().hex[:8]}.png"
    picture.save(path, format="PNG", compress_level=1)
    return str(path)


def save_gif(frames: torch.Tensor, stem: str, size: int = 256) -> str:
    """``frames`` (float N×C×H×W in [0, 1]) as a looping GIF, forward and back, upscaled to ``size`` px, under a name
    of its own: concurrent requests never share (or half-read) a file.

    One palette for all frames, from the frames at native size (FASTOCTREE, no dithering), then each indexed frame
    upscaled nearest: 9 ms instead of 120 ms for PIL's default (a median-cut palette per 256 px frame), pixels
    within ~4/255 of the frames on average (2/255 before), and no palette flicker between frames."""
    strip = render_grid(frames, nrow=len(frames), padding=0)
    indexed = strip.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    side, factor = strip.height, max(1, size // strip.height)
    pictures = [
        indexed.crop((i * side, 0, (i + 1) * side, side)).resize((side * factor,) * 2, Image.NEAREST)
        for i in range(len(frames))
    ]
    loop = pictures + pictures[::-1][1:-1]
    path = outputs_dir() / f"{stem}-{uuid.uuid4().hex[:8]}.gif"
    loop[0].save(path, save_all=True, append_images=loop[1:], duration=120, loop=0, optimize=False)
    return str(path)


# A large grid on the CPU is decoded in slices on threads of their own, when that pays: launch() gives each
# concurrent request a one-thread torch pool (one per core would oversubscribe under load), so alone a 100-digit
# grid used one of the cores. Measured on the 2-core CPU, training paused (benchmarks/bench_demo.py):
# - float32: two slices of 50 in parallel take 125-135 ms against 225-235 ms whole (the kernels release the GIL);
# - bfloat16 (AMX): 77-89 ms against 76-93 ms whole, at twice the CPU time: the two cores share one matrix unit,
#   and the second slice only slowed the request (100-digit grid p50 184 ms sliced, ~100 ms whole) and every
#   request beside it (mixed load, digits p95 1.6 s);
# - under load no core is idle: a request's second slice competes with the other requests, so a grid is sliced
#   only while no other model call is running.
SLICE_POOL = ThreadPoolExecutor(thread_name_prefix="hub-models-slice")
MIN_SLICE = 32


def slice_count(model: Any, count: int) -> int:
    """How many parallel slices to decode ``count`` samples of ``model`` in (1: whole, see above)."""
    net_dtype = next(model.net.parameters(), torch.empty(0)).dtype
    if model.device.type != "cpu" or net_dtype != torch.float32 or running() > 1:
        return 1
    return max(1, min((os.cpu_count() or 1) // torch.get_num_threads(), count // MIN_SLICE))


def generate_sliced(model: Any, count: int, seed: int, **inputs: Any) -> torch.Tensor:
    """``model.generate(count, seed=seed, **inputs)``: the same latents from the same seed, decoded in slices in
    parallel where that is faster (``slice_count``; the samples of a slice do not depend on the others:
    eval-mode nets)."""
    slices = slice_count(model, count)
    if slices <= 1:
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
    """The faces as one PNG grid, upscaled by a whole factor (nearest: crisp pixels) to about 1000 px wide, so
    16 faces of 64 px fill the page's column (and full screen) instead of sitting small in it; the page shows it
    at that size (at most the column's width), and its download button saves the file. One file per request,
    not one per face: Gradio's per-file work (encode, hash, copy, path checks, under the GIL) was 60% of a
    16-face request's server time; and ``save_png``'s fast zlib level encodes the grid in
    half the time of Gradio's default."""
    model = _model(model_id)
    inputs = {"truncation": truncation} if any(spec.name == "truncation" for spec in model.inputs) else {}
    images = model.generate(count, seed=seed, **inputs)
    grid = render_grid(images, nrow=min(8, count))
    factor = min(4, max(1, round(GRID_WIDTH / grid.width)))  # at most 4x: one face stays a face, not blocks
    grid = grid.resize((grid.width * factor, grid.height * factor), Image.NEAREST) if factor > 1 else grid
    return save_png(grid, f"{model_id}-seed{seed}-n{count}")


@gpu
@friendly
def face_interpolation(model_id: str, seed_a: int, seed_b: int, steps: int, truncation: float) -> tuple[str, str]:
    """The faces between two seeds (PNG: rows of at most 8, so 32 steps read as 4 rows of faces, not a thin
    strip), and the same frames as a looping GIF (forward and back)."""
    model = _model(model_id)
    inputs = {"truncation": truncation} if any(spec.name == "truncation" for spec in model.inputs) else {}
    frames = model.interpolate(seed_a, seed_b, steps=steps, **inputs)
    stem = f"{model_id}-{seed_a}-{seed_b}-{steps}-psi{truncation:g}".replace(".", "p")
    # both as files written here (the strip with save_png's fast zlib level, not Gradio's slower default)
    strip = save_png(upscale(render_grid(frames, nrow=min(steps, 8), padding=0), GRID_WIDTH), stem)
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
    return axis_labels(upscale(render_grid(grid, nrow=steps, padding=0), 560), dims, WALK_SPAN)


WALK_SPAN = 2.5  # the latent walk sweeps each of its two dimensions over ±this (the model's default)


def axis_labels(picture: Image.Image, dims: tuple[int, int], span: float) -> Image.Image:
    """``picture`` with margins naming its axes (below and on the left, clear of the page's label in the top
    corner): the latent dimension swept left to right and top to bottom, and the values at both ends."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=16)
    margin = 28
    out = Image.new("RGB", (picture.width + margin, picture.height + margin), "white")
    out.paste(picture.convert("RGB"), (margin, 0))
    draw = ImageDraw.Draw(out)
    below = f"z[{dims[0]}] from {-span:g} (left) to {span:g} (right)"
    draw.text((margin + picture.width // 2, picture.height + margin // 2), below, fill="black", font=font, anchor="mm")
    left = Image.new("RGB", (picture.height, margin), "white")
    side = f"z[{dims[1]}] from {-span:g} (top) to {span:g} (bottom)"
    ImageDraw.Draw(left).text((picture.height // 2, margin // 2), side, fill="black", font=font, anchor="mm")
    out.paste(left.rotate(-90, expand=True), (0, 0))
    return out


@gpu
@friendly
def plugin_grid(model_id: str, seed: int, count: int, inputs: dict[str, Any]) -> str:
    model = _model(model_id)
    samples = model.generate(count, seed=seed, **inputs)
    picture = model.render(samples, nrow=model.grid_nrow(count, **model.parse_inputs(inputs)))
    if model.output == "image":
        picture = upscale(picture, 640)
    return save_png(picture, f"{model_id}-seed{seed}-n{count}")
