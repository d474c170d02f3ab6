"""The plugin contract's declarations and the plain helpers every layer shares.

``Input``, ``Metric``, ``CardInfo`` and ``TrainingSetup`` are what a plugin declares or returns; the helpers check
seeds and counts, make the latents' generator, move tensors and (de)serialise config dataclasses strictly. They
live below :mod:`hub_models.contract` (the ``GenerativeModel`` base class) because the engine, the weights code and
the metrics use them while the base class calls those layers. Plugins in this package import them from here;
third-party plugins from ``hub_models``, the package's public API.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from .errors import HubModelsError
from .images import CURVE_SCALES

MAX_SAMPLES = 10_000  # one generate() call; larger jobs loop over calls
MAX_SEED = 2**32 - 1  # one seed range for the API, the CLI, the demo and the metrics (exact in JSON/JavaScript too)


@dataclass(frozen=True)
class Input:
    """An extra argument of ``generate`` (besides ``n`` and ``seed``), declared for forms and the CLI."""

    name: str
    kind: Literal["int", "float", "choice"]
    default: Any
    label: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def parse(self, value: Any) -> Any:
        """Convert and check a user-supplied value; raise :class:`HubModelsError` when it is invalid."""
        if value is None:
            return self.default
        try:
            if self.kind == "choice":
                value = str(value)
                if value not in self.choices:
                    raise ValueError
                return value
            value = int(value) if self.kind == "int" else float(value)
        except (TypeError, ValueError):
            allowed = ", ".join(self.choices) if self.kind == "choice" else f"a {self.kind}"
            raise HubModelsError(f"invalid {self.name} {value!r}: expected {allowed}") from None
        lo = -float("inf") if self.minimum is None else self.minimum
        hi = float("inf") if self.maximum is None else self.maximum
        if not lo <= value <= hi:
            raise HubModelsError(f"{self.name} must be between {self.minimum} and {self.maximum}, got {value}")
        return value


@dataclass(frozen=True)
class Metric:
    """One number ``evaluate`` reports, with what the card needs to state it honestly.

    ``evaluate`` returns numbers only (or per-class tables of numbers); the words around them live here: the
    ``protocol`` text, and ``data``, the ``--data`` argument of the command that measures it when the protocol reads
    a data set that is not found or downloaded by itself (the card writes the command from these declarations).
    """

    key: str
    name: str
    protocol: str
    higher_is_better: bool = False
    goal: float | None = None
    reference: bool = False  # a number about the data (e.g. real vs real), shown for scale, never a model result
    data: str = ""  # e.g. "CELEBA64_DIR": the card's eval command passes ``--data CELEBA64_DIR``
    scale: Literal["linear", "nines"] = "linear"  # its training curve's y axis ("nines": a share that climbs to 1)

    def __post_init__(self) -> None:
        if self.scale not in CURVE_SCALES:
            raise ValueError(f"Metric {self.key!r}: scale must be 'linear' or 'nines', not {self.scale!r}")

    def meets_goal(self, value: float) -> bool:
        if self.goal is None:
            return True
        return value >= self.goal if self.higher_is_better else value <= self.goal


@dataclass(frozen=True)
class CardInfo:
    """Model-card metadata: everything the card writer needs that is not a measured number."""

    summary: str
    datasets: tuple[str, ...] = ()  # Hub dataset ids, e.g. "ylecun/mnist"
    license: str = "mit"  # of the weights; "other" needs license_name and license_link
    license_name: str | None = None
    license_link: str | None = None
    tags: tuple[str, ...] = ()
    pipeline_tag: str = "unconditional-image-generation"
    source: str = ""  # the tutorial or paper the architecture follows
    notes: str = ""  # how it was trained: what changed from the source, the recipe, the training curve
    limits: str = ""  # what it cannot do, goals not met, data terms
    template: str = ""  # a card body of another kind (the fields of card.TEMPLATE); "" = a generative model's


@dataclass
class TrainingSetup:
    """What ``setup_training`` returns: every trained module and its optimiser, by name.

    The engine checkpoints all of them and may wrap ``nets`` in DistributedDataParallel, so
    ``train_step`` must go through ``setup.nets[...]`` rather than through attributes of the plugin.
    """

    nets: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. loss modules, EMA copies


def check_seed(seed: Any, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise HubModelsError(f"{name} must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def make_generator(seed: int | None = None, generator: torch.Generator | None = None) -> torch.Generator:
    """The CPU generator latents are drawn from: ``generator`` itself, one seeded with ``seed``, or a random one."""
    if generator is not None:
        if seed is not None:
            raise HubModelsError("pass either seed or generator, not both")
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise HubModelsError(
                "generator must be a CPU torch.Generator (latents are drawn on the CPU so that a seed gives the "
                "same samples on every device)"
            )
        return generator
    if seed is None:
        fresh = torch.Generator()
        fresh.seed()  # non-deterministic, as diffusers does without a generator
        return fresh
    return torch.Generator().manual_seed(check_seed(seed))


def check_steps(steps: Any, maximum: int = 64) -> int:
    """The number of frames of an interpolation."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= maximum:
        raise HubModelsError(f"steps must be an integer from 2 to {maximum}, got {steps!r}")
    return steps


def check_count(n: Any, maximum: int = MAX_SAMPLES) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= maximum:
        raise HubModelsError(f"number of samples must be an integer from 1 to {maximum}, got {n!r}")
    return n


def move_to(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, tuple | list):
        return type(obj)(move_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    return obj


def config_from_dict(cls: type, data: Any, what: str) -> Any:
    """Build dataclass ``cls`` from ``data`` strictly: unknown or missing keys are errors."""
    if not isinstance(data, dict):
        raise HubModelsError(f"{what} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise HubModelsError(f"{what} has unknown keys {unknown}; known keys: {sorted(fields)}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise HubModelsError(f"{what} is invalid: {exc}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def is_measurement(value: Any) -> bool:
    """A value ``evaluate`` may return: a number, or a per-class table (a dict) of numbers."""
    if isinstance(value, dict):
        return all(is_measurement(v) and not isinstance(v, dict) for v in value.values())
    return isinstance(value, int | float) and not isinstance(value, bool)


def primary_metric(model: Any) -> Metric | None:
    """The metric that picks a run's best export and draws its curve: the model's ``primary_metric`` key, else
    its first declared metric that is a result (not a reference number about the data)."""
    declared = [m for m in getattr(model, "metrics", ()) if not m.reference]
    key = getattr(model, "primary_metric", None)
    chosen = [m for m in declared if m.key == key] if key else declared
    return chosen[0] if chosen else None


def curve_picture(rows: list[dict[str, Any]], metric: Metric | None, title: str) -> Any:
    """``metric`` over the optimiser steps of a training curve's ``rows`` (curve.jsonl), as a PIL picture with
    labelled axes; None when the rows hold no value of it."""
    from .images import drawn_scale, render_curve

    if metric is None:
        return None
    points = [(row["step"], row[metric.key]) for row in rows if is_measurement(row.get(metric.key))]
    points = [(step, value) for step, value in points if not isinstance(value, dict)]
    if not points:
        return None
    better = "higher" if metric.higher_is_better else "lower"
    values = [p[1] for p in points]
    best = values.index(max(values) if metric.higher_is_better else min(values))  # ties: the earliest, as a run
    counts = {row["num_samples"] for row in rows if isinstance(row.get("num_samples"), int)}
    samples = f"{counts.pop():,} samples a point; " if len(counts) == 1 else ""
    axis = "; axis: 0.9, 0.99, 0.999 equally spaced" if drawn_scale(values, metric.scale) == "nines" else ""
    return render_curve(
        [p[0] for p in points],
        values,
        x_label="optimiser step",
        y_label=metric.name,
        title=f"{title}: {metric.name} during training\n{samples}{better} is better; ringed: the best{axis}",
        best=best,
        scale=metric.scale,
    )
