"""The step API of the engine: one training run of a plugin, in memory.

:class:`Trainer` owns everything that decides the numbers of a run — seeding (the initialisation included),
batching, the optimisers' learning-rate schedule, bfloat16 autocast, the exponential moving average of G and
the step counter — and one state dict that holds all of it. :func:`hub_models.engine.fit` drives it with
checkpoints, logs and the export; the demo's live training drives the same object with no disk at all, so
there is one training loop in the project.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, StepLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..errors import HubModelsError
from ..matmul_convs import use_matmul_convs
from ..spec import TrainingSetup, config_to_dict
from ..utils import resolve_device
from .batchnorm import recalibrate_batchnorm
from .checkpoint import load_optimizer_state, rng_state, set_rng_state
from .distributed import DistContext
from .plan import batches_per_epoch, data_fingerprint, epoch_order, lr_factor
from .settings import TrainSettings


class Trainable(Protocol):
    """What the engine trains: the trainable part of the plugin contract. Every ``GenerativeModel`` has it, and so
    does the MNIST classifier of the digit metrics (``fixed_latents`` None: it draws no per-epoch grid). ``fit``
    also sets ``provenance`` and calls ``save_pretrained`` to export."""

    model_id: str
    config: Any
    net: torch.nn.Module
    provenance: dict[str, Any]
    metric_values: dict[str, Any]
    training_curve: list[dict[str, Any]]
    metrics: tuple[Any, ...]

    def build(self, config: Any) -> torch.nn.Module: ...
    def dataset_for(self, config: Any = None) -> str: ...
    def to(self, device: str | torch.device | None) -> Any: ...
    def load_data(self, root: Path | None, split: str = "train") -> dict[str, torch.Tensor]: ...
    def setup_training(self, device: torch.device) -> TrainingSetup: ...
    def train_step(self, setup: TrainingSetup, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...
    def fixed_latents(self, n: int, generator: torch.Generator) -> Any: ...
    def extra_state(self, setup: TrainingSetup) -> dict[str, Any]: ...
    def load_extra_state(self, setup: TrainingSetup, state: dict[str, Any]) -> None: ...
    def save_pretrained(self, save_directory: str | Path) -> Any: ...
    def evaluate(self, data_root: Any = None, num_samples: int | None = None, seed: int = 0) -> dict[str, Any]: ...


# What a checkpoint must hold to be resumed (``state_dict`` writes these and, when used, "ema" and "extra").
STATE_KEYS = (
    "model_id",
    "world_size",
    "config",
    "settings",
    "data_fingerprint",
    "step",
    "fixed",
    "loss_sums",
    "rng",
    "nets",
    "optimizers",
    "schedulers",
)
# Settings a resumed run must share with its checkpoint: they change the numbers already computed. The others
# either do not change the maths (device, threads, channels_last, compile, logging, checkpoint_every) or follow
# a documented rule in ``Trainer.check_resumable`` (any new plan whose lr is the same over the steps already
# taken: a longer or shorter run at constant lr, a later decay start; a later EMA start).
INVOCATION_ONLY = ("resume", "progress")  # how this process was started, not what the run is
SAME_ON_RESUME = (
    "seed",
    "batch_size",
    "data_limit",
    "amp",
    "sample_count",
    "dry_run",
    "dry_run_steps",
)


def autocast_for(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for one training step (tensor cores on CUDA, AVX512-BF16/AMX on CPUs that have them).

    Its cache of bfloat16 weight copies is off: a GAN step updates D in place between D's forwards (the D step,
    then the G step), and a copy cached at the first forward would give the G step the D of before its update.
    """
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


class Trainer:
    """One run of ``model``'s loss step over ``data`` with ``settings``.

    Creating it seeds torch with ``settings.seed`` and builds the networks afresh, so a run depends only on its
    settings, config and data: ``cls().train(...)`` from Python and ``hub-models train`` give the same weights.
    Iterate :meth:`run` to train; :meth:`state_dict` / :meth:`load_state_dict` hold everything to resume bit for bit.
    Plugins draw their noise from torch's global RNG, so the RNG is process-wide: take a state before creating
    another Trainer in the same process, and expect interleaved runs to be valid but not reproducible.
    """

    def __init__(
        self,
        model: Trainable,
        settings: TrainSettings,
        data: dict[str, torch.Tensor],
        device: torch.device | None = None,
        ctx: DistContext | None = None,
    ) -> None:
        # long because a run's set-up is one ordered story (seeded init, nets, memory format, autocast, compile,
        # DDP, EMA, data, schedules, fixed noise): split up, the order that makes it reproducible would be hidden
        self.model, self.settings = model, settings
        self.device = device or resolve_device(settings.device)
        self.ctx = ctx or DistContext()

        # The initialisation is part of the run: G is rebuilt from the seed, then D and the optimisers.
        torch.manual_seed(settings.seed)
        model.net = model.build(model.config)
        model.net.eval()
        torch.manual_seed(settings.seed)
        model.to(self.device)
        self.setup = model.setup_training(self.device)
        self.raw_nets = dict(self.setup.nets)  # unwrapped modules: these are checkpointed
        for net in self.raw_nets.values():
            use_matmul_convs(net)  # exact: convolutions as matrix products where oneDNN is slow (1x1 / 4x4 maps)
            if settings.channels_last:
                net.to(memory_format=torch.channels_last)

        n = len(next(iter(data.values())))
        limit = settings.data_limit
        if settings.dry_run:
            limit = min(limit or n, settings.batch_size * self.ctx.world_size * settings.dry_run_steps)
        if limit:
            data = {k: v[:limit] for k, v in data.items()}
            n = min(n, limit)
        self.n = n
        self.data_fingerprint = data_fingerprint(data)
        self.data = {k: v.to(self.device) for k, v in data.items()}  # uint8 on the device, indexed there
        self.per_epoch = batches_per_epoch(n, settings.batch_size, self.ctx.world_size)
        total = settings.steps or settings.epochs * self.per_epoch
        self.total = min(total, settings.dry_run_steps) if settings.dry_run else total

        self.ema = None
        if settings.ema_decay:
            # Polyak/EMA averaging of G (Yazici et al. 2019): the exported generator is the average.
            self.ema = AveragedModel(model.net, multi_avg_fn=get_ema_multi_avg_fn(settings.ema_decay), use_buffers=True)
        # the step of the first update (a dry run averages from the start, so every stage runs)
        self.ema_start = 0 if settings.dry_run else settings.ema_start_epoch * self.per_epoch
        if settings.ema_decay and self.ema_start >= self.total:
            raise HubModelsError(
                f"train setting ema_start_epoch = {settings.ema_start_epoch} is not before the end of training "
                f"({self.total} steps = {self.total / self.per_epoch:g} epochs): lower it so the exported average "
                "sees some steps"
            )
        decay_start = 0 if settings.dry_run else settings.lr_decay_start_epoch  # a dry run decays from the start too
        if settings.lr_schedule == "linear" and decay_start * self.per_epoch >= self.total:
            raise HubModelsError(
                f"train setting lr_decay_start_epoch = {settings.lr_decay_start_epoch} is not before the end of "
                f"training ({self.total} steps = {self.total / self.per_epoch:g} epochs): lower it"
            )
        self.schedulers: dict[str, LRScheduler] = {}
        if settings.lr_schedule == "linear":  # every optimiser's lr decays linearly to 0 at the last step
            plan = settings.to_dict() | {"lr_decay_start_epoch": decay_start}
            total, per_epoch = self.total, self.per_epoch
            self.schedulers = {
                name: LambdaLR(opt, lambda step: lr_factor(plan, step, total, per_epoch))
                for name, opt in self.setup.optimizers.items()
            }
        elif settings.lr_schedule == "step":  # stepped per optimiser step: x lr_gamma after every epoch
            self.schedulers = {
                name: StepLR(opt, step_size=self.per_epoch, gamma=settings.lr_gamma)
                for name, opt in self.setup.optimizers.items()
            }
        self.fixed = model.fixed_latents(settings.sample_count, torch.Generator().manual_seed(settings.seed))
        self.step = 0
        self.eval_best: dict[str, Any] | None = None  # the best evaluation so far (fit's eval_every): step, value
        self.epoch_done = False
        self.loss_sums: dict[str, torch.Tensor] = {}
        # each rank draws its own noise; Python's RNG too, for plugins that use it (it is checkpointed)
        torch.manual_seed(settings.seed + 7919 * self.ctx.rank)
        random.seed(settings.seed + 7919 * self.ctx.rank)

        self.setup.nets = {name: self.ctx.wrap(net, self.device) for name, net in self.raw_nets.items()}
        if settings.compile:
            self.setup.nets = {name: torch.compile(net) for name, net in self.setup.nets.items()}
        self.autocast = autocast_for(self.device, settings.amp)

    # ------------------------------------------------------------------ training
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One optimiser step of the plugin's loss on ``batch``: schedule, average and loss sums follow it."""
        for net in self.raw_nets.values():
            net.train()
        with self.autocast:
            losses = self.model.train_step(self.setup, batch)
        for scheduler in self.schedulers.values():
            scheduler.step()  # the lr of the next step
        if self.ema is not None and self.step >= self.ema_start:
            self.ema.update_parameters(self.model.net)
        for k, v in losses.items():  # accumulate on the device: no host sync per step
            v = v.detach().float()
            self.loss_sums[k] = self.loss_sums[k] + v if k in self.loss_sums else v.clone()
        self.loss_sums["_count"] = self.loss_sums.get("_count", torch.zeros((), device=self.device)) + 1
        self.step += 1
        return losses

    def run(self) -> Iterator[dict[str, torch.Tensor]]:
        """Train to ``total`` steps, yielding each step's losses (``epoch_done`` tells the end of an epoch)."""
        while self.step < self.total:
            epoch, first = divmod(self.step, self.per_epoch)
            order = epoch_order(self.n, self.settings.seed, epoch)[self.ctx.rank :: self.ctx.world_size]
            order = order.to(self.device)
            size = self.settings.batch_size
            for j in range(first, self.per_epoch):
                idx = order[j * size : (j + 1) * size]
                batch = {k: v[idx] for k, v in self.data.items()}
                if self.settings.channels_last and batch.get("images") is not None and batch["images"].dim() == 4:
                    batch["images"] = batch["images"].contiguous(memory_format=torch.channels_last)
                losses = self.train_step(batch)
                self.epoch_done = j == self.per_epoch - 1
                yield losses
                if self.step >= self.total:
                    return

    def epoch_means(self) -> dict[str, float]:
        """Mean of each loss since the last call (or the start), then start a new sum."""
        count = float(self.loss_sums.get("_count", 1))
        means = {k: float(v) / count for k, v in self.loss_sums.items() if k != "_count"}
        self.loss_sums = {}
        return means

    def sample_net(self) -> torch.nn.Module:
        """The generator that would be exported now: the average once it has seen a step, else G."""
        return self.ema.module if self.ema is not None and self.ema.n_averaged > 0 else self.model.net

    def finish(self) -> None:
        """Put the exported generator in ``model.net``: the average, with its BatchNorm statistics recomputed."""
        if self.ema is not None:
            self.model.net.load_state_dict(self.ema.module.state_dict())
            recalibrate_batchnorm(self.model, self.settings.batch_size, seed=self.settings.seed)
        self.model.net.eval()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (a collective call under DDP: every rank's RNG state is gathered)."""
        state = {
            "model_id": self.model.model_id,
            "world_size": self.ctx.world_size,
            "config": config_to_dict(self.model.config),
            "settings": {k: v for k, v in self.settings.to_dict().items() if k not in INVOCATION_ONLY},
            "data_fingerprint": self.data_fingerprint,
            "step": self.step,
            "fixed": self.fixed,
            "loss_sums": self.loss_sums,
            "rng": self.ctx.gather(rng_state()),
            "nets": {k: v.state_dict() for k, v in self.raw_nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.setup.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.eval_best is not None:
            state["eval_best"] = self.eval_best
        extra = self.model.extra_state(self.setup)
        if extra:
            state["extra"] = extra
        return state

    def load_state_dict(self, state: dict[str, Any], source: str = "the checkpoint") -> None:
        """Continue from ``state``, after checking that this run may continue it (else a one-line error)."""
        self.check_resumable(state, source)
        state = copy.deepcopy(state)  # optimisers keep the tensors they are given: never share them with the caller
        try:
            for name, net in self.raw_nets.items():
                net.load_state_dict(state["nets"][name], strict=True)
            for name, opt in self.setup.optimizers.items():
                load_optimizer_state(opt, state["optimizers"][name])
            same_kind = state["settings"].get("lr_schedule") == self.settings.lr_schedule
            for name, scheduler in self.schedulers.items():
                if same_kind:
                    scheduler.load_state_dict(state["schedulers"][name])
                else:  # the checkpoint's plan gave the same lr so far (check_resumable): continue from its step
                    step = state["step"]
                    scheduler.load_state_dict({**scheduler.state_dict(), "last_epoch": step, "_step_count": step + 1})
                    for group, base_lr in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, strict=True):
                        group["initial_lr"] = base_lr  # what torch's scheduler set there, and the state load dropped
            if "extra" in state:
                self.model.load_extra_state(self.setup, state["extra"])
            # an average whose (re)planned start is still ahead begins afresh there, as in a run planned that way
            if self.ema is not None and state["step"] > self.ema_start:
                self.ema.load_state_dict(state["ema"])
            set_rng_state(state["rng"][self.ctx.rank])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise HubModelsError(
                f"{source} does not fit this run ({detail}): start a new run in another --out"
            ) from None
        self.step, self.fixed, self.loss_sums = state["step"], state["fixed"], state["loss_sums"]
        self.eval_best = state.get("eval_best")

    def check_resumable(self, state: dict[str, Any], source: str) -> None:
        """The resume rule: same model, config, data and numeric settings; the plan may change at constant lr
        (more or fewer steps, not fewer than done), and an average may start at or after the checkpoint.
        (It is long because each refusal names its own cause and fix here, in the order a user would check them.)"""
        missing = [key for key in STATE_KEYS if key not in state]
        if missing:
            raise HubModelsError(
                f"{source} lacks {', '.join(missing)}: not a complete hub-models training checkpoint (written by "
                "another or an older version?); start a new run in another --out"
            )
        if state["model_id"] != self.model.model_id or state["world_size"] != self.ctx.world_size:
            raise HubModelsError(
                f"{source} was written by {state['model_id']} on {state['world_size']} process(es); "
                f"cannot resume it as {self.model.model_id} on {self.ctx.world_size}"
            )
        if state["config"] != config_to_dict(self.model.config):
            changed = sorted(k for k, v in config_to_dict(self.model.config).items() if state["config"].get(k) != v)
            raise HubModelsError(
                f"{source} was trained with another {self.model.model_id} config ({', '.join(changed)} differ): "
                "resume with the recipe it started with"
            )
        for key in SAME_ON_RESUME:
            old, new = state["settings"].get(key), getattr(self.settings, key)
            if old != new:
                raise HubModelsError(
                    f"{source} was trained with {key} = {old!r}, not {new!r}: resume with the same {key} "
                    "(or start a new run in another --out)"
                )
        if state["data_fingerprint"] != self.data_fingerprint:
            raise HubModelsError(
                f"{source} was trained on other data (fingerprint {state['data_fingerprint']} vs "
                f"{self.data_fingerprint}): resume with the same --data and data_limit"
            )
        step = state["step"]
        if step > self.total:
            raise HubModelsError(
                f"{source} is at step {step}, past the {self.total} steps now planned: plan at least {step} steps"
            )
        old = state["settings"]
        if old.get("lr_schedule") == "step" == self.settings.lr_schedule and old["lr_gamma"] != self.settings.lr_gamma:
            raise HubModelsError(  # StepLR's state holds its gamma
                f"{source} was trained with lr_gamma = {old['lr_gamma']!r}, not {self.settings.lr_gamma!r}: resume "
                "with the same lr_gamma (or start a new run in another --out)"
            )
        # any new plan is fine whose lr is the same over the steps already taken (and at the checkpoint's step)
        planned, new = old["steps"] or old["epochs"] * self.per_epoch, self.settings.to_dict()
        for s in range(step + 1):
            if lr_factor(old, s, planned, self.per_epoch) != lr_factor(new, s, self.total, self.per_epoch):
                raise HubModelsError(
                    f"{source} was trained with lr_schedule = {old.get('lr_schedule', 'constant')!r} over {planned} "
                    "steps; this plan "
                    f"(lr_schedule = {self.settings.lr_schedule!r}, {self.total} steps) gives step {s} another lr, "
                    "and its first steps are already taken: keep the checkpoint's plan (a linear decay may start at "
                    f"epoch {-(-step // self.per_epoch)} or later: lr_decay_start_epoch)"
                )
        if self.ema is not None and step > self.ema_start:
            if "ema" not in state:
                raise HubModelsError(
                    f"{source} holds no generator average, and the average was to start at epoch "
                    f"{self.settings.ema_start_epoch}, before this checkpoint: set ema_start_epoch to "
                    f"{-(-step // self.per_epoch)} or later to start it now, or drop ema_decay"
                )
            if state["settings"]["ema_decay"] != self.settings.ema_decay:
                raise HubModelsError(
                    f"{source} averages G with ema_decay = {state['settings']['ema_decay']}, not "
                    f"{self.settings.ema_decay}: keep the decay of a running average"
                )
