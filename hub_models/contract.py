"""The plugin contract: what a model must provide to live in hub-models.

A plugin is a subclass of :class:`GenerativeModel` registered under the entry-point group
``hub_models.models`` (name = model id). It declares, as class attributes, what the CLI, the demo and the
card writer need, so none of them has per-model code:

- ``model_id``, ``Config`` (a dataclass: architecture and optimiser hyper-parameters, all with defaults),
  ``output`` ("image" or "points"), ``inputs`` (extra ``generate`` arguments, e.g. a digit label),
  ``metrics`` (what ``evaluate`` returns and its protocol), ``card`` (summary, data sets, licence, tags),
  ``train_defaults`` (engine settings for its recipe) and ``dataset`` (the data set ``train`` reads);

and implements

- ``build(config) -> nn.Module``: the network saved to ``model.safetensors`` (generator or decoder only);
- ``sample_latents(n, generator, **inputs)``: the random inputs, drawn on the CPU from ``generator`` so a
  seed gives the same output on every device;
- ``decode(latents, **inputs)``: latents → images in [0, 1] (N×C×H×W) or points (N×2);
- ``load_data(root, split)``: the data set as in-memory tensors (``{"images": uint8 N×C×H×W, ...}``);
- ``setup_training(device)`` and ``train_step(setup, batch)``: the loss step (the shared engine in
  :mod:`hub_models.engine` owns the loop, checkpoints, logging, devices and DDP);
- ``evaluate(...)``: the model's metrics as a dict (optional: the default reports none).

``train()`` and ``generate()`` are provided here on top of those hooks. Weights go to and come from the
Hugging Face Hub through ``huggingface_hub.ModelHubMixin`` (``save_pretrained``, ``push_to_hub``,
``from_pretrained``), loaded strictly by :mod:`hub_models.weights`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from huggingface_hub import ModelHubMixin
from torch import nn

from .errors import HubModelsError

if TYPE_CHECKING:
    from PIL import Image

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
    """One number ``evaluate`` reports, with what the card needs to state it honestly."""

    key: str
    name: str
    protocol: str
    higher_is_better: bool = False
    goal: float | None = None
    reference: bool = False  # a number about the data (e.g. real vs real), shown for scale, never a model result

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
    notes: str = ""  # data terms, known limitations, what changed from the source


@dataclass
class TrainingSetup:
    """What ``setup_training`` returns: every trained module and its optimiser, by name.

    The engine checkpoints all of them and may wrap ``nets`` in DistributedDataParallel, so
    ``train_step`` must go through ``setup.nets[...]`` rather than through attributes of the plugin.
    """

    nets: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. loss modules, EMA copies


class GenerativeModel(ModelHubMixin, library_name="hub-models", tags=["hub-models"]):
    """Base class of every plugin. See the module docstring for the contract."""

    model_id: ClassVar[str]
    Config: ClassVar[type]
    output: ClassVar[Literal["image", "points"]] = "image"
    inputs: ClassVar[tuple[Input, ...]] = ()
    metrics: ClassVar[tuple[Metric, ...]] = ()
    card: ClassVar[CardInfo]
    dataset: ClassVar[str] = ""  # name of the data set ``load_data`` reads, e.g. "mnist"
    train_defaults: ClassVar[dict[str, Any]] = {}
    # The published weights: Hub repo "org/name" (None: "<$HUB_MODELS_ORG or hub-models>/<model_id>") and the
    # revision this version of the plugin loads (None: the tag "v<version of its distribution>"); see weights.py.
    hub_repo: ClassVar[str | None] = None
    hub_revision: ClassVar[str | None] = None

    # Capabilities beyond generate(), declared so the CLI and the demo never probe with hasattr:
    conditioning: ClassVar[str | None] = None  # the declared input that picks the class, e.g. "label"
    supports_interpolation: ClassVar[bool] = False  # interpolate(seed_a, seed_b, steps, **inputs) is implemented
    supports_reconstruction: ClassVar[bool] = False  # reconstruct(images) is implemented (encoder-decoder models)
    reduced_precision: ClassVar[tuple[torch.dtype, ...]] = ()  # dtypes besides float32 that decode() can run in
    inference_dtype: torch.dtype = torch.float32  # set to one of reduced_precision for faster, approximate samples

    # ------------------------------------------------------------------ construction
    def __init__(self, config: Any = None) -> None:
        if config is None:
            config = self.Config()
        elif isinstance(config, dict):
            config = config_from_dict(self.Config, config, what=f"{self.model_id} config")
        self.config = config
        self.net: nn.Module = self.build(config)
        self.net.eval()
        self.device = torch.device("cpu")
        self.provenance: dict[str, Any] = {}
        self.metric_values: dict[str, Any] = {}
        self.weights_dir: Path | None = None  # set when loaded from disk

    def build(self, config: Any) -> nn.Module:
        raise NotImplementedError

    def to(self, device: str | torch.device | None) -> GenerativeModel:
        from .utils import resolve_device

        self.device = resolve_device(device)
        self.net.to(self.device)
        return self

    # ------------------------------------------------------------------ generation
    def sample_latents(self, n: int, generator: torch.Generator, **inputs: Any) -> Any:
        raise NotImplementedError

    def decode(self, latents: Any, **inputs: Any) -> torch.Tensor:
        raise NotImplementedError

    def parse_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check ``generate`` keyword arguments against the declared ``inputs``."""
        known = {spec.name: spec for spec in self.inputs}
        unknown = sorted(set(inputs) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise HubModelsError(f"{self.model_id} does not take {', '.join(unknown)} (its inputs: {allowed})")
        return {name: spec.parse(inputs.get(name)) for name, spec in known.items()}

    def generate(
        self, n: int = 16, seed: int | None = None, generator: torch.Generator | None = None, **inputs: Any
    ) -> torch.Tensor:
        """``n`` samples on the CPU: images as float N×C×H×W in [0, 1], points as float N×2.

        As in diffusers: pass ``seed`` (an integer in [0, MAX_SEED]) or a CPU ``torch.Generator`` (which the
        call advances, so successive calls continue one random stream) for reproducible samples; with neither
        the samples are random. Latents are drawn on the CPU, so a seed gives the same samples on CPU and GPU
        (up to floating-point rounding of the network itself).
        """
        n = check_count(n)
        generator = make_generator(seed, generator)
        inputs = self.parse_inputs(inputs)
        latents = self.sample_latents(n, generator, **inputs)
        with torch.inference_mode():
            out = self.decode(move_to(latents, self.device), **inputs)
        return out.float().cpu()

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, **inputs: Any) -> torch.Tensor:
        """Samples along a path between the latents of two seeds (``supports_interpolation`` models)."""
        raise HubModelsError(f"{self.model_id} does not support interpolation")

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Encode and decode ``images`` (``supports_reconstruction`` models)."""
        raise HubModelsError(f"{self.model_id} does not support reconstruction")

    def render(self, samples: torch.Tensor, nrow: int | None = None) -> Image.Image:
        """A picture of ``generate``'s output: an image grid, or a scatter plot for points."""
        from .images import render_grid, render_points

        if self.output == "points":
            return render_points(samples, reference=self.reference_points())
        return render_grid(samples, nrow=nrow)

    def grid_nrow(self, n: int, **inputs: Any) -> int | None:
        """Images per row when ``n`` samples made with ``inputs`` are drawn as a grid (None: square)."""
        return None

    def reference_points(self) -> torch.Tensor | None:
        """For 2-D models: samples of the target drawn behind generated points."""
        return None

    # ------------------------------------------------------------------ training hooks
    def load_data(self, root: Path | None, split: str = "train") -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def setup_training(self, device: torch.device) -> TrainingSetup:
        raise NotImplementedError

    def train_step(self, setup: TrainingSetup, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def extra_state(self, setup: TrainingSetup) -> dict[str, Any]:
        """Training state beyond nets and optimisers that a checkpoint must hold (tensors or JSON values)."""
        return {}

    def load_extra_state(self, setup: TrainingSetup, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def fixed_latents(self, n: int, generator: torch.Generator) -> Any:
        """The fixed inputs of the per-epoch sample grid (stored in the checkpoint)."""
        return self.sample_latents(n, generator, **self.parse_inputs({}))

    def train(self, out_dir: str | Path, *, data: str | Path | None = None, **settings: Any) -> Path:
        """Train with the shared engine; returns the exported Hub-layout model directory.

        The run starts from an initialisation drawn from ``seed`` (the networks are rebuilt), so the same
        settings give the same weights here and through ``hub-models train``.

        ``settings`` are :class:`hub_models.engine.TrainSettings` fields (epochs, steps, batch_size, seed,
        device, resume, dry_run, ...); unspecified ones come from ``train_defaults``.
        """
        from .engine import TrainSettings, fit

        merged = {**self.train_defaults, **{k: v for k, v in settings.items() if v is not None}}
        return fit(self, TrainSettings.from_dict(merged), Path(out_dir), data_root=data)

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self, data_root: str | Path | None = None, num_samples: int | None = None, seed: int = 0
    ) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ Hub I/O (ModelHubMixin hooks)
    # ``push_to_hub`` and ``from_pretrained`` are huggingface_hub's own, and ``save_pretrained`` is too (only made
    # atomic); these hooks are the hub-models part: the files written, the card, and the strict load (with the
    # download arguments forwarded).
    def _save_pretrained(self, save_directory: Path) -> None:
        from .weights import write_model_files

        write_model_files(self, Path(save_directory))

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> str | None:
        """huggingface_hub's own ``save_pretrained`` (config, card with ``model_card_kwargs``, ``push_to_hub``),
        run into a temporary directory that replaces ``save_directory`` in one rename: a failure half-way (a
        full disk, a card that cannot be built) leaves the previous checkpoint as it was."""
        from .utils import atomic_path

        if kwargs.get("push_to_hub"):  # nothing is replaced locally that the push could leave half-written
            return super().save_pretrained(save_directory, **kwargs)
        with atomic_path(save_directory) as tmp:
            return super().save_pretrained(tmp, **kwargs)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        device: str | torch.device | None = None,
        map_location: str | torch.device | None = None,
        **model_kwargs: Any,  # `config` (config.json as read by the mixin): re-read strictly below
    ) -> GenerativeModel:
        from .weights import HubOptions, load_weights

        hub = HubOptions(revision, token, cache_dir, force_download, local_files_only)
        return load_weights(cls, model_id, device=device or map_location, hub=hub)

    def generate_model_card(self, repo_id: str | None = None, recipe: bool | None = None, **kwargs: Any):
        """The model card (``push_to_hub`` passes the target ``repo_id`` through ``model_card_kwargs``)."""
        from .card import build_card

        return build_card(self, repo_id=repo_id, recipe=recipe)


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
