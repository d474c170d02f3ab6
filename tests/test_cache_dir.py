"""hub-models keeps everything it computes or downloads once under one folder, which the environment can move."""

from __future__ import annotations

from pathlib import Path

from hub_models import catalog
from hub_models.cache import cache_dir


def test_one_cache_folder_for_everything_kept(monkeypatch, tmp_path):
    monkeypatch.delenv("HUB_MODELS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("fid") == tmp_path / "home" / ".cache" / "hub_models" / "fid"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("digits") == tmp_path / "xdg" / "hub_models" / "digits"
    assert catalog.cache_file() == tmp_path / "xdg" / "hub_models" / "catalog.json"
    monkeypatch.setenv("HUB_MODELS_CACHE", str(tmp_path / "mine"))
    assert catalog.cache_file() == cache_dir("catalog.json") == tmp_path / "mine" / "catalog.json"


def test_the_suite_keeps_its_cache_out_of_the_users():
    from hub_models.data import faces
    from hub_models.metrics import digits, fid

    home = Path.home() / ".cache" / "hub_models"
    for folder in (faces.CACHE, digits.CACHE, fid.CACHE, catalog.cache_file()):
        assert home not in folder.parents, folder
