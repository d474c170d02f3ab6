"""Small helpers shared by the engine, the weights code and the plugins."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one rename.

    Works for files and for directories: whatever the caller writes at the yielded path is moved into
    place only when the block finishes without an exception, so a crash (or SIGKILL) never leaves a
    half-written file where a good one was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        _default_permissions(target)
        if target.is_dir() and path.is_dir():
            # os.replace cannot swap a non-empty directory: move the old one aside first.
            old = tmp / "old"
            os.replace(path, old)
            os.replace(target, path)
        else:
            os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _default_permissions(target: Path) -> None:
    """Temporary files and mkdtemp dirs are private (0600/0700); give the result the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    for p in [target, *(target.rglob("*") if target.is_dir() else [])]:
        if p.exists() and not p.is_symlink():
            p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto" → CUDA when available, else CPU; otherwise the named device, checked."""
    from .errors import HubModelsError

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise HubModelsError(f"unknown device {device!r}: use auto, cpu or cuda[:N]") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HubModelsError(f"device {device!r} asked for, but CUDA is not available here: use --device cpu")
    return dev


def git_revision(start: Path | None = None) -> str | None:
    """The git commit of the source tree ``start`` belongs to; None when ``start`` is not tracked by git.

    A plugin installed into a virtual environment that happens to live inside some checkout is not tracked
    there (``git ls-files`` is empty), so it records no revision rather than that checkout's.
    """
    start = start or Path(__file__).resolve().parent
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "--", "."], cwd=start, capture_output=True, text=True, timeout=5, check=True
        )
        if not tracked.stdout.strip():
            return None
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=start, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] (N×C×H×W) → uint8, rounded to nearest."""
    return images.clamp(0, 1).mul(255).round().to(torch.uint8)


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a checkpoint depends on (recorded in its provenance)."""
    versions = {"python": platform.python_version(), "torch": torch.__version__}  # includes the CUDA build tag
    for dist in ("hub-models", "torchvision", "huggingface-hub", "safetensors"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions
