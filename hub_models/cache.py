"""Where hub-models keeps what it computed or downloaded once: the plugin catalog, MNIST downloaded by torchvision,
real-data statistics for FID and the digit metrics, decoded face arrays. Imports nothing heavy (``hub-models list``
reads the catalog without torch)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(name: str) -> Path:
    """``name``'s folder (or file) in hub-models' cache: ``$HUB_MODELS_CACHE``, else ``$XDG_CACHE_HOME/hub_models``,
    else ``~/.cache/hub_models``."""
    root = os.environ.get("HUB_MODELS_CACHE")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hub_models"
    return Path(root) / name
