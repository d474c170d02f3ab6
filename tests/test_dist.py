"""What users meet outside a checkout: the wheel (small, code only, honest metadata) and the model cards.

The wheel is built from a copy of the tracked files with the installed setuptools (no network). The check that it
resolves beside the oldest supported torch is a `pip install --dry-run` in .ci/run (it needs the package index).
"""

from __future__ import annotations

import email
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard, parse_eval_result_entries
from huggingface_hub.repocard_data import model_index_to_eval_results

import hub_models
from hub_models.card import EVAL_RESULTS_NAME, build_card, eval_results_yaml
from hub_models.locations import bundled_dir, has_local_copy
from hub_models.weights import load_weights

ROOT = Path(__file__).resolve().parents[1]
MAX_WHEEL = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    src = tmp / "src"
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp), str(src)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return next(tmp.glob("hub_models-*.whl"))


def test_wheel_is_small_code_only_and_licensed_honestly(wheel):
    assert wheel.stat().st_size <= MAX_WHEEL, f"wheel is {wheel.stat().st_size / 1e6:.1f} MB"
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        meta = email.message_from_bytes(whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
    assert not [n for n in names if n.endswith(".safetensors") or "/weights/" in n], "weights must not ship"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "hub_models/app/mnist_test_examples.npy" in names
    assert meta["License-Expression"] == "MIT"
    requires = meta.get_all("Requires-Dist")
    core = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("torch>=") for r in core) and not any("==" in r for r in core), core
    assert not any(r.startswith(("tensorboard", "scipy")) for r in core)
    assert any(r.startswith("tensorboard") and 'extra == "train"' in r for r in requires)
    assert any(r.startswith("pandas") and 'extra == "demo"' in r for r in requires)
    assert not any(r.startswith("scipy") for r in requires)
    description = meta.get_payload()
    assert not description.lstrip().startswith("---") and "sdk:" not in description  # no Space front matter


def test_cards_are_what_a_hub_user_can_trust():
    """Every local checkpoint's card: Hub dataset ids, licence fields, results readable by huggingface_hub's own
    parsers (model-index and .eval_results), only the model's own numbers, no machine-local paths."""
    from hub_models.models.mnist_classifier import MnistClassifierModel  # the digit models' judge is published too

    for cls in [*map(hub_models.get_model_class, hub_models.list_models()), MnistClassifierModel]:
        model_id = cls.model_id
        if not has_local_copy(cls):
            continue
        model = load_weights(cls, bundled_dir(cls), device="cpu")
        card = build_card(model)
        text = str(card)
        data = ModelCard(text).data
        assert all("/" in d for d in data.datasets or []), (model_id, data.datasets)
        assert "../" not in text and "/work/" not in text and "data_root" not in text, model_id
        if data.license == "other":
            assert data.license_name and data.license_link.startswith("https://"), model_id
        if "celeba" in text.lower():
            assert data.license == "other" and "non-commercial" in text.lower(), model_id
        if any(spec.name == "label" for spec in cls.inputs):
            assert data.pipeline_tag != "unconditional-image-generation", model_id
        # the model's own scalar numbers (per-class tables stay on the card's table, not in the Hub's results)
        own = {
            m.key for m in cls.metrics if not m.reference and isinstance(model.metric_values.get(m.key), int | float)
        }
        if own and data.datasets:
            _, legacy = model_index_to_eval_results(yaml.safe_load(text.split("---")[1])["model-index"])
            entries = parse_eval_result_entries(yaml.safe_load(eval_results_yaml(model)))
            assert {r.metric_type for r in legacy} == {e.task_id for e in entries} == own, model_id
            assert {e.dataset_id for e in entries} == {data.datasets[0]}
        # the checked-in copy is what this code writes (`python -m hub_models.hub` regenerates it)
        on_disk = bundled_dir(cls)
        assert (on_disk / "README.md").read_text(encoding="utf-8") == text, f"{model_id}: regenerate the card"
        assert json.loads((on_disk / "config.json").read_text())["package"] == "hub-models"
        if own and data.datasets:
            assert (on_disk / EVAL_RESULTS_NAME).read_text(encoding="utf-8") == eval_results_yaml(model)


def test_reference_numbers_are_not_results():
    cls = hub_models.get_model_class("gan-digits-mlp")
    model = load_weights(cls, bundled_dir(cls), device="cpu")
    assert "classifier_fid_real_train" in model.metric_values
    entries = parse_eval_result_entries(yaml.safe_load(eval_results_yaml(model)))
    reference = {m.key for m in cls.metrics if m.reference}
    assert reference == {"classifier_fid_real_train"}
    assert "classifier_fid" in {e.task_id for e in entries} and not reference & {e.task_id for e in entries}
