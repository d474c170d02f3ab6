"""Models for the demo: loaded once, lazily, on CUDA when there is one; a failure disables only that model."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import Any

import torch

from ..contract import GenerativeModel
from ..errors import HubModelsError
from ..inference import optimize_for_inference
from ..registry import load

try:  # on a ZeroGPU Space, GPU work must run inside functions wrapped by spaces.GPU
    import spaces  # type: ignore[import-not-found]

    _spaces_gpu = spaces.GPU
except ImportError:  # everywhere else (and with spaces installed but no ZeroGPU) the wrapper is a no-op

    def _spaces_gpu(fn: Any) -> Any:
        return fn


GPU_TASKS: list[Any] = []  # every function handed to spaces.GPU, for tests/test_space.py to check
_running = 0  # calls of those functions waiting or computing now in this process (see running())
_running_lock = threading.Lock()
# Model calls computing at once (one per core; HUB_MODELS_DEMO_COMPUTE_SLOTS, 0: no limit). The app takes 8
# requests at once (their Python overlaps), but 8 models decoding on 2 cores share them out, so the longest job
# (the 100-digit grid) stretched the most. Mixed 8-client load on 2 idle cores, p95 of faces / 100 digits / VAE:
# one slot per core 352 / 520 / 322 ms (benchmarks/results/demo_latency.json); no limit, the same benchmark one
# commit before the limit, 507 / 857 / 263 ms.
COMPUTE_SLOTS = int(os.environ.get("HUB_MODELS_DEMO_COMPUTE_SLOTS", os.cpu_count() or 1))
_compute = threading.BoundedSemaphore(COMPUTE_SLOTS) if COMPUTE_SLOTS > 0 else contextlib.nullcontext()


def running() -> int:
    """How many model calls (functions handed to ``gpu``) are waiting or computing now in this process: 1 when a
    request has the CPU to itself."""
    return _running


def gpu(fn: Any) -> Any:
    """spaces.GPU, for module-level functions of picklable arguments only: on ZeroGPU each call's arguments are
    pickled into a forked GPU worker (a bound method would drag its object, locks included, along). Each call is
    counted while it waits or runs (``running``), and runs in one of the ``COMPUTE_SLOTS``."""
    if fn.__qualname__ != fn.__name__ or fn.__name__ == "<lambda>":
        raise TypeError(f"spaces.GPU needs a module-level function, got {fn.__qualname__}")

    @functools.wraps(fn)
    def counted(*args: Any, **kwargs: Any) -> Any:
        global _running
        with _running_lock:
            _running += 1
        try:
            with _compute:
                return fn(*args, **kwargs)
        finally:
            with _running_lock:
                _running -= 1

    GPU_TASKS.append(counted)
    return _spaces_gpu(counted)


def env_weights() -> dict[str, str]:
    """Weights chosen by environment: HUB_MODELS_WEIGHTS_DCGAN_FACES=org/name@rev → {"dcgan-faces": ...}."""
    prefix = "HUB_MODELS_WEIGHTS_"
    return {k[len(prefix) :].lower().replace("_", "-"): v for k, v in os.environ.items() if k.startswith(prefix) and v}


class ModelStore:
    """model id → loaded model, or the one-line reason it is unavailable."""

    def __init__(self, weights: dict[str, str] | None = None, device: str | None = None) -> None:
        self.weights = {**env_weights(), **(weights or {})}
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._models: dict[str, GenerativeModel] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str) -> GenerativeModel:
        """The model, loaded on first use; raises HubModelsError naming why it is unavailable."""
        with self._lock:
            if model_id in self._models:
                return self._models[model_id]
            if model_id in self._errors:
                raise HubModelsError(self._errors[model_id])
            try:
                model = load(model_id, weights=self.weights.get(model_id), device=self.device)
            except HubModelsError as exc:  # in the demo's terms: its --weights MODEL=REF and environment
                self._errors[model_id] = f"{model_id} is not available: {exc.demo}"
                raise HubModelsError(self._errors[model_id]) from None
            fast = torch.bfloat16 in model.reduced_precision and self.device == "cpu" and _cpu_has_bf16()
            # BatchNorm folded; bfloat16 where the model allows it: ~3x faster faces on a bf16 CPU, pixels within 6/255
            model = optimize_for_inference(model, torch.bfloat16 if fast else torch.float32)
            self._models[model_id] = model
            return model

    def weights_reason(self, model_id: str) -> str | None:
        """Cheap check, without building the model: None when its weights resolve, else why they do not."""
        if model_id in self._models:
            return None
        if model_id in self._errors:
            return self._errors[model_id]
        from ..registry import get_model_class
        from ..weights import parse_repo_ref, resolve_weights

        ref = self.weights.get(model_id)
        if ref and not os.path.exists(ref) and parse_repo_ref(ref):
            return None  # a Hub repo: fetched (or found in the cache) on first use, not at start-up
        try:
            resolve_weights(get_model_class(model_id), ref)
        except HubModelsError as exc:
            return f"{model_id} is not available: {exc.demo}"
        return None

    def prefer_ready(self, model_ids: list[str]) -> list[str]:
        """``model_ids`` with the ones whose weights resolve first (stable order otherwise)."""
        return sorted(model_ids, key=lambda m: self.weights_reason(m) is not None)

    def status(self, model_id: str) -> str | None:
        """None when the model loads, else the reason it does not."""
        try:
            self.get(model_id)
        except HubModelsError as exc:
            return str(exc)
        return None


def _cpu_has_bf16() -> bool:
    """AVX512-BF16 / AMX through oneDNN; opt out with HUB_MODELS_DEMO_FP32=1."""
    if os.environ.get("HUB_MODELS_DEMO_FP32"):
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
