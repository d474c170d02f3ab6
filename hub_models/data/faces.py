"""Face images as in-memory uint8 tensors (N×3×S×S), decoded once.

Sources, in the order they are tried for a ``root``:
- our offline CelebA copy: a directory of ``celeba64_{train,test}_NN.npz`` shards (JPEG bytes + offsets);
- a torchvision CelebA root (``ROOT/celeba/img_align_celeba`` with its partition file);
- any folder of images (recursive; jpg, jpeg, png, webp, bmp), center-cropped to a square and resized.

Decoding is the slow part, so the decoded array is cached as ``.npy`` under ``~/.cache/hub_models/faces``
(keyed by the source's path, size, modification time and the image size) and memory-mapped on later runs.
The cache lives outside any repository: CelebA's terms forbid redistributing images or arrays made from them.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..cache import cache_dir
from ..errors import DataError
from ..utils import atomic_path

# the terms every model trained on these faces states on its card
CELEBA_NOTE = (
    "Trained on CelebA (Liu et al., CUHK MMLab): **non-commercial research use only, CelebA terms**. The "
    "weights may reproduce features of people in the training set."
)
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
CACHE = cache_dir("faces")


def _square(img: Image.Image, size: int) -> np.ndarray:
    img = img.convert("RGB")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def _cached(key: str, build, size: int, count: int | None = None) -> np.ndarray:
    """The decoded uint8 N×size×size×3 array for ``key``: from the cache when a valid entry is there, else built."""
    path = CACHE / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"
    if path.is_file():
        try:
            array = np.load(path, mmap_mode="r")
        except (ValueError, OSError):
            array = None
        shape_ok = array is not None and array.ndim == 4 and array.shape[1:] == (size, size, 3) and len(array) > 0
        if shape_ok and array.dtype == np.uint8 and count in (None, len(array)):
            return array
        path.unlink(missing_ok=True)  # a damaged or foreign cache entry is rebuilt
    array = build()
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)
    return array


def _fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def read_npz_shards(shards: list[Path], size: int) -> np.ndarray:
    def build() -> np.ndarray:
        parts = []
        for shard in shards:
            try:
                data = np.load(shard)
                buf, offsets = data["jpeg"], data["offsets"]
            except (OSError, KeyError, ValueError) as exc:
                raise DataError(f"{shard} is not a face shard with 'jpeg' and 'offsets' arrays ({exc})") from None
            for i in range(len(offsets) - 1):
                blob = buf[offsets[i] : offsets[i + 1]].tobytes()
                parts.append(_square(Image.open(io.BytesIO(blob)), size))
        return np.stack(parts)

    return _cached(f"npz:{_fingerprint(shards)}:{size}", build, size)


def read_folder(folder: Path, size: int, limit: int | None = None) -> np.ndarray:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if limit:
        files = files[:limit]
    if not files:
        raise DataError(f"no images ({', '.join(sorted(EXTENSIONS))}) found under {folder}")

    def build() -> np.ndarray:
        out = []
        for p in files:
            try:
                with Image.open(p) as img:
                    out.append(_square(img, size))
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"cannot decode {p} ({exc}): remove it or convert it to JPEG/PNG") from None
        return np.stack(out)

    return _cached(f"folder:{_fingerprint(files)}:{size}", build, size, len(files))


def load_faces(root: str | Path | None, split: str = "train", size: int = 64) -> dict[str, torch.Tensor]:
    """``{"images": uint8 N×3×size×size}`` from ``root`` (see the module docstring)."""
    if root is None:
        if not os.environ.get("HUB_MODELS_DATA"):
            raise DataError.worded(
                "no face data given: {fix} (a folder of face images or a CelebA root), or set HUB_MODELS_DATA",
                fix=("pass its directory", "pass --data DIR"),
            )
        root = Path(os.environ["HUB_MODELS_DATA"]) / "celeba64"
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"face data directory {root} does not exist")
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    shards = sorted(root.glob(f"celeba64_{split}_*.npz"))
    if shards:
        array = read_npz_shards(shards, size)
    elif (root / "celeba" / "img_align_celeba").is_dir():
        array = _torchvision_celeba(root, split, size)
    else:
        array = read_folder(root, size)
    return {"images": torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))}  # a writable copy


def _torchvision_celeba(root: Path, split: str, size: int) -> np.ndarray:
    partition = root / "celeba" / "list_eval_partition.txt"
    images = root / "celeba" / "img_align_celeba"
    if not partition.is_file():
        return read_folder(images, size)
    wanted = {"train": "0", "test": "2"}[split]
    names = [line.split()[0] for line in partition.read_text().splitlines() if line.split()[1:] == [wanted]]
    files = [images / n for n in names]

    def build() -> np.ndarray:
        return np.stack([_square(Image.open(p), size) for p in files])

    return _cached(f"celeba:{_fingerprint(files[:100])}:{len(files)}:{split}:{size}", build, size, len(files))
