"""Weights on disk and on the Hugging Face Hub: resolve a reference, load strictly, save, push.

A weights reference is one of
- ``None``: the copy bundled with the plugin's package (``<package>/weights/<model_id>/``);
- a local directory in the Hub layout (``config.json``, ``model.safetensors``, ``README.md``);
- a Hub repo id ``org/name`` with an optional ``@revision``, fetched through huggingface_hub's cache
  (so ``HF_HUB_OFFLINE=1`` works on whatever is already cached).

Loading never unpickles anything: the config is JSON, the tensors are safetensors, and a checkpoint that
does not match the architecture exactly (missing, unexpected or mis-shaped tensors) is refused.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from .contract import config_from_dict, config_to_dict
from .errors import WeightsError

if TYPE_CHECKING:
    from .contract import GenerativeModel

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
SAMPLE_NAME = "sample.png"
HUB_FILES = [CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, SAMPLE_NAME, "runs/**"]
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def bundled_dir(model_cls: type[GenerativeModel]) -> Path:
    """Where the plugin's package ships its weights: ``<top-level package>/weights/<model_id>``."""
    package = model_cls.__module__.split(".")[0]
    return Path(str(resources.files(package))) / "weights" / model_cls.model_id


def parse_repo_ref(ref: str) -> tuple[str, str | None] | None:
    """``org/name@rev`` → (repo_id, revision); None when ``ref`` is not a repo id."""
    repo_id, _, revision = ref.partition("@")
    if not REPO_ID.match(repo_id) or repo_id.startswith((".", "/")):
        return None
    return repo_id, revision or None


def resolve_weights(model_cls: type[GenerativeModel], ref: str | Path | None) -> Path:
    """Turn a weights reference into a local directory holding the Hub layout."""
    if ref is None or str(ref) == "":
        local = bundled_dir(model_cls)
        if (local / CONFIG_NAME).is_file():
            return local
        if model_cls.default_repo_id:
            return download(model_cls.default_repo_id, None)
        raise WeightsError(
            f"{model_cls.model_id} ships no bundled weights: pass --weights DIR or --weights org/name, "
            f"or train some with `hub-models train {model_cls.model_id}`"
        )
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
    return download(*parsed)


def download(repo_id: str, revision: str | None) -> Path:
    """Fetch a repo snapshot through huggingface_hub's cache (honours HF_HUB_OFFLINE)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        folder = snapshot_download(
            repo_id, revision=revision, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, SAMPLE_NAME]
        )
    except RevisionNotFoundError:
        raise WeightsError(f"revision {revision!r} not found in Hub repo {repo_id}") from None
    except (RepositoryNotFoundError, GatedRepoError):
        raise WeightsError(f"Hub repo {repo_id} not found (or private: log in with `hf auth login`)") from None
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise WeightsError(
                f"{where} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                "download it once while online, or pass a local directory"
            ) from None
        raise WeightsError(f"cannot reach the Hugging Face Hub to fetch {where}: check the network") from None
    except HfHubHTTPError as exc:
        raise WeightsError(f"Hub error while fetching {where}: {str(exc).splitlines()[0]}") from None
    return Path(folder)


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
    # training-only keys added after checkpoints were published take their defaults (the Config says which)
    optional = set(getattr(model_cls.Config, "optional_on_load", ()))
    missing = sorted(expected - set(arch) - optional) if isinstance(arch, dict) else []
    if missing:
        raise WeightsError(f"{path} is missing config keys {missing}: re-export the checkpoint with hub-models")
    return config


def load_weights(
    model_cls: type[GenerativeModel], ref: str | Path | None = None, device: str | torch.device | None = None
) -> GenerativeModel:
    """Resolve ``ref``, build the model from its config and load the tensors strictly."""
    directory = resolve_weights(model_cls, ref)
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
    return model.to(device)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "torch": torch.__version__}  # includes the CUDA build tag
    for dist in ("hub-models", "torchvision", "huggingface-hub", "safetensors"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def config_document(model: GenerativeModel) -> dict[str, Any]:
    return {
        "model_type": model.model_id,
        "architecture": config_to_dict(model.config),
        "provenance": model.provenance,
        "metrics": model.metric_values,
    }


def write_model_files(model: GenerativeModel, directory: Path) -> None:
    """Write the Hub layout into an existing (temporary) directory."""
    from .card import build_card

    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(config_document(model), indent=2, sort_keys=True) + "\n")
    net = model.net
    # safetensors refuses shared storage and non-contiguous tensors; state_dict copies are cheap here.
    save_model(net, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "model_type": model.model_id})
    samples = model.generate(64 if model.output == "image" else 1000, seed=0)
    model.render(samples, nrow=8).save(directory / SAMPLE_NAME)
    build_card(model).save(directory / CARD_NAME)


def update_metrics(directory: Path, model: GenerativeModel, metrics: dict[str, Any]) -> None:
    """Record measured metrics in config.json and the card of a local checkpoint (atomically)."""
    from .card import build_card
    from .utils import atomic_path

    model.metric_values = {**model.metric_values, **metrics}
    with atomic_path(directory / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps(config_document(model), indent=2, sort_keys=True) + "\n")
    with atomic_path(directory / CARD_NAME) as tmp:
        build_card(model).save(tmp)


def push(
    directory: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    logs: str | Path | None = None,
    token: str | None = None,
) -> str:
    """Upload a checkpoint directory (and its TensorBoard logs under ``runs/``) to a Hub repo."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    directory = Path(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME):
        if not (directory / name).is_file():
            raise WeightsError(f"{directory} has no {name}: push a directory written by `hub-models train`")
    if parse_repo_ref(repo_id) is None or "@" in repo_id:
        raise WeightsError(f"invalid repo id {repo_id!r}: use org/name (and --revision for a branch)")
    if logs is not None and not Path(logs).is_dir():
        raise WeightsError(f"logs directory {logs} does not exist: pass the run's logs/ directory or leave it out")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=directory,
            revision=revision,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, SAMPLE_NAME],
            commit_message=f"Upload {directory.name} with hub-models",
        )
        logs = Path(logs) if logs else directory.parent / "logs"
        if logs.is_dir() and any(logs.rglob("events.out.tfevents.*")):
            api.upload_folder(
                repo_id=repo_id,
                folder_path=logs,
                path_in_repo="runs",
                revision=revision,
                commit_message="Upload TensorBoard logs",
            )
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        hint = " (log in with `hf auth login` or set HF_TOKEN to a write token)" if status in (401, 403) else ""
        raise WeightsError(f"push to {repo_id} failed: {str(exc).splitlines()[0]}{hint}") from None
    except OfflineModeIsEnabled:
        raise WeightsError(f"cannot push to {repo_id} while HF_HUB_OFFLINE is set: unset it and retry") from None
    except _transport_errors() as exc:
        raise WeightsError(f"cannot reach the Hugging Face Hub to push {repo_id} ({exc}): check the network") from None
    return str(getattr(commit, "commit_url", url))


def _transport_errors() -> tuple[type[Exception], ...]:
    """Connection/timeout errors of huggingface_hub's HTTP client (httpx2 in huggingface_hub 2.x, httpx in 1.x)."""
    errors = []
    for name in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)
