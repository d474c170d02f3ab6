"""Shared pytest fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# hub-models' own cache (catalog, FID and digit statistics, decoded faces; ``hub_models.cache``) is a fresh
# folder per test session, set before any hub_models module reads it: nothing read from or left in the user's.
_SESSION_CACHE = tempfile.mkdtemp(prefix="hub_models_test_cache_")
os.environ["HUB_MODELS_CACHE"] = _SESSION_CACHE
atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)

# huggingface_hub resolves these paths from the environment once, at import time (huggingface_hub.constants);
# the fixtures below patch both the variables and the module attributes.
HF_HOME_PATHS = {
    "HF_HUB_CACHE": "hub",
    "HUGGINGFACE_HUB_CACHE": "hub",
    "HF_ASSETS_CACHE": "assets",
    "HF_XET_CACHE": "xet",
    "HF_TOKEN_PATH": "token",
    "HF_STORED_TOKENS_PATH": "stored_tokens",
    "AGENT_HARNESSES_PATH": ".agent_harnesses.json",
    "CHECK_FOR_UPDATE_DONE_PATH": ".check_for_update_done",
}


def isolate_hf_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every huggingface_hub cache/token path at ``home``; returns the hub cache directory."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    for name, rel in HF_HOME_PATHS.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, str(home / rel))
        if name in ("HF_HUB_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE", "HF_TOKEN_PATH"):
            monkeypatch.setenv(name, str(home / rel))
    for var in ("HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    return home / "hub"


def set_hf_offline(monkeypatch: pytest.MonkeyPatch, offline: bool) -> None:
    """Switch huggingface_hub's offline mode (read through ``constants.HF_HUB_OFFLINE`` at call time)."""
    from huggingface_hub import constants

    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private Hugging Face home; yields its hub cache dir (``HF_HUB_CACHE``). No network, no server."""
    return isolate_hf_home(tmp_path / "hf_home", monkeypatch)


@pytest.fixture
def local_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A fake Hub (tests/hub_server.py) on 127.0.0.1, with huggingface_hub pointed at it and a private cache.

    Yields the running :class:`hub_server.LocalHub` (``.endpoint``, ``.repo_dir``, ``.repos``, ``.requests``,
    ``.files(repo_id, revision)``). ``HF_TOKEN`` is set to a dummy token (the fake accepts any); delete it with
    ``monkeypatch.delenv("HF_TOKEN")`` to act anonymously.
    """
    from hub_server import LocalHub
    from huggingface_hub import constants

    hub = LocalHub(tmp_path / "hub_repos").start()
    try:
        isolate_hf_home(tmp_path / "hf_home", monkeypatch)
        set_hf_offline(monkeypatch, False)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setenv("HF_TOKEN", "hf_local_test_token")
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        # The fake speaks Git LFS but not Xet (see hub_server.py): take huggingface_hub's path without hf_xet.
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="session", autouse=True)
def space_install(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The Spaces builder's pip install (``space_build.SpaceInstall``), started with the session when the
    builder check is selected and enabled (HUB_MODELS_SPACE_BUILD, which .ci/run sets); None otherwise."""
    wanted = any(item.name == "test_the_spaces_builder" for item in request.session.items)
    if not (wanted and os.environ.get("HUB_MODELS_SPACE_BUILD")):
        yield None
        return
    from space_build import SpaceInstall

    install = SpaceInstall(tmp_path_factory.mktemp("space_build"))
    yield install
    install.close()
