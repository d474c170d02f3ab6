"""The demo's checks of what a visitor sends, and its one-line messages: which models a tab offers, the limits
of counts and steps, numbers and pictures checked before any work, and errors turned into toasts (``gr.Error``
that prints no traceback: a visitor's mistake is not the app's bug)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from ..errors import HubModelsError
from ..registry import get_model_class, list_models
from .preprocess import MAX_UPLOAD_PIXELS

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


def check_every_class(model_id: str, inputs: dict[str, Any], count: int) -> None:
    """A conditional model asked for every class ("all") must draw at least one of each: 5 "all digits" would
    silently leave out 5 to 9."""
    cls = get_model_class(model_id)
    if cls.conditioning is None or str(inputs.get(cls.conditioning, "")) != "all":
        return
    classes = [c for c in class_choices(model_id) if c != "all"]
    if count < len(classes):
        raise HubModelsError(
            f"'all' draws one of each of the {len(classes)} classes: choose a count of at least {len(classes)}, "
            "or pick one class"
        )


def vae_id() -> str:
    """The model of the reconstruction tab: vae-digits when installed, else the first that declares it."""
    found = tab_models("reconstruction")
    if not found:
        raise HubModelsError("no installed model declares reconstruction")
    return "vae-digits" if "vae-digits" in found else found[0]


MAX_UPLOAD_BYTES = 10 * 2**20
# The limits of the counts and steps the demo takes (lowest, highest, the page's default): the tabs' sliders and
# the handlers' checks both read them here. Model inputs (ψ, a digit) come from the models' declarations.
LIMITS = {
    "faces_count": (1, 64, 16),
    "interpolation_steps": (2, 32, 8),
    "digits_count": (1, 100, 100),
    "vae_count": (1, 100, 64),
    "walk_steps": (2, 20, 10),
    "toy_steps": (10, 5000, 1000),
    "all_count": (1, 100, 16),
}


def limited(value: Any, name: str, limit: str) -> int:
    """A whole number within ``LIMITS[limit]``."""
    lo, hi, _ = LIMITS[limit]
    return whole(value, name, lo, hi)


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


QUOTE_LIMIT = 100  # characters of a visitor's value that a message repeats (a 1 MB model name is not echoed)


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages that name what the visitor sent."""
    text = repr(value) if not isinstance(value, str) or len(value) <= 4 * limit else repr(value[: 4 * limit])
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        raise HubModelsError(f"{name} must be a whole number from {lo} to {hi}, got {quote(value)}")
    return int(number)


def number(value: Any, name: str, lo: float, hi: float) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise HubModelsError(f"{name} must be a number from {lo:g} to {hi:g}") from None
    if not lo <= result <= hi:
        raise HubModelsError(f"{name} must be a number from {lo:g} to {hi:g}, got {quote(value)}")
    return result


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
