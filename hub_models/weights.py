"""Weights on disk and on the Hugging Face Hub: resolve a reference, load strictly, save, push one model.

Every model has a Hub repo (``hub_repo_id``) and a pinned revision (``pinned_revision``), both defined in
:mod:`hub_models.locations`.

A weights reference resolves in this order:
1. an explicit reference: a local directory in the Hub layout (``config.json``, ``model.safetensors``,
   ``README.md``) or a Hub repo id ``org/name`` with an optional ``@revision``;
2. nothing: the local copy next to the plugin's code (``<package>/weights/<model_id>/``) when there is one
   (a source checkout and the Space keep them, so the demo and the tests work offline; wheels carry none);
3. the model's Hub repo at its pinned revision, through huggingface_hub's cache (``HF_HUB_OFFLINE=1`` works for
   whatever ``hub-models download`` put there);
4. otherwise a one-line error that says how to get the weights.

Loading never unpickles anything: the config is JSON, the tensors are safetensors, and a checkpoint that
does not match the architecture exactly (missing, unexpected or mis-shaped tensors) is refused. The way to the
Hub, ``push_model``, is in :mod:`hub_models.hub` with ``push`` and ``publish`` that use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from .card import EVAL_RESULTS_NAME, build_card, eval_results_yaml, public_provenance
from .errors import WeightsError
from .inference import is_inference_only
from .locations import (
    CARD_NAME,
    CONFIG_NAME,
    CURVE_NAME,
    CURVE_PICTURE,
    SAMPLE_NAME,
    WEIGHTS_NAME,
    bundled_dir,
    distribution,
    has_local_copy,
    hub_repo_id,
    pinned_revision,
)
from .spec import config_from_dict, config_to_dict, curve_picture, is_measurement, primary_metric
from .utils import atomic_path

if TYPE_CHECKING:
    from .contract import GenerativeModel

EVAL_RESULTS = ".eval_results/*.yaml"  # the Hub's evaluation-results files (see card.py)
MODEL_FILES = [CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, SAMPLE_NAME, EVAL_RESULTS, CURVE_NAME, CURVE_PICTURE]
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def parse_repo_ref(ref: str) -> tuple[str, str | None] | None:
    """``org/name@rev`` → (repo_id, revision); None when ``ref`` is not a repo id."""
    repo_id, _, revision = ref.partition("@")
    if not REPO_ID.match(repo_id) or repo_id.startswith((".", "/")):
        return None
    return repo_id, revision or None


@dataclasses.dataclass(frozen=True)
class HubOptions:
    """huggingface_hub download arguments, forwarded as given (``from_pretrained``/``load``/``download``)."""

    revision: str | None = None
    token: str | bool | None = None
    cache_dir: str | Path | None = None
    force_download: bool = False
    local_files_only: bool = False


def resolve_weights(model_cls: type[GenerativeModel], ref: str | Path | None, hub: HubOptions | None = None) -> Path:
    """Turn a weights reference into a local directory holding the Hub layout (see the module docstring)."""
    hub = hub or HubOptions()
    if ref is None or str(ref) == "":
        # an explicit revision or force_download asks for the Hub copy, not the local one
        if hub.revision is None and not hub.force_download and has_local_copy(model_cls):
            return bundled_dir(model_cls)
        repo_id, revision = hub_repo_id(model_cls), hub.revision or pinned_revision(model_cls)
        fetch = f"run `hub-models download {model_cls.model_id}` once while online (it fetches {repo_id}@{revision})"
        env = "HUB_MODELS_WEIGHTS_" + model_cls.model_id.upper().replace("-", "_")  # as the demo reads it
        hint = (f"{fetch}, or pass weights=DIR (a local checkpoint directory)", f"{fetch}, or pass --weights DIR",
                f"{fetch}, or start the demo with --weights {model_cls.model_id}=DIR (or set {env}=DIR)")  # fmt: skip
        return download(repo_id, dataclasses.replace(hub, revision=revision), hint=hint)
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise WeightsError(f"weights reference {str(ref)!r} is a file: point at the directory that holds {CONFIG_NAME}")
    parsed = parse_repo_ref(str(ref))
    if parsed is None or str(ref).startswith((".", "/", "~")):
        raise WeightsError(
            f"weights {str(ref)!r} not found: give an existing directory or a Hub repo id like org/name[@revision]"
        )
    repo_id, revision = parsed
    if revision and hub.revision and revision != hub.revision:
        raise WeightsError(f"two revisions given for {repo_id}: @{revision} and revision={hub.revision!r}")
    try:
        return download(repo_id, dataclasses.replace(hub, revision=revision or hub.revision))
    except WeightsError:
        parent = Path(repo_id).parent
        if parent.is_dir():  # `runs/cgan` with a local runs/: a mistyped path, not a Hub repo
            raise WeightsError(
                f"no such directory {str(ref)!r} ({parent}/ has no {Path(repo_id).name}), "
                "and no Hub repo of that name could be fetched either"
            ) from None
        raise


def download(repo_id: str, hub: HubOptions | None = None, hint: tuple[str, ...] | None = None) -> Path:
    """Fetch the model files of a repo snapshot through huggingface_hub's cache (honours HF_HUB_OFFLINE). ``hint``:
    the fix when they are neither on reach nor cached, worded for Python, the command line [and the demo]."""
    from huggingface_hub import constants, snapshot_download

    hub = hub or HubOptions()
    where = f"{repo_id}@{hub.revision}" if hub.revision else repo_id
    hint = hint or (f"fetch {where} once while online, or load a local checkpoint directory instead",)
    with hub_errors(f"fetching {where}", repo_id=repo_id, revision=hub.revision):
        try:
            folder = snapshot_download(
                repo_id,
                revision=hub.revision,
                allow_patterns=MODEL_FILES,
                token=hub.token,
                cache_dir=hub.cache_dir,
                force_download=hub.force_download,
                local_files_only=hub.local_files_only,
            )
        except _local_entry_errors():
            if constants.HF_HUB_OFFLINE or hub.local_files_only:
                why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "local_files_only was asked for"
                message = f"{where} is not in the local Hugging Face cache and {why}: {{fix}}"
            else:  # huggingface_hub fell back to the cache after a connection error, and the cache has nothing
                message = f"cannot reach the Hugging Face Hub to fetch {where} (check the network): {{fix}}"
            raise WeightsError.worded(message, fix=hint) from None
    return Path(folder)


def _local_entry_errors() -> tuple[type[Exception], ...]:
    from huggingface_hub.errors import LocalEntryNotFoundError

    return (LocalEntryNotFoundError,)


@contextlib.contextmanager
def hub_errors(doing: str, repo_id: str, revision: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub's exceptions into one-line :class:`WeightsError` messages."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except RevisionNotFoundError:
        raise WeightsError(f"revision {revision!r} not found in Hub repo {repo_id}") from None
    except (RepositoryNotFoundError, GatedRepoError):
        raise WeightsError(f"Hub repo {repo_id} not found (or private: log in with `hf auth login`)") from None
    except OfflineModeIsEnabled:
        raise WeightsError(f"{doing} needs the Hub, but HF_HUB_OFFLINE is set: unset it online and retry") from None
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        hint = " (log in with `hf auth login` or set HF_TOKEN to a write token)" if status in (401, 403) else ""
        raise WeightsError(f"{doing} failed: {str(exc).splitlines()[0]}{hint}") from None
    except _transport_errors() as exc:
        raise WeightsError(_unreachable(doing, exc)) from None
    except ValueError as exc:
        # huggingface_hub >= 2.5 wraps the connection error of a forced download: "Force download failed due to
        # the above error"
        if not isinstance(exc.__cause__, _transport_errors()):
            raise
        raise WeightsError(_unreachable(doing, exc.__cause__)) from None


def _unreachable(doing: str, exc: Exception) -> str:
    return (
        f"cannot reach the Hugging Face Hub while {doing} ({type(exc).__name__}): check the network or HF_ENDPOINT "
        "and retry; offline, use the local copies or a local checkpoint directory"
    )


def read_config(directory: Path, model_cls: type[GenerativeModel]) -> dict[str, Any]:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise WeightsError(f"no {CONFIG_NAME} in {directory}: not a hub-models checkpoint directory")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path} is not valid JSON ({exc}): the file is corrupt, re-download it") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{path} must hold a JSON object")
    model_type = config.get("model_type")
    if model_type != model_cls.model_id:
        raise WeightsError(
            f"{path} is a config for {model_type!r}, not {model_cls.model_id!r}: "
            f"load it with `hub-models ... {model_type}` or pick weights made for {model_cls.model_id}"
        )
    if "architecture" not in config:
        raise WeightsError(f"{path} has no 'architecture' section: re-export the checkpoint with hub-models")
    arch = config["architecture"]
    expected = {f.name for f in dataclasses.fields(model_cls.Config)}
    missing = sorted(expected - set(arch)) if isinstance(arch, dict) else []
    if missing:
        raise WeightsError(f"{path} is missing config keys {missing}: re-export the checkpoint with hub-models")
    metrics = config.get("metrics", {})
    if not isinstance(metrics, dict) or not all(is_measurement(v) for v in metrics.values()):
        raise WeightsError(f"{path}: 'metrics' must map names to numbers: re-export the checkpoint with hub-models")
    return config


def load_weights(
    model_cls: type[GenerativeModel],
    ref: str | Path | None = None,
    device: str | torch.device | None = None,
    hub: HubOptions | None = None,
) -> GenerativeModel:
    """Resolve ``ref``, build the model from its config and load the tensors strictly."""
    directory = resolve_weights(model_cls, ref, hub)
    config = read_config(directory, model_cls)
    try:
        arch = config_from_dict(model_cls.Config, config["architecture"], what=f"{directory / CONFIG_NAME}")
    except Exception as exc:
        raise WeightsError(str(exc)) from None
    model = model_cls(arch)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise WeightsError(f"no {WEIGHTS_NAME} in {directory}: the checkpoint is incomplete")
    try:
        load_model(model.net, str(weights), strict=True)
    except SafetensorError as exc:
        raise WeightsError(f"{weights} is corrupt or truncated ({exc}): re-download or re-export it") from None
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise WeightsError(f"{weights} does not match the {model_cls.model_id} architecture: {detail}") from None
    except OSError as exc:
        raise WeightsError(f"cannot read {weights}: {exc}") from None
    model.net.eval()
    model.provenance = config.get("provenance", {})
    model.metric_values = config.get("metrics", {})
    model.weights_dir = directory
    model.training_curve = read_curve(directory)
    return model.to(device)


def read_curve(directory: Path) -> list[dict[str, Any]]:
    """The evaluations during training of a checkpoint (its curve.jsonl), or [] when it has none."""
    path = directory / CURVE_NAME
    if not path.is_file():
        return []
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path} is not JSON lines ({exc}): the file is corrupt, re-download it") from None
    if not all(isinstance(row, dict) and isinstance(row.get("step"), int) for row in rows):
        raise WeightsError(f"{path}: every line must be an object with an integer step")
    return rows


def config_document(model: GenerativeModel) -> dict[str, Any]:
    return {
        "model_type": model.model_id,
        "package": distribution(model.model_id)[0],  # what to `pip install` to load this checkpoint
        "architecture": config_to_dict(model.config),
        "provenance": public_provenance(model.provenance),
        "metrics": model.metric_values,
    }


def _write_json(path: Path, document: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_model_files(
    model: GenerativeModel, directory: Path, repo_id: str | None = None, recipe: bool | None = None
) -> None:
    """Write the Hub layout of ``model`` into ``directory``, each file atomically: config.json, model.safetensors,
    the evaluation results, sample.png and the card (for ``repo_id`` and ``recipe``: see :func:`write_card`)."""
    write_weights(model, directory)
    write_curve(model, directory)
    samples = model.generate(64 if model.output == "image" else 1000, seed=0)
    with atomic_path(directory / SAMPLE_NAME) as tmp:
        model.render(samples, nrow=8).save(tmp, format="PNG")
    write_card(model, directory, repo_id=repo_id, recipe=recipe)


def write_card(
    model: GenerativeModel | Any, directory: Path, repo_id: str | None = None, recipe: bool | None = None
) -> None:
    """The one writer of a model card: ``directory/README.md``, atomically, as :func:`hub_models.card.build_card`
    builds it for ``repo_id`` (default: the model's own repo) and ``recipe`` (whether that repo holds the recipe).
    ``save_pretrained`` (so ``push_to_hub``), ``update_metrics`` and the regeneration of the bundled cards all
    write cards here."""
    build_card(model, repo_id=repo_id, recipe=recipe).save(directory / CARD_NAME)


def write_curve(model: GenerativeModel | Any, directory: Path) -> None:
    """The model's training curve (its evaluations during training) as curve.jsonl and curve.png, when it has one."""
    rows = getattr(model, "training_curve", None)
    if not rows:
        return
    with atomic_path(directory / CURVE_NAME) as tmp:
        tmp.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows), encoding="utf-8")
    picture = curve_picture(rows, primary_metric(model), model.model_id)
    if picture is not None:
        with atomic_path(directory / CURVE_PICTURE) as tmp:
            picture.save(tmp, format="PNG")


def write_weights(model: GenerativeModel | Any, directory: Path) -> None:
    """config.json, model.safetensors and the evaluation results of ``model`` (a plugin, or another trainable with
    the same declarations, such as the MNIST classifier of the digit metrics), each file atomically."""
    if is_inference_only(model.net):
        raise WeightsError(
            "this copy of the model was made by optimize_for_inference (BatchNorm folded into the convolutions) "
            "for sampling only: save the model as it was loaded"
        )
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / CONFIG_NAME, config_document(model))
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        # One metadata key only: safetensors stores the metadata map in hash order, so with two keys the same tensors
        # could give different bytes, and a re-push of unchanged weights would make a new commit (the model type
        # is in config.json).
        save_model(model.net, str(tmp), metadata={"format": "pt"})
    _write_eval_results(directory, model)


def _write_eval_results(directory: Path, model: GenerativeModel) -> None:
    text = eval_results_yaml(model)
    if text is None:
        (directory / EVAL_RESULTS_NAME).unlink(missing_ok=True)
        return
    with atomic_path(directory / EVAL_RESULTS_NAME) as tmp:
        tmp.write_text(text, encoding="utf-8")


def update_metrics(directory: Path, model: GenerativeModel, metrics: dict[str, Any]) -> None:
    """Record measured metrics in config.json and the card of a local checkpoint (atomically)."""
    model.metric_values = {**model.metric_values, **metrics}
    rewrite_docs(directory, model)


def rewrite_docs(directory: Path, model: GenerativeModel) -> None:
    """Rewrite config.json, the curve's picture and README.md of a local checkpoint from ``model`` (tensors and
    sample untouched)."""
    _write_json(directory / CONFIG_NAME, config_document(model))
    _write_eval_results(directory, model)
    write_curve(model, directory)
    write_card(model, directory)


def _transport_errors() -> tuple[type[Exception], ...]:
    """Connection/timeout errors of huggingface_hub's HTTP client (httpx2 in huggingface_hub 2.x, httpx in 1.x)."""
    errors = []
    for name in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)
