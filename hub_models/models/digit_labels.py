"""The digit-label input shared by the conditional digit models (``cgan-digits``, ``cgan-digits-mlp``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import HubModelsError
from ..spec import Input

NUM_CLASSES = 10
LABEL_INPUT = Input(
    "label",
    "choice",
    "all",
    label="digit",
    choices=("all", *map(str, range(NUM_CLASSES))),
    help="a digit 0-9, or 'all' for every digit (one row each when the count is a multiple of 10)",
)


def parse_label(value: Any) -> Any:
    """'all', a digit (str or int) or a sequence of digits (Python API) → 'all' / list[int]."""
    if value is None or value == "all":
        return "all"
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, str) and "," in value:
        value = [v.strip() for v in value.split(",") if v.strip()]
    items = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    digits = []
    for item in items:
        try:
            digit = item if isinstance(item, int) and not isinstance(item, bool) else int(str(item).strip())
        except ValueError:
            raise HubModelsError(f"invalid label {item!r}: use a digit 0-9, a list of digits, or 'all'") from None
        if not 0 <= digit < NUM_CLASSES:
            raise HubModelsError(f"label {item!r} is out of range: digits are 0-9 (or 'all')")
        digits.append(digit)
    if not digits:
        raise HubModelsError("empty label list: give at least one digit 0-9")
    return digits


def labels_for(n: int, label: Any) -> torch.Tensor:
    """n labels: 'all' → every digit, n/10 of each in order (one grid row per digit) when n is a multiple of 10,
    else 0-9 cycled (one grid column per digit: 16 draws 0-9 then 0-5, never dropping 8 and 9); a list is cycled."""
    if label == "all" and n % NUM_CLASSES == 0:
        return torch.arange(NUM_CLASSES).repeat_interleave(n // NUM_CLASSES)
    digits = torch.arange(NUM_CLASSES) if label == "all" else torch.tensor(label, dtype=torch.long)
    return digits.repeat(math.ceil(n / len(digits)))[:n]


def grid_nrow(n: int, label: Any) -> int | None:
    if label != "all":
        return None
    return n // NUM_CLASSES if n % NUM_CLASSES == 0 else min(n, NUM_CLASSES)


class DigitLabelsMixin:
    """parse_inputs/grid_nrow for plugins whose only input is ``label`` (accepts lists via the Python API)."""

    inputs = (LABEL_INPUT,)
    conditioning = "label"  # class-conditional: the demo's class picker offers these models (see the contract)

    def parse_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(inputs) - {"label"})
        if unknown:
            raise HubModelsError(f"{self.model_id} does not take {', '.join(unknown)} (its inputs: label)")
        return {"label": parse_label(inputs.get("label"))}

    def grid_nrow(self, n: int, **inputs: Any) -> int | None:
        return grid_nrow(n, inputs.get("label", "all"))
