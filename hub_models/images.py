"""Turning samples into pictures and files: grids, scatter plots, PNG and NPY output."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import HubModelsError
from .utils import atomic_path, to_uint8


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 0.0) -> torch.Tensor:
    """torchvision's ``make_grid`` for an N×C×H×W batch, pixel for pixel (tests/test_space.py compares them).

    Not imported from torchvision: ``import torchvision`` loads its models and ops, and with them torch._dynamo
    and sympy, ~2 s of the demo's 10 s cold start, for these few lines; nothing else here needs it."""
    if images.size(1) == 1:  # single-channel images are drawn grey in RGB
        images = images.expand(-1, 3, -1, -1)
    if images.size(0) == 1:  # one image: as is, without padding
        return images[0].clone()
    n, channels, height, width = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    step_y, step_x = height + padding, width + padding
    grid = images.new_full((channels, rows * step_y + padding, cols * step_x + padding), pad_value)
    for k, image in enumerate(images):
        y, x = divmod(k, cols)
        grid[:, y * step_y + padding : (y + 1) * step_y, x * step_x + padding : (x + 1) * step_x] = image
    return grid


def render_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, scale: int = 1) -> Image.Image:
    """Float images in [0, 1] (N×C×H×W) → one RGB grid (as torchvision's ``make_grid``), nearest upscaled."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    grid = make_grid(images.float().clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)
    picture = Image.fromarray(to_uint8(grid).permute(1, 2, 0).numpy())
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return picture


def render_points(
    points: torch.Tensor, reference: torch.Tensor | None = None, size: int = 512, bounds: tuple | None = None
) -> Image.Image:
    """A scatter plot of 2-D points (generated in orange, reference in blue) drawn with PIL."""
    pts = points.detach().float().cpu()
    every = pts if reference is None else torch.cat([pts, reference.float().cpu()])
    if bounds is None:
        lo, hi = every.min(0).values, every.max(0).values
        pad = (hi - lo).clamp(min=1e-3) * 0.1
        bounds = (*(lo - pad).tolist(), *(hi + pad).tolist())
    x0, y0, x1, y1 = bounds
    picture = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(picture)

    def to_px(p: torch.Tensor) -> list[tuple[float, float]]:
        xs = (p[:, 0] - x0) / (x1 - x0) * (size - 1)
        ys = (1 - (p[:, 1] - y0) / (y1 - y0)) * (size - 1)
        return list(zip(xs.tolist(), ys.tolist(), strict=True))

    for layer, colour in ((reference, (31, 119, 180)), (pts, (255, 127, 14))):
        if layer is None:
            continue
        for x, y in to_px(layer.float().cpu()):
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    return picture


def save_samples(samples: torch.Tensor, path: str | Path, picture: Image.Image | None = None) -> Path:
    """Write samples by extension: ``.png``/``.jpg`` a picture, ``.npy`` the raw array. Atomic."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".png", ".jpg", ".jpeg", ".npy"}:
        raise HubModelsError(f"cannot write {path.name!r}: use an output file ending in .png, .jpg or .npy")
    if path.exists() and path.is_dir():
        raise HubModelsError(f"output path {path} is a directory: give a file name such as {path / 'samples.png'}")
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            if samples.dim() == 4:  # images: uint8 N×C×H×W
                array = to_uint8(samples).numpy()
            else:  # points: float32 N×2
                array = samples.float().numpy().astype(np.float32)
            with open(tmp, "wb") as fh:
                np.save(fh, array)
        else:
            picture = picture if picture is not None else render_grid(samples)
            picture.save(tmp, format="PNG" if suffix == ".png" else "JPEG")
    return path


def render_curve(
    xs: list[float],
    ys: list[float],
    x_label: str,
    y_label: str,
    title: str = "",
    best: int | None = None,
    size: tuple[int, int] = (640, 440),
    scale: str = "linear",
) -> Image.Image:
    """A line plot of ``ys`` over ``xs`` with labelled axes ticked at round numbers, drawn with PIL (matplotlib is
    no dependency); the point at index ``best`` is ringed; ``title`` may have several lines. Used for the training
    curve of a model card. PIL's built-in font has ASCII only: accented letters are drawn without their accents.

    ``scale="nines"`` (an accuracy): the y axis is -log10(1 - y), with 0.9, 0.99, 0.999 equally spaced, when the
    curve spans at least one nine (``drawn_scale``)."""
    scale = drawn_scale(ys, scale)
    width, height = size
    title_lines = _ascii(title).splitlines()
    left, right, top, bottom = 84, 24, 16 + 18 * len(title_lines), 52
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    draw.font = ImageFont.load_default(size=13)
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    axis = nines if scale == "nines" else float  # a value's height on the drawn axis
    y0, y1 = _span([axis(y) for y in ys])

    def px(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x0) / (x1 - x0) * (width - left - right),
            top + (1 - (axis(y) - y0) / (y1 - y0)) * (height - top - bottom),
        )

    ink, grey = (40, 40, 40), (225, 225, 225)
    for tick, text in _ticks(x0, x1):
        gx, _ = px(tick, y0)
        draw.line([(gx, top), (gx, height - bottom)], fill=grey)
        draw.text((gx, height - bottom + 6), text, fill=ink, anchor="ma")
    for tick, text in _nines_ticks(y0, y1) if scale == "nines" else _ticks(y0, y1):
        _, gy = px(x0, tick)
        draw.line([(left, gy), (width - right, gy)], fill=grey)
        draw.text((left - 6, gy), text, fill=ink, anchor="rm")
    draw.rectangle([left, top, width - right, height - bottom], outline=ink)
    points = [px(x, y) for x, y in zip(xs, ys, strict=True)]
    if len(points) > 1:
        draw.line(points, fill=(31, 119, 180), width=2)
    for x, y in points:
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(31, 119, 180))
    if best is not None:
        x, y = points[best]
        draw.ellipse((x - 7, y - 7, x + 7, y + 7), outline=(214, 39, 40), width=2)
    draw.text(((left + width - right) / 2, height - 18), _ascii(x_label), fill=ink, anchor="mm")
    label = Image.new("RGB", (height - top - bottom, 16), "white")  # the y label, written sideways
    ImageDraw.Draw(label).text((label.width / 2, 8), _ascii(y_label), fill=ink, anchor="mm", font=draw.font)
    picture.paste(label.rotate(90, expand=True), (6, top))
    for k, line in enumerate(title_lines):
        draw.text((width / 2, 16 + 18 * k), line, fill=ink, anchor="mm")
    return picture


def _span(heights: list[float]) -> tuple[float, float]:
    """The y axis's range: the heights with 8% to spare on each side, and no negative axis for non-negative ones."""
    y0, y1 = (min(heights), max(heights)) if heights else (0.0, 1.0)
    pad = (y1 - y0) * 0.08 or max(abs(y0) * 0.1, 1e-3)
    return (max(y0 - pad, 0.0) if y0 >= 0 else y0 - pad), y1 + pad


def _ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Round tick values within [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten, 3 to 7 of them), labelled
    with as many decimals as the step needs and thousands separated: 150,000 rather than 1.5e+05."""
    raw = (hi - lo) / 6
    power = 10 ** math.floor(math.log10(raw))
    mantissa = next(m for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    step = mantissa * power
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if mantissa == 2.5 and step < 10 else 0)
    first = math.ceil(lo / step - 1e-9)
    values = [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]
    return [(v, f"{v:,.{decimals}f}") for v in values]


CURVE_SCALES = ("linear", "nines")  # a curve's y axis: the values as they are, or -log10(1 - y) for a share


def drawn_scale(ys: list[float], scale: str) -> str:
    """The axis a curve of ``ys`` is drawn on: "nines" when asked for and the values span at least one nine (0.9 to
    0.99, say); a curve that stays within one nine reads best on a linear axis."""
    if scale not in CURVE_SCALES:
        raise ValueError(f"scale must be 'linear' or 'nines', not {scale!r}")
    heights = [nines(y) for y in ys] if scale == "nines" else []
    return "nines" if heights and max(heights) - min(heights) >= 1 else "linear"


def nines(share: float) -> float:
    """A share's height on the "nines" axis: -log10(1 - share), 1 for 0.9, 2 for 0.99 (capped at 6 nines)."""
    return -math.log10(max(1.0 - share, 1e-6))


def _nines_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Tick values for a "nines" axis spanning heights [lo, hi], at least one nine (``drawn_scale``): 0.9, 0.99,
    0.999 ..., with 0.5, 0.8, 0.95, 0.98, 0.995 ... between them while it spans under three nines (three ticks or
    more either way: those between are at most 0.4 of a nine apart)."""
    between = (0.5, 0.2) if hi - lo < 3 else ()
    parts = [part * 10.0**-k for k in range(7) for part in (1.0, *between)]  # 1 - value: 1, 0.5, 0.2, 0.1 ...
    values = sorted(1.0 - part for part in parts if lo - 1e-9 <= nines(1.0 - part) <= hi + 1e-9)
    return [(v, f"{v:.6f}".rstrip("0").rstrip(".")) for v in values]


def _ascii(text: str) -> str:
    """``text`` without accents (é -> e) and with any other non-ASCII character as '?'."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", text)
    return "".join(c for c in plain if not unicodedata.combining(c)).encode("ascii", "replace").decode()
