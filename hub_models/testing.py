"""Contract checks a plugin author can run on their own plugin (and that this project runs on its own).

```python
from hub_models.testing import check_plugin
from my_package.my_model import MyModel

def test_my_model_follows_the_contract(tmp_path):
    check_plugin(MyModel, tmp_path)                 # declarations, generate, save/load round trip
    check_plugin(MyModel, tmp_path, train=True)     # + a dry-run training through the engine (needs data)
```

Each check raises ``AssertionError`` with a message naming what is wrong.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from .contract import GenerativeModel
from .spec import CardInfo, Input, Metric


def check_declarations(cls: type[GenerativeModel]) -> None:
    assert isinstance(cls, type) and issubclass(cls, GenerativeModel), f"{cls} must subclass GenerativeModel"
    assert isinstance(getattr(cls, "model_id", None), str) and cls.model_id, "model_id must be a non-empty string"
    assert cls.model_id == cls.model_id.lower() and " " not in cls.model_id, "model_id must be lower-case, no spaces"
    assert dataclasses.is_dataclass(cls.Config), "Config must be a dataclass"
    cls.Config()  # every field needs a default
    assert cls.output in ("image", "points"), f"output must be 'image' or 'points', not {cls.output!r}"
    assert isinstance(cls.card, CardInfo) and cls.card.summary, "card must be a CardInfo with a summary"
    for spec in cls.inputs:
        assert isinstance(spec, Input), f"inputs must hold Input objects, got {spec!r}"
        assert spec.name not in ("n", "seed"), "inputs may not redefine n or seed"
        spec.parse(spec.default)  # the default must be valid
    for metric in cls.metrics:
        assert isinstance(metric, Metric) and metric.protocol, f"metric {metric!r} needs a protocol"


def check_generate(model: GenerativeModel) -> torch.Tensor:
    out = model.generate(4, seed=123)
    again = model.generate(4, seed=123)
    assert torch.equal(out, again), "generate must be deterministic for a given seed"
    assert out.dtype == torch.float32 and out.device.type == "cpu", "generate must return float32 on the CPU"
    if model.output == "image":
        assert out.dim() == 4 and len(out) == 4, f"images must be N×C×H×W, got {tuple(out.shape)}"
        assert out.shape[1] in (1, 3), f"images must have 1 or 3 channels, got {out.shape[1]}"
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0, "images must lie in [0, 1]"
    else:
        assert out.shape == (4, 2), f"points must be N×2, got {tuple(out.shape)}"
    assert torch.isfinite(out).all(), "generate returned NaN or inf"
    other = model.generate(4, seed=124)
    assert not torch.equal(out, other), "different seeds must give different samples"
    model.render(out)  # must not fail
    return out


def check_round_trip(model: GenerativeModel, directory: Path) -> None:
    from .locations import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME
    from .weights import load_weights

    model.save_pretrained(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME):
        assert (directory / name).is_file(), f"save_pretrained did not write {name}"
    loaded = load_weights(type(model), directory)
    a, b = model.generate(4, seed=7), loaded.generate(4, seed=7)
    assert torch.equal(a, b), "a saved and re-loaded model must generate identical samples"


def check_training(cls: type[GenerativeModel], run_dir: Path, data_root: Any = None) -> Path:
    """A dry run (a few batches) through the shared engine, then load the exported model."""
    from .weights import load_weights

    model = cls()
    export = model.train(run_dir, data=data_root, dry_run=True, progress=False, batch_size=8, checkpoint_every=1)
    loaded = load_weights(cls, export)
    check_generate(loaded)
    return export


def check_plugin(cls: type[GenerativeModel], tmp_dir: str | Path, train: bool = False, data_root: Any = None) -> None:
    """Run every contract check on ``cls`` (writing into ``tmp_dir``)."""
    tmp_dir = Path(tmp_dir)
    check_declarations(cls)
    torch.manual_seed(0)
    model = cls()
    check_generate(model)
    check_round_trip(model, tmp_dir / "roundtrip")
    if train:
        check_training(cls, tmp_dir / "train", data_root=data_root)
