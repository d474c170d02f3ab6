"""Faster sampling for any model: one pass applied where models are loaded to serve samples (the demo, and
``hub-models generate``), so that a plugin's ``decode()`` holds only its model.

``optimize_for_inference(model, dtype)`` returns a copy of a loaded model whose network

- has every Conv2d / ConvTranspose2d that is followed by a BatchNorm2d in an ``nn.Sequential`` fused with it into
  one convolution (torch's ``fuse_conv_bn_eval``; the BatchNorm becomes an ``nn.Identity``). In float32 this is
  exact up to rounding: a DCGAN generator loses a third of its layers on the CPU path;
- computes a transposed convolution of a 1x1 input and a convolution whose kernel covers its input as the one
  matrix product each is, and on the CPU convolutions on 4x4 maps as im2col and a product
  (``hub_models.matmul_convs``: a DCGAN's first, second and last layers);
- runs channels_last on the CPU (oneDNN's fast layout for convolutions);
- optionally runs in ``dtype`` (bfloat16: about 3x faster on CPUs with AVX512-BF16/AMX, pixels within a few
  /255; offer it only for dtypes in the model's ``reduced_precision``). Floating-point inputs of the network's
  ``forward`` are cast to ``dtype`` and its outputs back to float32, so ``decode`` needs no change for it.

The copy is for sampling only: its weights have another layout (the saved one stays the original, so checkpoints
load strictly), it cannot be trained, and saving it is refused. The model passed in is left as it was.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .matmul_convs import use_matmul_convs

if TYPE_CHECKING:
    from .contract import GenerativeModel

    Model = TypeVar("Model", bound=GenerativeModel)

INFERENCE_ONLY = "inference_only"  # set on a network made by this pass (weights.write_weights refuses to save it)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fuse, in place, each (Conv2d | ConvTranspose2d, BatchNorm2d) pair of every ``nn.Sequential`` in ``module``
    (in eval mode) into one convolution; the BatchNorm is replaced by ``nn.Identity`` so indices stay valid."""
    module.eval()
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, norm = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(norm, nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(conv, norm, transpose=isinstance(conv, nn.ConvTranspose2d))
                seq[i + 1] = nn.Identity()
    return module


def optimize_for_inference(model: Model, dtype: torch.dtype = torch.float32) -> Model:
    """A sampling-only copy of ``model`` (see the module docstring); ``model`` itself is unchanged."""
    net = use_matmul_convs(fold_batchnorm(copy.deepcopy(model.net))).requires_grad_(False)
    cpu = model.device.type == "cpu"
    if cpu:  # oneDNN's convolutions are fastest on channels_last tensors
        net.to(dtype=dtype, memory_format=torch.channels_last)
    else:
        net.to(dtype=dtype)
    if dtype != torch.float32 or cpu:
        net.register_forward_pre_hook(_cast_inputs(dtype, cpu), with_kwargs=True)
    if dtype != torch.float32:
        net.register_forward_hook(lambda _module, _args, output: _map_floats(output, lambda t: t.float()))
    setattr(net, INFERENCE_ONLY, True)
    fast = copy.copy(model)  # shares config, provenance and metric values; only the network differs
    fast.net = net
    return fast


def is_inference_only(net: nn.Module) -> bool:
    return bool(getattr(net, INFERENCE_ONLY, False))


def _cast_inputs(dtype: torch.dtype, channels_last: bool) -> Any:
    def cast(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(dtype)
        return tensor.contiguous(memory_format=torch.channels_last) if channels_last and tensor.dim() == 4 else tensor

    def hook(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return _map_floats(args, cast), _map_floats(kwargs, cast)

    return hook


def _map_floats(obj: Any, fn: Any) -> Any:
    """``fn`` applied to every floating-point tensor in ``obj`` (nested tuples, lists and dicts)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj) if obj.is_floating_point() else obj
    if isinstance(obj, tuple | list):
        return type(obj)(_map_floats(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _map_floats(v, fn) for k, v in obj.items()}
    return obj
