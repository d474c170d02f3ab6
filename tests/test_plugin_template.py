"""plugin-template/ as a third-party author ships it: built as a wheel, installed, and driven through the CLI
(list, generate, train), its own tests, `publish` to the local Hub, `load("org/repo")` and the demo's All-models tab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from demo_server import ROOT, DemoServer
from gradio_client import Client

TEMPLATE = ROOT / "plugin-template"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template's wheel, built from a copy of its sources and installed (no deps) into its own site dir."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    subprocess.run(["cp", "-r", str(TEMPLATE), str(src)], check=True)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp), str(src)], check=True)
    wheel = next(tmp.glob("hub_models_spiral-*.whl"))
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
    for shipped in (
        "weights/spiral-gan/model.safetensors",
        "weights/spiral-gan/config.json",
        "recipes/spiral-gan.toml",
    ):
        assert f"hub_models_spiral/{shipped}" in names, f"{shipped} is not in the wheel: check package-data"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp / "site"), str(wheel)], check=True)
    return tmp / "site"


def run(site: Path | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(site) if site else None, str(ROOT)]))
    full_env = {**os.environ, "PYTHONPATH": path, "HF_HUB_DISABLE_PROGRESS_BARS": "1", **(env or {})}
    return subprocess.run(args, env=full_env, capture_output=True, text=True, timeout=300, cwd=site or ROOT)


def cli(site: Path | None, *args: str) -> subprocess.CompletedProcess:
    return run(site, sys.executable, "-m", "hub_models.cli", *args)


def test_the_installed_template_works_through_the_cli_and_its_own_tests(installed, tmp_path):
    listed = cli(installed, "list")
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if row.startswith("spiral-gan"))
    assert "local copy" in line and "hub-models-spiral" in line

    done = cli(installed, "generate", "spiral-gan", "-n", "100", "--scale", "2", "-o", str(tmp_path / "p.npy"))
    assert done.returncode == 0 and (tmp_path / "p.npy").is_file(), done.stderr

    # with no --config, the package's recipe is the run (the one place the template sets its training)
    recipe = installed / "hub_models_spiral" / "recipes" / "spiral-gan.toml"
    assert cli(installed, "recipe", "spiral-gan").stdout == recipe.read_text()
    out = tmp_path / "run"
    done = cli(installed, "train", "spiral-gan", "--steps", "30", "--out", str(out))
    assert done.returncode == 0, done.stderr
    trained = json.loads((out / "model" / "config.json").read_text())["provenance"]["train_settings"]
    written = {k: v for k, v in tomllib.loads(recipe.read_text())["train"].items() if k != "steps"}
    assert {key: trained[key] for key in written} == written  # batch_size 256, seed 0, threads 1
    assert trained["steps"] == 30  # an option given overrides the recipe
    # and the model declares no second set of settings that the recipe would silently override
    code = "from hub_models_spiral.spiral import SpiralGAN; print(SpiralGAN.train_defaults)"
    assert run(installed, sys.executable, "-c", code).stdout.strip() == "{}"

    tests = run(installed, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TEMPLATE / "tests"))
    assert tests.returncode == 0, tests.stdout[-2000:]


def test_the_template_publishes_and_loads_back_by_repo_id(installed, local_hub):
    done = cli(installed, "publish", "--org", "acme", "spiral-gan")
    assert done.returncode == 0, done.stderr
    files = local_hub.files("acme/spiral-gan")
    card = files["README.md"].decode()
    assert "pip install hub-models-spiral" in card and 'hub_models.load("acme/spiral-gan")' in card
    assert "recipe.toml" in files and local_hub.repos["acme/spiral-gan"]["tags"]  # pinned at v0.1.0

    code = "import hub_models; m = hub_models.load('acme/spiral-gan'); print(type(m).__name__, m.weights_dir)"
    loaded = run(installed, sys.executable, "-c", code)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("SpiralGAN ") and "models--acme--spiral-gan" in loaded.stdout
    # without the plugin installed: which package to install
    missing = run(None, sys.executable, "-m", "hub_models.cli", "generate", "acme/spiral-gan", "-o", "x.png")
    assert missing.returncode == 2 and "pip install hub-models-spiral" in missing.stderr, missing.stderr


def test_the_template_appears_in_the_demo_all_models_tab(installed):
    path = os.pathsep.join([str(installed), str(ROOT)])
    server = DemoServer(env={"PYTHONPATH": path})
    try:
        client = Client(server.url, verbose=False)
        picture, download = client.predict("spiral-gan", 0, 100, '{"scale": 1.5}', api_name="/generate")
        assert Path(picture).is_file() and Path(download).is_file()
    finally:
        server.stop()
