"""MNIST and Fashion-MNIST as in-memory uint8 tensors.

Reads the four official idx files (``.gz`` or not) from a directory, from a torchvision root
(``ROOT/MNIST/raw``, ``ROOT/FashionMNIST/raw``) or from the Debian package ``dataset-fashion-mnist``;
downloads through torchvision into ``~/.cache/hub_models/data`` when no directory is given, nothing is found and
the network is there (a directory that is given is only read: one without the files is an error, never a download
target). With no directory given, ``$HUB_MODELS_DATA/mnist`` (or ``fashion-mnist``) is used when that variable is
set.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from ..cache import cache_dir
from ..errors import DataError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
TORCHVISION_DIRS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
DISPLAY_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}; expected an MNIST idx file (optionally gzipped)") from None
    header = 4 + 4 * dims
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path} is not an idx file with magic {magic} (expected the official MNIST format)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if len(raw) - header != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: header says {shape}, found {len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_root(root: str | Path | None, name: str = "mnist") -> Path | None:
    """The directory holding the idx files for ``name``; None when no ``root`` is given and nothing local is found
    (the caller may download); a :class:`DataError` when ``root`` is given but holds no such files."""
    candidates: list[Path] = []
    if root is not None:
        root = Path(root).expanduser()
        candidates += [root, root / name, root / TORCHVISION_DIRS[name] / "raw"]
    elif os.environ.get("HUB_MODELS_DATA"):
        base = Path(os.environ["HUB_MODELS_DATA"])
        candidates += [base / name, base / TORCHVISION_DIRS[name] / "raw"]
    if name == "fashion-mnist" and root is None:  # a folder the user named is the only place looked in
        candidates.append(DEBIAN_FASHION)
    for directory in candidates:
        if _find(directory, FILES["train"][0]) is not None:
            return directory
    if root is not None and not Path(root).exists():
        raise DataError(f"data directory {root} does not exist")
    if root is not None:  # a folder the user named: never download into it
        raise DataError.worded(
            f"{root} has no {DISPLAY_NAMES[name]} files ({FILES['train'][0]}[.gz] and the three others, looked for in "
            f"{root}, {root / name} and {root / TORCHVISION_DIRS[name] / 'raw'}): {{fix}}",
            fix=_missing_hint(name),
        )
    return None


def _missing_hint(name: str, download: bool = True) -> tuple[str, str]:
    """What to do when no local copy is found: (Python wording, command-line wording)."""
    apt = " (Debian/Ubuntu: apt-get install dataset-fashion-mnist)" if name == "fashion-mnist" else ""
    if not download:
        return (
            f"set HUB_MODELS_DATA, or pass the directory that holds the four idx files{apt}",
            f"set HUB_MODELS_DATA, or pass --data DIR with the four idx files{apt}",
        )
    return (
        f"pass the directory that holds the four idx files{apt}, or no directory to download them",
        f"point --data at the directory that holds the four idx files{apt}, or leave --data out to download them",
    )


def load_mnist(root: str | Path | None, split: str = "train", name: str = "mnist") -> dict[str, torch.Tensor]:
    """``{"images": uint8 N×1×28×28, "labels": int64 N}`` for ``split`` "train" or "test"."""
    if split not in FILES:
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    if name not in TORCHVISION_DIRS:
        raise DataError(f"unknown data set {name!r}: use 'mnist' or 'fashion-mnist'")
    directory = find_root(root, name)
    if directory is None:
        directory = _download(name)
    image_stem, label_stem = FILES[split]
    image_path, label_path = _find(directory, image_stem), _find(directory, label_stem)
    if image_path is None or label_path is None:
        missing = image_stem if image_path is None else label_stem
        raise DataError(f"{directory} has no {missing}[.gz]: expected the four MNIST idx files there")
    images = _read_idx(image_path, 2051, 3)
    labels = _read_idx(label_path, 2049, 1)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataError(f"{directory}: expected 28x28 images with one label each, got {images.shape} / {labels.shape}")
    if labels.max(initial=0) > 9:
        raise DataError(f"{label_path} holds labels above 9: not an MNIST-format label file")
    return {
        "images": torch.from_numpy(images.copy()).unsqueeze(1),
        "labels": torch.from_numpy(labels.astype(np.int64)),
    }


def _download(name: str) -> Path:
    import torchvision

    target = cache_dir("data")  # only with no directory given (see find_root)
    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    try:
        cls(str(target), train=True, download=True)
        cls(str(target), train=False, download=True)
    except Exception as exc:
        raise DataError.worded(
            f"{name} not found locally and the download failed ({type(exc).__name__}): {{fix}}",
            fix=_missing_hint(name, download=False),
        ) from None
    return target / TORCHVISION_DIRS[name] / "raw"
