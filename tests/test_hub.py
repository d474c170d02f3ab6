"""Push to and pull from the Hub through the real huggingface_hub client, against a local fake Hub.

The `local_hub` fixture (tests/conftest.py, tests/hub_server.py) serves the Hub's HTTP API on 127.0.0.1 and
points huggingface_hub at it with a private cache, so these tests exercise the same create_repo / upload_folder /
snapshot_download / cache code paths as a real push and pull, without any network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from conftest import set_hf_offline

import hub_models
from hub_models.errors import HubModelsWarning, WeightsError
from hub_models.hub import push
from hub_models.locations import CARD_NAME, CONFIG_NAME, SAMPLE_NAME, WEIGHTS_NAME
from hub_models.models.toy2d import GanToy2D

MODEL_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, SAMPLE_NAME)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-step gan-toy2d run: run/model (Hub layout) and run/logs (TensorBoard events)."""
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("toy") / "run"
    model_dir = GanToy2D().train(run, steps=20, progress=False, threads=1)
    assert Path(model_dir) == run / "model"
    assert list((run / "logs").glob("events.out.tfevents.*"))
    return run


def samples(weights: str | Path) -> torch.Tensor:
    return hub_models.load("gan-toy2d", weights=weights).generate(256, seed=3)


def weights_error(ref: str) -> str:
    with pytest.raises(WeightsError) as info:
        hub_models.load("gan-toy2d", weights=ref)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_push_then_load_by_repo_id(local_hub, run_dir):
    model_dir = run_dir / "model"
    url = push(model_dir, "org/toy")
    head = local_hub.repos["org/toy"]["branches"]["main"]  # the logs commit, made after the model commit
    model_commit = local_hub.repos["org/toy"]["commits"][head]["parent"]
    assert url == f"{local_hub.endpoint}/org/toy/commit/{model_commit}"
    assert local_hub.repos["org/toy"]["private"] is False

    remote = local_hub.files("org/toy")
    for name in (CONFIG_NAME, WEIGHTS_NAME, SAMPLE_NAME, "curve.jsonl", "curve.png"):  # the run evaluated itself
        assert remote[name] == (model_dir / name).read_bytes(), name
    # the pushed card names the repo it lives in, not a placeholder
    card = remote[CARD_NAME].decode()
    assert 'hub_models.load("org/toy")' in card and "--weights org/toy " in card and "<org>" not in card
    # the binary files took the LFS route (batch + PUT + verify), as on the real Hub
    lfs = {hashlib.sha256(remote[n]).hexdigest() for n in (WEIGHTS_NAME, SAMPLE_NAME)}
    assert lfs <= set(local_hub.lfs_uploads)
    assert any(r.startswith("POST /org/toy.git/info/lfs/objects/batch -> 200") for r in local_hub.requests)
    assert any(r.startswith("POST /lfs-test/org/toy/verify -> 200") for r in local_hub.requests)
    events = sorted(p for p in remote if p.startswith("runs/"))
    assert events == [f"runs/{p.name}" for p in sorted((run_dir / "logs").glob("events.out.tfevents.*"))]
    assert remote[events[0]] == (run_dir / "logs" / events[0][len("runs/") :]).read_bytes()

    loaded = hub_models.load("gan-toy2d", weights="org/toy")
    assert torch.equal(loaded.generate(256, seed=3), samples(model_dir))
    # it came through huggingface_hub's cache, at the commit main points to
    assert loaded.weights_dir.parent.name == "snapshots" and loaded.weights_dir.name == head
    assert loaded.weights_dir.parent.parent.name == "models--org--toy"
    assert not (loaded.weights_dir / "runs").exists()  # logs stay on the Hub
    # plain HTTP: file contents were fetched from /resolve/, no Xet endpoint was ever asked for
    assert any(r.startswith(f"GET /org/toy/resolve/{head}/{WEIGHTS_NAME}") for r in local_hub.requests)
    assert not [r for r in local_hub.requests if "xet" in r.lower() or " -> 5" in r]

    # pushing the same checkpoint again is a no-op (preupload reports the remote blobs, nothing changed)
    push(model_dir, "org/toy")
    assert local_hub.repos["org/toy"]["branches"]["main"] == head


def test_push_to_private_branch(local_hub, run_dir, monkeypatch):
    push(run_dir / "model", "org/toy", revision="dev", private=True)
    repo = local_hub.repos["org/toy"]
    assert repo["private"] is True
    assert sorted(local_hub.files("org/toy", "main")) == [".gitattributes"]
    assert set(MODEL_FILES) <= set(local_hub.files("org/toy", "dev"))

    # a private repo is invisible without a token (checked before anything is cached)
    monkeypatch.delenv("HF_TOKEN")
    assert "not found" in weights_error("org/toy@dev")
    monkeypatch.setenv("HF_TOKEN", "hf_local_test_token")

    expected = samples(run_dir / "model")
    assert torch.equal(samples("org/toy@dev"), expected)
    assert torch.equal(
        hub_models.load("gan-toy2d", weights="org/toy@" + repo["branches"]["dev"]).generate(256, seed=3), expected
    )  # a commit sha works as a revision too
    assert torch.equal(GanToy2D.from_pretrained("org/toy", revision="dev").generate(256, seed=3), expected)
    # main holds no checkpoint: a clear error, not a traceback
    assert "no config.json" in weights_error("org/toy")


def test_cli_push_in_a_fresh_process(local_hub, run_dir):
    """`hub-models push` configured only through the environment (HF_ENDPOINT, HF_HOME, HF_TOKEN)."""
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    cmd = [sys.executable, "-m", "hub_models.cli", "push", str(run_dir / "model"), "--repo-id", "org/cli"]
    done = subprocess.run([*cmd, "--private", "--branch", "v1"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{local_hub.endpoint}/org/cli/commit/" in done.stdout
    assert local_hub.repos["org/cli"]["private"] is True
    assert any(p.startswith("runs/events.out.tfevents.") for p in local_hub.files("org/cli", "v1"))
    assert torch.equal(samples("org/cli@v1"), samples(run_dir / "model"))


def test_cli_push_errors(local_hub, run_dir, tmp_path, monkeypatch, capsys):
    from hub_models.cli import main

    assert main(["push", str(tmp_path), "--repo-id", "org/cli"]) == 2
    assert f"{tmp_path} has no {CONFIG_NAME}" in capsys.readouterr().err
    assert main(["push", str(run_dir / "model"), "--repo-id", "org/cli", "--logs", str(tmp_path / "nope")]) == 2
    assert "logs directory" in capsys.readouterr().err
    monkeypatch.delenv("HF_TOKEN")
    assert main(["push", str(run_dir / "model"), "--repo-id", "org/cli"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pushing to org/cli failed:") and "401" in err and "HF_TOKEN" in err
    assert err.count("\n") == 1


def test_offline_loads_from_the_cache(local_hub, run_dir, monkeypatch):
    push(run_dir / "model", "org/toy")
    push(run_dir / "model", "org/toy", revision="dev")
    expected = samples(run_dir / "model")
    assert torch.equal(samples("org/toy"), expected)  # online: fills the cache
    assert torch.equal(samples("org/toy@dev"), expected)

    local_hub.stop()  # nothing to talk to any more
    set_hf_offline(monkeypatch, True)
    assert torch.equal(samples("org/toy"), expected)
    assert torch.equal(samples("org/toy@dev"), expected)
    message = weights_error("org/uncached")
    assert "org/uncached" in message and "HF_HUB_OFFLINE" in message
    assert "HF_HUB_OFFLINE" in weights_error("org/toy@never-fetched")
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE"):
        push(run_dir / "model", "org/toy")


def test_unknown_repo_and_revision_online(local_hub, run_dir):
    message = weights_error("org/does-not-exist")
    assert "org/does-not-exist" in message and "not found" in message
    push(run_dir / "model", "org/toy")
    message = weights_error("org/toy@no-such-branch")
    assert "no-such-branch" in message and "not found" in message


def test_hub_unreachable(local_hub, run_dir):
    local_hub.stop()  # HF_ENDPOINT now points at a closed port
    assert "cannot reach" in weights_error("org/toy")
    with pytest.raises(WeightsError, match="cannot reach"):
        push(run_dir / "model", "org/toy")


def test_hand_built_cache_offline(hf_cache, run_dir, monkeypatch):
    """The cache layout alone (no server, no tree listing): models--org--name/{refs,snapshots}."""
    set_hf_offline(monkeypatch, True)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # would fail loudly if anything tried the network
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = hf_cache / "models--org--hand"
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    for name in MODEL_FILES:
        shutil.copyfile(run_dir / "model" / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)

    expected = samples(run_dir / "model")
    assert torch.equal(samples("org/hand"), expected)
    assert torch.equal(samples(f"org/hand@{sha}"), expected)
    assert hub_models.load("gan-toy2d", weights="org/hand").weights_dir == snapshot.resolve()
    assert "HF_HUB_OFFLINE" in weights_error("org/hand@v2")

    (snapshot / WEIGHTS_NAME).write_bytes((snapshot / WEIGHTS_NAME).read_bytes()[:-7])  # truncated in the cache
    assert "corrupt or truncated" in weights_error("org/hand")


# ------------------------------------------------------------------------------ download arguments, cache, pins


def test_from_pretrained_forwards_the_download_arguments(local_hub, run_dir, tmp_path, monkeypatch):
    """revision, token, cache_dir, force_download and local_files_only reach huggingface_hub (through the mixin's
    public from_pretrained and its _from_pretrained hook, and through hub_models.load)."""
    push(run_dir / "model", "org/toy", revision="dev", private=True)
    expected = samples(run_dir / "model")
    cache = tmp_path / "elsewhere"
    monkeypatch.delenv("HF_TOKEN")  # private repo: only the explicit token gets in
    model = GanToy2D.from_pretrained("org/toy", revision="dev", cache_dir=cache, token="hf_explicit")
    assert torch.equal(model.generate(256, seed=3), expected)
    assert model.weights_dir.is_relative_to(cache / "models--org--toy" / "snapshots")
    assert "not found" in weights_error("org/toy@dev")  # no token: invisible

    fetched = lambda: sum("/resolve/" in r and r.startswith("GET") for r in local_hub.requests)  # noqa: E731
    before = fetched()
    GanToy2D.from_pretrained("org/toy", revision="dev", cache_dir=cache, token="hf_explicit")
    assert fetched() == before  # cached
    GanToy2D.from_pretrained("org/toy", revision="dev", cache_dir=cache, token="hf_explicit", force_download=True)
    assert fetched() > before

    local_hub.stop()
    model = hub_models.load("gan-toy2d", weights="org/toy", revision="dev", cache_dir=cache, local_files_only=True)
    assert torch.equal(model.generate(256, seed=3), expected)
    with pytest.raises(WeightsError, match="local_files_only"):
        hub_models.load("gan-toy2d", weights="org/toy", revision="dev", local_files_only=True)  # default cache


def test_load_a_repo_picks_the_plugin_from_model_type(local_hub, run_dir, tmp_path):
    push(run_dir / "model", "org/toy")
    model = hub_models.load("org/toy", device="cpu")
    assert isinstance(model, GanToy2D) and torch.equal(model.generate(256, seed=3), samples(run_dir / "model"))
    assert isinstance(hub_models.load(str(run_dir / "model")), GanToy2D)  # a checkpoint directory works too

    # a checkpoint of a plugin that is not installed: say which package to install
    other = tmp_path / "other"
    shutil.copytree(run_dir / "model", other)
    config = json.loads((other / CONFIG_NAME).read_text())
    (other / CONFIG_NAME).write_text(json.dumps({**config, "model_type": "spiral-gan", "package": "hub-models-spiral"}))
    push_folder(other, "org/spiral")
    with pytest.raises(WeightsError) as info:
        hub_models.load("org/spiral")
    assert "'spiral-gan'" in str(info.value) and "pip install hub-models-spiral" in str(info.value)


def push_folder(folder: Path, repo_id: str) -> None:
    """Upload a folder as is (for checkpoints no installed plugin can load)."""
    from huggingface_hub import HfApi

    HfApi().create_repo(repo_id, exist_ok=True)
    HfApi().upload_folder(repo_id=repo_id, folder_path=folder)


def test_mistyped_local_path_is_not_reported_as_a_cache_miss(hf_cache, tmp_path, monkeypatch):
    set_hf_offline(monkeypatch, True)
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    message = weights_error("runs/cgan")
    assert message.startswith("no such directory 'runs/cgan'"), message


@pytest.fixture
def published_toy(local_hub, monkeypatch):
    """gan-toy2d published to org/gan-toy2d with `hub-models publish`, and this checkout's copy hidden."""
    from hub_models.cli import main

    assert main(["publish", "--org", "org", "gan-toy2d"]) == 0
    monkeypatch.setenv("HUB_MODELS_ORG", "org")
    monkeypatch.setattr("hub_models.weights.has_local_copy", lambda cls: False)  # as in a wheel install
    return local_hub


def test_without_a_local_copy_weights_come_from_the_pinned_revision(published_toy, monkeypatch, capsys):
    from hub_models.cli import main
    from hub_models.locations import bundled_dir

    hub, tag = published_toy, f"v{hub_models.__version__}"
    assert hub.repos["org/gan-toy2d"]["tags"] == {tag: hub.repos["org/gan-toy2d"]["branches"]["main"]}
    expected = GanToy2D.from_pretrained(bundled_dir(GanToy2D)).generate(256, seed=3)

    # a newer commit on main must not change what this version of the package loads
    push_folder(Path(bundled_dir(GanToy2D)).parent / "gan-ring8", "org/gan-toy2d")
    set_hf_offline(monkeypatch, True)
    message = weights_error_default()
    assert "hub-models download gan-toy2d" in message and f"org/gan-toy2d@{tag}" in message
    set_hf_offline(monkeypatch, False)
    assert main(["download", "gan-toy2d"]) == 0
    assert f"org/gan-toy2d@{tag}" in capsys.readouterr().out
    hub.stop()
    set_hf_offline(monkeypatch, True)
    model = hub_models.load("gan-toy2d")
    assert torch.equal(model.generate(256, seed=3), expected)
    assert model.weights_dir.name == hub.repos["org/gan-toy2d"]["tags"][tag]  # the tagged commit, not main


def weights_error_default() -> str:
    with pytest.raises(WeightsError) as info:
        hub_models.load("gan-toy2d")
    assert "\n" not in str(info.value)
    return str(info.value)


def test_publish_pushes_cards_naming_their_repo_and_pins_a_tag(local_hub, monkeypatch):
    import yaml
    from huggingface_hub import ModelCard, parse_eval_result_entries
    from safetensors.torch import load

    from hub_models.hub import publish

    done = publish("org", ["gan-toy2d", "dcgan-faces"])
    assert [(m, r) for m, r, _ in done] == [("gan-toy2d", "org/gan-toy2d"), ("dcgan-faces", "org/dcgan-faces")]
    files = local_hub.files("org/dcgan-faces")
    card = ModelCard(files[CARD_NAME].decode())
    assert 'hub_models.load("org/dcgan-faces")' in card.text and "pip install hub-models" in card.text
    assert card.data.license == "other" and card.data.license_name and "CelebA" in card.data.license_link
    assert "recipe.toml" in files and "recipe.toml" in card.text  # the recipe the card cites is in the repo
    # the training curve the card shows goes with it: the rows as bundled, and their picture
    assert files["curve.jsonl"] == (bundled("dcgan-faces") / "curve.jsonl").read_bytes()
    assert files["curve.png"].startswith(b"\x89PNG") and "](curve.png)" in card.text
    entries = parse_eval_result_entries(yaml.safe_load(files[".eval_results/hub-models.yaml"]))
    assert {e.task_id for e in entries} == {"fid", "kid"} and entries[0].dataset_id == "flwrlabs/celeba"
    pushed, local = load(files[WEIGHTS_NAME]), load((bundled("dcgan-faces") / WEIGHTS_NAME).read_bytes())
    assert len(files[WEIGHTS_NAME]) > 10**6 and pushed.keys() == local.keys()  # 14 MB: through LFS
    assert all(torch.equal(pushed[key], local[key]) for key in local)

    head = local_hub.repos["org/dcgan-faces"]["branches"]["main"]
    assert publish("org", ["dcgan-faces"])  # unchanged weights: no new commit, the tag still fits
    assert local_hub.repos["org/dcgan-faces"]["branches"]["main"] == head
    push_folder(bundled("gan-ring8"), "org/dcgan-faces")  # something else on main: the pinned tag cannot move
    with pytest.raises(WeightsError, match="pinned revisions never move"):
        publish("org", ["dcgan-faces"])


def bundled(model_id: str) -> Path:
    from hub_models.locations import bundled_dir

    return bundled_dir(hub_models.get_model_class(model_id))


def test_duplicate_model_ids_are_reported_not_silently_shadowed(tmp_path, monkeypatch, capsys):
    from hub_models import registry
    from hub_models.cli import main

    site = tmp_path / "site"
    (site / "acme_dup").mkdir(parents=True)
    (site / "acme_dup" / "__init__.py").write_text(
        "from hub_models.models.toy2d import GanToy2D\n\nclass Impostor(GanToy2D):\n    pass\n"
    )
    dist = site / "acme_dup-2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-dup\nVersion: 2.0\n")
    (dist / "entry_points.txt").write_text("[hub_models.models]\ngan-toy2d = acme_dup:Impostor\n")
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", HubModelsWarning)  # `list` reports the clash once: its CONFLICT line
            assert main(["list"]) == 0
        out = capsys.readouterr().out
        assert "CONFLICT" in out and "acme-dup" in out and "using hub-models" in out
        # other commands: one plain line on stderr, not Python's file:line and source line, once per call site
        assert main(["generate", "gan-toy2d", "-n", "4", "-o", str(tmp_path / "points.npy")]) == 0
        err = capsys.readouterr().err
        assert err.count("warning: model id 'gan-toy2d' is registered by both") == 1 and "UserWarning" not in err
        with pytest.warns(UserWarning, match="registered by both hub-models and acme-dup; using hub-models"):
            model = hub_models.load("gan-toy2d")
        assert type(model) is GanToy2D
    finally:
        monkeypatch.undo()
        registry.refresh()


def test_publish_everything_then_use_it_without_local_copies(local_hub, monkeypatch, tmp_path, capsys):
    """`hub-models publish --org org` pushes every local checkpoint (and the MNIST classifier the digit metrics use),
    each card naming its repo; a machine without local copies then gets all of it with `hub-models download --all`."""
    from hub_models.cli import main
    from hub_models.metrics import mnist_classifier

    assert main(["publish", "--org", "org"]) == 0
    tag = f"v{hub_models.__version__}"
    local = [m for m in hub_models.list_models() if (bundled(m) / CONFIG_NAME).is_file()]
    for model_id in local:
        repo = local_hub.repos[f"org/{model_id}"]
        assert repo["tags"] == {tag: repo["branches"]["main"]}, model_id
        assert f'hub_models.load("org/{model_id}")' in local_hub.files(f"org/{model_id}")[CARD_NAME].decode()
    assert "org/mnist-classifier" in local_hub.repos

    monkeypatch.setenv("HUB_MODELS_ORG", "org")
    monkeypatch.setattr("hub_models.weights.has_local_copy", lambda cls: False)
    monkeypatch.setattr(mnist_classifier, "has_local_copy", lambda cls: False)
    capsys.readouterr()
    assert main(["download", "--all"]) == 0
    assert f"mnist-classifier: org/mnist-classifier@{tag}" in capsys.readouterr().out
    local_hub.stop()
    set_hf_offline(monkeypatch, True)
    assert mnist_classifier.classifier_dir().parent.parent.name == "models--org--mnist-classifier"
    mnist_classifier.load_classifier()
    for model_id in local:
        assert hub_models.load(model_id).weights_dir.parent.parent.name == f"models--org--{model_id}"
