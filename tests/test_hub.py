"""Push to and pull from the Hub through the real huggingface_hub client, against a local fake Hub.

The `local_hub` fixture (tests/conftest.py, tests/hub_server.py) serves the Hub's HTTP API on 127.0.0.1 and
points huggingface_hub at it with a private cache, so these tests exercise the same create_repo / upload_folder /
snapshot_download / cache code paths as a real push and pull, without any network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import set_hf_offline

import hub_models
from hub_models.errors import WeightsError
from hub_models.models.toy2d import GanToy2D
from hub_models.weights import CARD_NAME, CONFIG_NAME, SAMPLE_NAME, WEIGHTS_NAME, push

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
    for name in (CONFIG_NAME, WEIGHTS_NAME, SAMPLE_NAME):
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
    assert err.startswith("error: push to org/cli failed:") and "401" in err and "HF_TOKEN" in err
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
