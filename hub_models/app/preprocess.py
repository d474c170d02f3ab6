"""Turning a drawing or an uploaded picture into an MNIST-style digit (white on black, 28x28, centred)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..errors import HubModelsError

MAX_UPLOAD_PIXELS = 4096 * 4096


def to_grey(image: np.ndarray) -> np.ndarray:
    """H×W[×3|4] uint8 → float ink map in [0, 1] (1 = ink), inverting dark-on-light pictures."""
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[..., 3].astype(np.float32) / 255
        if alpha.min() < 0.99:  # a transparent canvas: strokes are where alpha is
            lum = image[..., :3].astype(np.float32).mean(2) / 255
            return alpha * np.where(lum < 0.5, 1.0, lum)
        image = image[..., :3]
    grey = image.astype(np.float32).mean(2) / 255 if image.ndim == 3 else image.astype(np.float32) / 255
    return ink_map(grey)


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] → ink in [0, 1] relative to the paper: the most common level (the median: a digit
    covers a small part of its picture) is the paper, whether white, beige or black; ink is how far a pixel is
    from it (MNIST digits are light on dark, so dark-on-light pictures come out inverted). The paper's own
    spread (grain, JPEG noise, uneven light in a photo) is measured as the 75th percentile of that distance and
    twice it is taken off, so a photo's paper is not read as faint ink."""
    paper = float(np.median(grey))
    ink = paper - grey if paper > 0.5 else grey - paper
    ink = np.clip(ink / max(float(ink.max()), 1e-6), 0, 1)
    floor = 2 * float(np.percentile(ink, 75))
    return np.clip((ink - floor) / (1 - floor), 0, 1) if 0.04 < floor < 0.5 else ink


def mnist_like(image: np.ndarray) -> torch.Tensor:
    """Crop to the ink, scale the longer side to 20 px, centre by mass in 28x28 (as MNIST was made)."""
    if image is None or not hasattr(image, "ndim") or image.ndim not in (2, 3) or image.size == 0:
        raise HubModelsError("no image: draw a digit or upload a picture")
    if image.shape[0] * image.shape[1] > MAX_UPLOAD_PIXELS:
        raise HubModelsError("the picture is too large: upload one under 16 megapixels")
    ink = to_grey(image)
    ink = np.where(ink > 0.1 * max(ink.max(), 1e-6), ink, 0)
    if ink.max() < 0.05:
        raise HubModelsError("the canvas is empty: draw a digit first")
    ys, xs = np.nonzero(ink)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = 20 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS), np.float32) / 255
    out = np.zeros((28, 28), np.float32)
    top, left = (28 - small.shape[0]) // 2, (28 - small.shape[1]) // 2
    out[top : top + small.shape[0], left : left + small.shape[1]] = small
    total = out.sum()
    cy, cx = (np.arange(28) @ out.sum(1)) / total, (np.arange(28) @ out.sum(0)) / total
    out = np.roll(out, (round(13.5 - cy), round(13.5 - cx)), axis=(0, 1))
    return torch.from_numpy(out.clip(0, 1))[None, None]
