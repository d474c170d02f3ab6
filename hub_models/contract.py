"""The plugin contract: what a model must provide to live in hub-models.

A plugin is a subclass of :class:`GenerativeModel` registered under the entry-point group
``hub_models.models`` (name = model id). It declares, as class attributes, what the CLI, the demo and the
card writer need, so none of them has per-model code (the declarations ``Input``, ``Metric``, ``CardInfo`` and
``TrainingSetup`` are defined in :mod:`hub_models.spec`; a third-party plugin imports all of them, and
``GenerativeModel``, from ``hub_models``):

- ``model_id``, ``Config`` (a dataclass: architecture and optimiser hyper-parameters, all with defaults),
  ``output`` ("image" or "points"), ``inputs`` (extra ``generate`` arguments, e.g. a digit label),
  ``metrics`` (what ``evaluate`` returns and its protocol), ``card`` (summary, data sets, licence, tags),
  ``train_defaults`` (engine settings for its recipe) and ``dataset`` (the data set ``train`` reads; a plugin
  whose ``Config`` has a ``dataset`` field, a choice per run, declares it there only: see ``dataset_for``);

and implements

- ``build(config) -> nn.Module``: the network saved to ``model.safetensors`` (generator or decoder only);
- ``sample_latents(n, generator, **inputs)``: the random inputs, drawn on the CPU from ``generator`` so a
  seed gives the same output on every device;
- ``decode(latents, **inputs)``: latents → images in [0, 1] (N×C×H×W) or points (N×2);
- ``load_data(root, split)``: the data set as in-memory tensors (``{"images": uint8 N×C×H×W, ...}``);
- ``setup_training(device)`` and ``train_step(setup, batch)``: the loss step (the shared engine in
  :mod:`hub_models.engine` owns the loop, checkpoints, logging, devices and DDP);
- ``evaluate(...)``: the model's metrics as a dict of numbers (per-class tables as dicts of numbers); the words
  around them (protocol, the command's ``--data``) are in the declared ``metrics`` (optional: the default reports none).

``train()`` and ``generate()`` are provided here on top of those hooks. Weights go to and come from the
Hugging Face Hub through ``huggingface_hub.ModelHubMixin`` (``save_pretrained``, ``push_to_hub``,
``from_pretrained``), loaded strictly by :mod:`hub_models.weights`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from huggingface_hub import ModelHubMixin
from torch import nn

from .errors import HubModelsError
from .spec import CardInfo, Input, Metric, TrainingSetup, check_count, config_from_dict, make_generator, move_to

if TYPE_CHECKING:
    from PIL import Image


class GenerativeModel(ModelHubMixin, library_name="hub-models", tags=["hub-models"]):
    """Base class of every plugin. See the module docstring for the contract."""

    model_id: ClassVar[str]
    Config: ClassVar[type]
    output: ClassVar[Literal["image", "points"]] = "image"
    inputs: ClassVar[tuple[Input, ...]] = ()
    metrics: ClassVar[tuple[Metric, ...]] = ()
    card: ClassVar[CardInfo]
    dataset: ClassVar[str] = ""  # the data set ``load_data`` reads, e.g. "celeba64" (unless Config has ``dataset``)
    train_defaults: ClassVar[dict[str, Any]] = {}
    # The published weights: Hub repo "org/name" (None: "<$HUB_MODELS_ORG or hub-models>/<model_id>") and the
    # revision this version of the plugin loads (None: the tag "v<version of its distribution>"); see weights.py.
    hub_repo: ClassVar[str | None] = None
    hub_revision: ClassVar[str | None] = None
    # The metric that picks the best export of a run that evaluates itself (eval_every) and draws its curve on the
    # card; None: the first declared metric that is a result (not a reference number).
    primary_metric: ClassVar[str | None] = None

    # Capabilities beyond generate(), declared so the CLI and the demo never probe with hasattr:
    conditioning: ClassVar[str | None] = None  # the declared input that picks the class, e.g. "label"
    supports_interpolation: ClassVar[bool] = False  # interpolate(seed_a, seed_b, steps, **inputs) is implemented
    supports_reconstruction: ClassVar[bool] = False  # reconstruct(images) is implemented (encoder-decoder models)
    # dtypes besides float32 whose samples were checked: hub_models.inference may run the network in them
    reduced_precision: ClassVar[tuple[torch.dtype, ...]] = ()

    # ------------------------------------------------------------------ construction
    def __init__(self, config: Any = None) -> None:
        self.config_from_defaults = config is None  # train() then trains the recipe's [config]
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
        self.training_curve: list[dict[str, Any]] = []  # evaluations during training (curve.jsonl), if any

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
        return self.decode_latents(self.sample_latents(n, generator, **inputs), **inputs)

    def decode_latents(self, latents: Any, **inputs: Any) -> torch.Tensor:
        """``generate``'s second half: ``sample_latents``' output (any part of it) decoded, with parsed
        ``inputs``, as float samples on the CPU."""
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

    def train(
        self, out_dir: str | Path, *, data: str | Path | None = None, recipe: str | Path | None = None, **settings: Any
    ) -> Path:
        """Train with the shared engine; returns the exported Hub-layout model directory.

        The run is the model's recipe (``recipe``, else the one its package ships: ``hub-models recipe MODEL``,
        else ``train_defaults``) with ``settings`` (:class:`hub_models.engine.TrainSettings` fields: epochs, steps,
        batch_size, seed, device, resume, dry_run, eval_every, ...) over its [train] table. A model built without a
        config trains the recipe's [config]; one built with a config keeps it. The run starts from an
        initialisation drawn from ``seed`` (the networks are rebuilt), so the same settings give the same weights
        here and through ``hub-models train``.
        """
        from .engine import fit, resolve_training

        own = None if self.config_from_defaults else self.config
        config, resolved, source = resolve_training(
            type(self), Path(recipe) if recipe else None, config=own, settings=settings
        )
        self.config = config
        return fit(self, resolved, Path(out_dir), data_root=data, recipe=source)

    @classmethod
    def dataset_for(cls, config: Any = None) -> str:
        """The data set a model with ``config`` (default: the Config's defaults) trains and is evaluated on: the
        config's ``dataset`` field when the Config has one (e.g. "fashion-mnist"), else the declared ``dataset``."""
        config = cls.Config() if config is None else config
        return getattr(config, "dataset", "") or cls.dataset

    def card_info(self) -> CardInfo:
        """The card metadata of this model: the declared ``card``; a plugin whose config picks the data set
        overrides this so that the card names the data set it was trained on."""
        return self.card

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self, data_root: str | Path | None = None, num_samples: int | None = None, seed: int = 0
    ) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ Hub I/O (ModelHubMixin)
    # ``push_to_hub`` and ``from_pretrained`` are huggingface_hub's own; ``save_pretrained`` writes the Hub layout
    # with hub-models' writers (the card included, so one function writes every card), and ``_from_pretrained`` is
    # the strict load (with the download arguments forwarded).
    def save_pretrained(
        self,
        save_directory: str | Path,
        *,
        config: Any = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        **push_to_hub_kwargs: Any,
    ) -> str | None:
        """config.json, model.safetensors, sample.png, the evaluation results and the card (``model_card_kwargs``:
        ``push_to_hub`` passes the target ``repo_id``), written into a temporary directory that replaces
        ``save_directory`` in one rename: a failure half-way (a full disk, a card that cannot be built) leaves the
        previous checkpoint as it was. ``config`` is not used: config.json always describes this model.
        ``push_to_hub=True`` then pushes as huggingface_hub's ``save_pretrained`` does."""
        from .utils import atomic_path
        from .weights import write_model_files

        with atomic_path(save_directory) as tmp:
            write_model_files(self, tmp, **(model_card_kwargs or {}))
        if push_to_hub:
            repo_id = repo_id or Path(save_directory).name
            return self.push_to_hub(repo_id, model_card_kwargs=model_card_kwargs, **push_to_hub_kwargs)
        return None

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> GenerativeModel:
        """huggingface_hub's ``from_pretrained`` (a local directory or a Hub repo id, the same download arguments),
        going straight to the strict load: whatever fails (an unreachable Hub, a cache miss offline, a bad file)
        is the one-line :class:`~hub_models.errors.WeightsError` that ``hub_models.load`` raises, not the
        mixin's own errors about its first download of config.json."""
        return cls._from_pretrained(
            model_id=str(pretrained_model_name_or_path),
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
            **model_kwargs,
        )

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
        """The model card as a huggingface_hub ``ModelCard`` (what :func:`hub_models.weights.write_card` saves)."""
        from .card import build_card

        return build_card(self, repo_id=repo_id, recipe=recipe)
