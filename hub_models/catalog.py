"""What ``hub-models list`` shows of each installed model, without importing torch when nothing changed.

A model's facts (its output, declared inputs, card summary, declared Hub repo) live on its class, and importing
any plugin imports torch (seconds). The first listing imports them all through the registry and keeps the facts in
``catalog.json`` in hub-models' cache (``hub_models.cache``), under a fingerprint of the installed entry
points (name, target, distribution and version) and of every ``.py`` file of the packages that provide them
(path, size, modification time). A later listing with the same fingerprint reads the file and imports nothing
but the standard library; any install, uninstall or edit of a plugin changes the fingerprint and lists afresh.
A listing with a broken plugin is never kept (the import error is shown as it is now). Where the weights come
from (local copy, or the Hub repo at its pinned revision) is worked out each time, as it depends on files and on
``HUB_MODELS_ORG``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import types
import warnings
from pathlib import Path
from typing import Any

from . import locations
from .cache import cache_dir
from .errors import HubModelsWarning

FORMAT = 1  # bump when the kept facts change


@dataclasses.dataclass(frozen=True)
class Entry:
    """One model as ``hub-models list`` shows it."""

    model_id: str
    output: str
    inputs: tuple[str, ...]
    summary: str
    module: str
    hub_repo: str | None = None
    hub_revision: str | None = None

    def weights(self) -> str:
        """ "local copy", or the Hub repo and revision its weights come from."""
        cls: Any = types.SimpleNamespace(
            model_id=self.model_id, __module__=self.module, hub_repo=self.hub_repo, hub_revision=self.hub_revision
        )
        if locations.has_local_copy(cls):
            return "local copy"
        return f"{locations.hub_repo_id(cls)}@{locations.pinned_revision(cls)}"


@dataclasses.dataclass(frozen=True)
class Catalog:
    entries: list[Entry]
    broken: dict[str, str]  # model id -> import error
    conflicts: list[str]  # one message per model id registered twice
    cached: bool  # read from the cache file, nothing imported


def cache_file() -> Path:
    return cache_dir("catalog.json")


def fingerprint() -> str:
    """A digest of the installed entry points and of the source files of the packages behind them."""
    digest = hashlib.sha256(f"{FORMAT}".encode())
    packages = set()
    for ep in locations.entry_points():
        digest.update(f"{ep.name}={ep.value} {locations.dist_name(ep)} {locations.dist_version(ep)}\n".encode())
        packages.add(ep.value.split(":")[0].split(".")[0])
    for package in sorted(packages):
        spec = importlib.util.find_spec(package)  # a top-level name: found on sys.path, nothing imported
        for root in sorted(spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(root).rglob("*.py")):
                stat = path.stat()
                digest.update(f"{path} {stat.st_size} {stat.st_mtime_ns}\n".encode())
        if spec is not None and not spec.submodule_search_locations and spec.origin:  # a single-module plugin
            stat = Path(spec.origin).stat()
            digest.update(f"{spec.origin} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def catalog() -> Catalog:
    """Every installed model's facts: from the cache file when the fingerprint matches, else from the classes."""
    stamp = fingerprint()
    try:
        kept = json.loads(cache_file().read_text(encoding="utf-8"))
        if kept.get("fingerprint") == stamp:
            entries = [Entry(**{**e, "inputs": tuple(e["inputs"])}) for e in kept["entries"]]
            return Catalog(entries, {}, list(kept["conflicts"]), cached=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no cache yet, or one this version cannot read: list afresh
    fresh = _from_classes()
    if not fresh.broken:
        _keep(stamp, fresh)
    return fresh


def _from_classes() -> Catalog:
    from .registry import conflicts, get_model_class, list_models, plugin_errors

    entries = []
    for model_id in list_models():
        with warnings.catch_warnings():  # a clash is this catalog's own line (CONFLICT), not a warning as well
            warnings.simplefilter("ignore", HubModelsWarning)
            cls = get_model_class(model_id)
        entries.append(
            Entry(
                model_id=model_id,
                output=cls.output,
                inputs=tuple(spec.name for spec in cls.inputs),
                summary=" ".join(cls.card.summary.split()),  # whole: "et al., 2016" holds a full stop
                module=cls.__module__,
                hub_repo=getattr(cls, "hub_repo", None),
                hub_revision=getattr(cls, "hub_revision", None),
            )
        )
    return Catalog(entries, plugin_errors(), [c.message() for c in conflicts()], cached=False)


def _keep(stamp: str, fresh: Catalog) -> None:
    """Write the cache file atomically; a read-only or full cache directory only costs the next listing time."""
    from .utils import atomic_path

    document = {
        "fingerprint": stamp,
        "entries": [dataclasses.asdict(e) for e in fresh.entries],
        "conflicts": fresh.conflicts,
    }
    try:
        with atomic_path(cache_file()) as tmp:
            tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    except OSError:
        pass
