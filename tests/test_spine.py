"""The spine: discovery, the CLI, generation with seeds, the toy models and their bundled weights."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import hub_models
from hub_models import registry
from hub_models.cli import main
from hub_models.models.toy2d import GanRing8, GanToy2D
from hub_models.testing import check_plugin


def run_cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "hub_models.cli", *args], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


# ---------------------------------------------------------------- discovery and third-party plugins


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """Install a plugin package the way pip would (a dist-info with entry points) on sys.path."""
    pkg = tmp_path / "site" / "acme_models"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "mirror.py").write_text(
        textwrap.dedent(
            '''
            from dataclasses import dataclass
            import torch
            from torch import nn
            from hub_models import CardInfo, GenerativeModel

            @dataclass
            class MirrorConfig:
                scale: float = 1.0

            class Mirror(GenerativeModel):
                """Points on the anti-diagonal: the smallest possible plugin."""
                model_id = "acme-mirror"
                Config = MirrorConfig
                output = "points"
                card = CardInfo(summary="Mirror points.", pipeline_tag="other")

                def build(self, config):
                    return nn.Linear(1, 2)

                def sample_latents(self, n, generator, **inputs):
                    return torch.randn(n, 1, generator=generator)

                def decode(self, latents, **inputs):
                    return self.net(latents) * self.config.scale
            '''
        )
    )
    (pkg / "broken.py").write_text("raise ImportError('needs a library that is not installed')\n")
    dist = tmp_path / "site" / "acme_models-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-models\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[hub_models.models]\nacme-mirror = acme_models.mirror:Mirror\nacme-broken = acme_models.broken:Nope\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    registry.refresh()
    yield tmp_path / "site"
    registry.refresh()


def test_own_models_are_discovered_through_entry_points():
    assert {"gan-toy2d", "gan-ring8"} <= set(hub_models.list_models())
    assert hub_models.get_model_class("gan-toy2d") is GanToy2D


def test_builtin_table_matches_the_registered_entry_points():
    """BUILTIN_MODELS (used from a never-installed checkout) must say exactly what pyproject.toml registers."""
    import tomllib

    from hub_models.locations import BUILTIN_MODELS, GROUP

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"][GROUP] == BUILTIN_MODELS


def test_builtin_models_are_found_in_a_checkout_without_installed_metadata(monkeypatch):
    """A Space runs demo/app.py from the copied repository: hub-models is importable but was never installed."""
    import importlib.metadata

    from hub_models.locations import BUILTIN_MODELS

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: importlib.metadata.EntryPoints(()))
    registry.refresh()
    try:
        assert hub_models.list_models() == sorted(BUILTIN_MODELS)
        assert hub_models.get_model_class("gan-toy2d") is GanToy2D
        assert hub_models.plugin_errors() == {}
    finally:
        monkeypatch.undo()
        registry.refresh()


def test_third_party_plugin_appears_and_broken_one_is_reported(third_party, tmp_path):
    assert "acme-mirror" in hub_models.list_models()
    assert "acme-broken" not in hub_models.list_models()
    assert "needs a library" in hub_models.plugin_errors()["acme-broken"]
    with pytest.raises(hub_models.HubModelsError, match=r"acme-broken.*failed to load.*needs a library"):
        hub_models.get_model_class("acme-broken")
    # the contract helper passes on the third-party plugin, and it saves/loads like our own
    cls = hub_models.get_model_class("acme-mirror")
    check_plugin(cls, tmp_path / "check")
    code, out, _ = run_cli("list")
    assert code == 0 and "acme-mirror" in out and "acme-broken" in out and "BROKEN" in out
    code, out, _ = run_cli(
        "generate",
        "acme-mirror",
        "--weights",
        str(tmp_path / "check" / "roundtrip"),
        "-n",
        "5",
        "-o",
        str(tmp_path / "m.npy"),
    )
    assert code == 0, out
    assert np.load(tmp_path / "m.npy").shape == (5, 2)


def test_list_shows_each_summary_whole():
    code, out, _ = run_cli("list")
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert code == 0
    for model_id in hub_models.list_models():
        assert lines[model_id].endswith(hub_models.get_model_class(model_id).card.summary), model_id
    assert "DCGAN (Radford et al., 2016) generating 64x64 faces" in lines["dcgan-faces"]  # not cut at "al."


def test_unknown_model_lists_available_ones():
    code, _, err = run_cli("generate", "no-such-model")
    assert code == 2
    assert err.startswith("error: unknown model 'no-such-model'") and "gan-toy2d" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("cls", [GanToy2D, GanRing8])
def test_toy_plugins_follow_the_contract(cls, tmp_path):
    check_plugin(cls, tmp_path, train=True)


# ---------------------------------------------------------------- bundled weights and generation


def test_bundled_toy_weights_meet_their_card():
    model = hub_models.load("gan-toy2d")
    measured = model.evaluate()["w2"]
    assert measured <= 0.05, f"bundled gan-toy2d has W2 {measured}"
    assert measured == pytest.approx(model.metric_values["w2"], abs=1e-4)  # the card reports what we measure
    ring = hub_models.load("gan-ring8")
    result = ring.evaluate(num_samples=4000)
    assert result["modes_covered"] == 8
    assert ring.metric_values["modes_covered"] == 8


def test_ring8_high_quality_means_within_3_std_of_a_mode(monkeypatch):
    """gan-ring8's protocol: a sample counts as high quality within 3 std of its nearest mode. Points 2 std off
    every mode all count, points 4 std off or halfway between two modes none, and samples of the exact target
    count with the probability of a 2-D Gaussian within 3 std, 1 - exp(-4.5)."""
    model = GanRing8()
    centers, std = model.centers(), model.config.std
    angle = torch.linspace(0, 6.28, 800)
    direction = torch.stack([angle.cos(), angle.sin()], 1)

    def share(points: torch.Tensor) -> float:
        monkeypatch.setattr(model, "generate", lambda n, seed=0: points)
        return model.evaluate(num_samples=len(points))["high_quality"]

    assert share(centers.repeat(100, 1) + 2 * std * direction) == 1.0
    assert share(centers.repeat(100, 1) + 4 * std * direction) == 0.0
    assert share((centers + centers.roll(1, 0)) / 2) == 0.0
    target = centers.repeat(25_000, 1) + std * torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0))
    assert share(target) == pytest.approx(1 - math.exp(-4.5), abs=0.002)


def test_generate_cli_writes_png_and_npy(tmp_path):
    code, _, err = run_cli("generate", "gan-toy2d", "-n", "300", "--seed", "3", "-o", str(tmp_path / "p.npy"))
    assert code == 0, err
    points = np.load(tmp_path / "p.npy")
    assert points.shape == (300, 2) and points.dtype == np.float32
    same = hub_models.load("gan-toy2d").generate(300, seed=3).numpy()
    np.testing.assert_array_equal(points, same)
    code, _, err = run_cli("generate", "gan-ring8", "-n", "200", "-o", str(tmp_path / "p.png"))
    assert code == 0, err
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_takes_a_seed_or_a_generator_as_in_diffusers():
    from hub_models.spec import MAX_SEED

    model = hub_models.load("gan-ring8", device="cpu")
    g = torch.Generator().manual_seed(7)
    assert torch.equal(model.generate(5, generator=g), model.generate(5, seed=7))
    assert not torch.equal(model.generate(5, generator=g), model.generate(5, seed=7))  # the stream went on
    assert not torch.equal(model.generate(5), model.generate(5))  # neither: random samples
    with pytest.raises(hub_models.HubModelsError, match="either seed or generator"):
        model.generate(5, seed=1, generator=g)
    with pytest.raises(hub_models.HubModelsError, match=f"seed must be an integer from 0 to {MAX_SEED}"):
        model.generate(5, seed=MAX_SEED + 1)
    with pytest.raises(hub_models.HubModelsError, match="CPU torch.Generator"):
        model.generate(5, generator=7)


def test_same_seed_same_samples_and_seeds_differ():
    model = hub_models.load("gan-ring8")
    assert torch.equal(model.generate(16, seed=5), model.generate(16, seed=5))
    assert not torch.equal(model.generate(16, seed=5), model.generate(16, seed=6))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "0"], "number of samples must be an integer from 1"),
        (["-n", "100000"], "number of samples must be an integer from 1"),
        (["-o", "out.gif"], "use an output file ending in .png, .jpg or .npy"),
        (["--input", "label=3"], "does not take label"),
        (["--weights", "./nowhere"], "not found"),
    ],
)
def test_generate_bad_input_is_one_line_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("generate", "gan-toy2d", *args)
    assert code == 2, err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def _help(*argv: str, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own --help exits
        code = exc.code
    return code, capsys.readouterr().out


def test_generate_help_lists_the_models_declared_inputs(capsys):
    code, out = _help("generate", "cgan-digits", "--help", capsys=capsys)
    assert code == 0 and "cgan-digits options" in out
    assert "--label {all,0,1,2,3,4,5,6,7,8,9}" in out and "(default: all)" in out
    assert "a digit 0-9, or 'all'" in " ".join(out.split())  # the declared help, plain text
    code, out = _help("generate", "dcgan-faces", "-h", capsys=capsys)
    assert code == 0 and "--truncation FLOAT" in out and "from 0.6 to 1.0" in " ".join(out.split())
    code, out = _help("generate", "gan-toy2d", "--help", capsys=capsys)
    assert code == 0 and "--label" not in out and "--truncation" not in out and "--seed" in out
    code, out = _help("generate", "--help", capsys=capsys)  # no model yet: the common options
    assert code == 0 and "--seed" in out and "MODEL's own options" in out


def test_info_and_eval_print_json():
    code, out, _ = run_cli("info", "gan-ring8")
    info = json.loads(out)
    assert code == 0 and info["output"] == "points" and info["bundled_metrics"]["modes_covered"] == 8
    code, out, _ = run_cli("eval", "gan-toy2d")
    assert code == 0 and json.loads(out)["w2"] <= 0.05
