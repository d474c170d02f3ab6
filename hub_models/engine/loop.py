"""The training loop every plugin shares.

The plugin supplies the data (in-memory tensors), the networks with their optimisers and one loss step;
this module owns everything around it: devices, seeding, batching (data stays uint8 on the device and is
indexed there), progress bar, TensorBoard, per-epoch sample grids from fixed noise and metrics JSON,
atomic checkpoints with exact resume, DDP, and the export of the final model in the Hub layout.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import HubModelsError
from ..spec import config_to_dict
from ..utils import atomic_path, git_revision, library_versions, resolve_device
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import DistContext, state_digest
from .evaluation import Evaluator, evaluates
from .recipe import Recipe
from .settings import TrainSettings
from .trainer import INVOCATION_ONLY, Trainable, Trainer

if TYPE_CHECKING:
    from ..contract import GenerativeModel

CHECKPOINT_NAME = "checkpoint.safetensors"
SETTINGS_NAME = "train_settings.json"
EPOCH_LINE_EVERY_S = 60  # an epoch's line on stderr at most this often (a toy's epochs last a few steps)


def fit(
    model: Trainable,
    settings: TrainSettings,
    out_dir: Path,
    data_root: str | Path | None = None,
    command: str | None = None,
    recipe: Recipe | None = None,
) -> Path:
    """Train ``model`` into ``out_dir``; returns ``out_dir / "model"`` (config, safetensors, card).

    ``settings`` are a run's resolved settings (:func:`~hub_models.engine.resolve_training`, which also returns the
    ``recipe`` they came from: recorded with them in ``train_settings.json``).

    The run is the :class:`Trainer`'s (seeded from ``settings.seed``, the initialisation included); this function
    adds the disk: atomic checkpoints that ``settings.resume`` continues bit for bit, logs, sample grids, export.
    """
    out_dir = Path(out_dir)
    ckpt_path = out_dir / CHECKPOINT_NAME
    if ckpt_path.exists() and not settings.resume:
        raise HubModelsError.worded(
            f"{out_dir} already holds a training run: pass {{resume}} to continue it, or pick a new {{out}}",
            resume=("resume=True", "--resume"),
            out=("out_dir", "--out"),
        )
    if settings.resume and not ckpt_path.exists():
        raise HubModelsError.worded(
            f"nothing to resume: {ckpt_path} does not exist (drop {{resume}} to start a new run)",
            resume=("resume=True", "--resume"),
        )
    device = resolve_device(settings.device)
    ctx = DistContext.from_env(device.type)
    if device.type == "cuda" and ctx.enabled:
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if settings.threads and device.type == "cpu":
        torch.set_num_threads(settings.threads)
    try:
        data = model.load_data(Path(data_root) if data_root else None, "train")
        trainer = Trainer(model, settings, data, device, ctx)
        if settings.resume:
            trainer.load_state_dict(load_checkpoint(ckpt_path), source=str(ckpt_path))
        return _train_to_disk(trainer, out_dir, data_root, command, recipe)
    finally:
        ctx.close()


def _train_to_disk(  # the loop of fit(): long because each step's log, epoch end, evaluation and checkpoint
    trainer: Trainer, out_dir: Path, data_root: Any, command: str | None, recipe: Recipe | None
) -> Path:
    model, settings, ctx = trainer.model, trainer.settings, trainer.ctx
    writer = None
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is in the [train] extra, not a core dependency
            raise HubModelsError("training logs need tensorboard: pip install 'hub-models[train]'") from None

        writer = SummaryWriter(str(out_dir / "logs"), purge_step=trainer.step or None)
        _record_settings(out_dir / SETTINGS_NAME, trainer, recipe)

    def checkpoint() -> None:
        state = trainer.state_dict()  # every rank takes part (RNG states are gathered)
        if ctx.is_main:
            save_checkpoint(out_dir / CHECKPOINT_NAME, state)
        ctx.barrier()

    bar = tqdm(
        total=trainer.total,
        initial=trainer.step,
        disable=not (ctx.is_main and settings.progress),
        desc=model.model_id,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    evaluator = Evaluator(trainer, out_dir, data_root, writer) if ctx.is_main and evaluates(trainer) else None

    def export_best(directory: Path, net: torch.nn.Module, metrics: dict[str, Any]) -> None:
        saved = model.net, model.metric_values, model.provenance, model.training_curve
        try:
            _export(model, directory, net, metrics, _provenance(trainer, command), evaluator)
        finally:  # the training goes on with its own network
            model.net, model.metric_values, model.provenance, model.training_curve = saved

    said = -math.inf  # when the last epoch line was written: the first epoch always has one
    for losses in trainer.run():
        step = trainer.step
        bar.update(1)
        if step % settings.log_every == 0 and ctx.is_main:
            now = {k: float(v.detach()) for k, v in losses.items()}
            bar.set_postfix({k: f"{v:.3f}" for k, v in now.items()}, refresh=False)
            for k, v in now.items():
                writer.add_scalar(f"loss/{k}", v, step)
        if trainer.epoch_done:
            means = trainer.epoch_means()
            if ctx.is_main:
                _end_of_epoch(trainer, means, step // trainer.per_epoch, out_dir, writer)
                if time.monotonic() - said >= EPOCH_LINE_EVERY_S or step >= trainer.total:
                    tqdm.write(_epoch_line(trainer, means), file=sys.stderr)
                    said = time.monotonic()
        if evaluator is not None and evaluator.due(step):
            row = evaluator(step, export_best)  # before the checkpoint of this step, which records the best so far
            if row.get("best"):
                tqdm.write(_evaluation_line(trainer, row), file=sys.stderr)
        if step % settings.checkpoint_every == 0 or step >= trainer.total or trainer.epoch_done:
            checkpoint()
    bar.close()

    digests = ctx.gather(state_digest(model.net))
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP replicas disagree after training: {digests}")
    export = out_dir / "model"
    trainer.finish()
    if ctx.is_main:
        provenance = {**_provenance(trainer, command), "replica_digest": digests[0]}
        metrics = model.metric_values
        if evaluator is not None and evaluator.last is not None and evaluator.last[0] == trainer.step:
            metrics = evaluator.last[1]  # the evaluation at the last step measured this very export
        _export(model, export, model.net, metrics, provenance, evaluator)
        writer.close()
    ctx.barrier()
    return export


def _provenance(trainer: Trainer, command: str | None) -> dict[str, Any]:
    """What the export's config.json records of the run (at the trainer's current step)."""
    model, settings = trainer.model, trainer.settings
    return {
        "command": command or _command_line(),
        "dataset": model.dataset_for(model.config) or None,
        "data_fingerprint": trainer.data_fingerprint,
        "examples": trainer.n,
        "steps": trainer.step,
        "epochs": round(trainer.step / trainer.per_epoch, 3),
        "seed": settings.seed,
        "device": str(trainer.device),
        "world_size": trainer.ctx.world_size,
        "train_settings": {k: v for k, v in settings.to_dict().items() if k not in INVOCATION_ONLY},
        "versions": library_versions(),
        "git_revision": _source_revision(model),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _export(
    model: Trainable,
    directory: Path,
    net: torch.nn.Module,
    metrics: dict[str, Any],
    provenance: dict[str, Any],
    evaluator: Evaluator | None,
) -> None:
    """``model`` with ``net``, ``metrics``, ``provenance`` and the run's curve so far saved to ``directory`` (Hub
    layout, atomically)."""
    model.net, model.metric_values, model.provenance = net, metrics, provenance
    model.training_curve = _public_rows(evaluator.rows()) if evaluator is not None else []
    model.save_pretrained(directory)


def _public_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The curve as published: each evaluation's step and numbers, without this machine's timings."""
    return [{k: v for k, v in row.items() if k != "time"} for row in rows]


def _source_revision(model: Trainable) -> str | None:
    """The git revision of the plugin's own source (not hub-models'); None when it is not in a checkout."""
    try:
        return git_revision(Path(inspect.getfile(type(model))).parent)
    except (TypeError, OSError):  # a class built at run time has no source file
        return None


def _record_settings(path: Path, trainer: Trainer, recipe: Recipe | None) -> None:
    """The resolved settings the run was started with (and the recipe file they came from), then each resume's."""
    entry = {
        "settings": trainer.settings.to_dict(),
        "config": config_to_dict(trainer.model.config),
        "recipe": recipe.source if recipe is not None else None,
        "device": str(trainer.device),
    }
    if trainer.settings.resume and path.is_file():
        record = json.loads(path.read_text())
        record.setdefault("resumed", []).append({"step": trainer.step, **entry})
    else:
        record = {"model_id": trainer.model.model_id, **entry}
    _write_json(path, record)


def _epoch_line(trainer: Trainer, means: dict[str, float]) -> str:
    """What a run says of an epoch on stderr (above the progress bar, or alone with ``progress=False``)."""
    epochs = math.ceil(trainer.total / trainer.per_epoch)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in means.items())
    where = f"epoch {trainer.step // trainer.per_epoch}/{epochs} (step {trainer.step:,}/{trainer.total:,})"
    return f"{trainer.model.model_id} {where}: {losses}"


def _evaluation_line(trainer: Trainer, row: dict[str, Any]) -> str:
    """What a run says of an evaluation: the primary metric now and the best so far, with their steps."""
    best = row["best"]
    now = row.get(best["metric"])
    now_text = f"{now:.4g}" if isinstance(now, int | float) else "not measured"
    return (
        f"{trainer.model.model_id} step {row['step']:,} evaluated: {best['metric']} {now_text} "
        f"(best {best['value']:.4g} at step {best['step']:,})"
    )


def _end_of_epoch(trainer: Trainer, means: dict[str, float], epoch: int, out_dir: Path, writer: Any) -> None:
    """Epoch ``epoch`` (1-based) is done: its sample grid from the fixed latents, mean losses, TensorBoard."""
    if trainer.fixed is not None:  # None: the model draws nothing (the MNIST classifier)
        _sample_grid(trainer, epoch, out_dir, writer)
    for k, v in means.items():
        writer.add_scalar(f"epoch/{k}", v, epoch)
    writer.flush()
    _write_json(out_dir / "metrics" / f"epoch_{epoch:03d}.json", {"epoch": epoch, "step": trainer.step, **means})


def _sample_grid(trainer: Trainer, epoch: int, out_dir: Path, writer: Any) -> None:
    model: GenerativeModel = trainer.model  # type: ignore[assignment]  # fixed latents: a model that generates
    net = model.net
    was_training = net.training
    model.net = trainer.sample_net()  # show what would be exported
    model.net.eval()
    with torch.inference_mode():
        samples = model.decode(trainer.fixed, **model.parse_inputs({})).float().cpu()
    model.net = net
    net.train(was_training)
    picture = model.render(samples, nrow=model.grid_nrow(len(samples), **model.parse_inputs({})))
    samples_dir = out_dir / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(samples_dir / f"epoch_{epoch:03d}.png") as tmp:
        picture.save(tmp, format="PNG")
    writer.add_image("samples", torch.from_numpy(np.array(picture)).permute(2, 0, 1), epoch)


def _write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["hub-models", *sys.argv[1:]]) if sys.argv else ""
