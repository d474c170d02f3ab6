"""Training checkpoints: one safetensors file (tensors) with a JSON document in its metadata.

Holds every trained network, every optimiser (tensors and hyper-parameters), the step counter, the RNG
states of each rank and the fixed sample noise, so ``--resume`` continues bit for bit. Nothing is
pickled. The file is written to a temporary name and renamed, so a kill mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import HubModelsError
from ..utils import atomic_path

FORMAT = "hub-models-train-checkpoint/1"


def _flatten(prefix: str, obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors in a nested structure by references ``{"$t": key}`` and collect them."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = obj.detach().cpu().clone().contiguous()
        return {"$t": key}
    if isinstance(obj, dict):
        return {"$d": [[_key(k), _flatten(f"{prefix}/{k}", v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple | list):
        return {
            "$l": [_flatten(f"{prefix}/{i}", v, tensors) for i, v in enumerate(obj)],
            "tuple": isinstance(obj, tuple),
        }
    return obj


def _key(k: Any) -> Any:
    return k if isinstance(k, str | int) else str(k)


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict) and "$t" in obj:
        return tensors[obj["$t"]]
    if isinstance(obj, dict) and "$d" in obj:
        return {k: _unflatten(v, tensors) for k, v in obj["$d"]}
    if isinstance(obj, dict) and "$l" in obj:
        items = [_unflatten(v, tensors) for v in obj["$l"]]
        return tuple(items) if obj.get("tuple") else items
    return obj


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``state`` is any nest of dicts/lists/tuples/tensors/JSON scalars."""
    tensors: dict[str, torch.Tensor] = {}
    document = _flatten("s", state, tensors)
    metadata = {"format": FORMAT, "state": json.dumps(document)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise HubModelsError(f"training checkpoint {path} is unreadable ({exc}): start a new run") from None
    if metadata.get("format") != FORMAT:
        raise HubModelsError(f"{path} is not a hub-models training checkpoint")
    return _unflatten(json.loads(metadata["state"]), tensors)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": json.dumps(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def optimizer_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    return opt.state_dict()


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    # JSON turned int keys of "state" into whatever _key kept (ints stay ints) — normalise anyway.
    fixed = dict(state)
    fixed["state"] = {int(k): v for k, v in state["state"].items()}
    opt.load_state_dict(fixed)
