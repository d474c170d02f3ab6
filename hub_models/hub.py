"""The way to the Hub (``push_model``) and the operations over every model of the registry: publish them all, push
a training run, regenerate the bundled cards.

They sit above :mod:`hub_models.registry` (they look models up by id), which sits above the per-model code in
:mod:`hub_models.weights` and :mod:`hub_models.card` that they drive. ``hub_models.publish`` is :func:`publish`.

``python -m hub_models.hub`` rewrites the card (and config.json) of every local checkpoint from its config.json
(``python -m hub_models.hub MODEL ...`` for some of them).
"""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WeightsError
from .locations import (
    ASSETS,
    CONFIG_NAME,
    RECIPE_NAME,
    WEIGHTS_NAME,
    bundled_dir,
    has_local_copy,
    hub_asset_repo_id,
    hub_repo_id,
    pinned_revision,
    recipe_path,
)
from .registry import get_model_class, get_trainable_class, list_models
from .version import __version__
from .weights import MODEL_FILES, hub_errors, load_weights, parse_repo_ref, rewrite_docs

if TYPE_CHECKING:
    from .contract import GenerativeModel


def push(
    directory: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    logs: str | Path | None = None,
    token: str | None = None,
) -> str:
    """Upload a checkpoint directory (and its TensorBoard logs under ``runs/``) to a Hub repo via ``push_model``."""
    directory = Path(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise WeightsError(f"{directory} has no {name}: push a directory written by `hub-models train`")
    if parse_repo_ref(repo_id) is None or "@" in repo_id:
        raise WeightsError.worded(
            f"invalid repo id {repo_id!r}: use org/name (and {{branch}} for a branch)",
            branch=("revision=", "--revision"),
        )
    if logs is not None and not Path(logs).is_dir():
        raise WeightsError(f"logs directory {logs} does not exist: pass the run's logs/ directory or leave it out")
    try:
        model_type = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))["model_type"]
    except (ValueError, KeyError, TypeError):
        raise WeightsError(f"{directory / CONFIG_NAME} has no model_type: not a hub-models checkpoint") from None
    model = load_weights(get_model_class(model_type), directory, device="cpu")
    logs = Path(logs) if logs else directory.parent / "logs"
    return push_model(model, repo_id, private=private, branch=revision, token=token, logs=logs)


def publish(
    org: str,
    models: list[str] | None = None,
    *,
    private: bool = False,
    token: str | None = None,
    tag: bool = True,
) -> list[tuple[str, str, str]]:
    """Push every model with local weights (or ``models``) to ``org/<name>``, each tagged at its pinned revision.

    Returns (model id, repo id, commit url) per model pushed.
    """
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*", org or ""):
        raise WeightsError(f"invalid organisation {org!r}: use a Hub user or organisation name")
    ids = models or [m for m in list_models() if has_local_copy(get_model_class(m))]
    missing = [m for m in ids if not has_local_copy(get_model_class(m))]
    if missing:
        raise WeightsError(f"no local weights to publish for {', '.join(missing)}: train them or download them first")
    done = []
    for model_id in ids:
        cls = get_model_class(model_id)
        model = load_weights(cls, bundled_dir(cls), device="cpu")
        repo_id = hub_repo_id(cls, org=org)
        pin = pinned_revision(cls) if tag else None
        url = push_model(model, repo_id, private=private, token=token, recipe=recipe_path(cls), tag=pin)
        done.append((model_id, repo_id, url))
    if not models:
        done += [_publish_asset(name, org, private=private, token=token, tag=tag) for name in ASSETS]
    return done


def _publish_asset(name: str, org: str, *, private: bool, token: str | None, tag: bool) -> tuple[str, str, str]:
    """Upload the local copy of an evaluation asset (its files as they are) and pin it like the models."""
    from huggingface_hub import HfApi

    folder = Path(str(resources.files("hub_models"))) / "weights" / name
    repo_id = hub_asset_repo_id(name, org)
    api = HfApi(token=token)
    with hub_errors(f"pushing to {repo_id}", repo_id=repo_id):
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=folder, allow_patterns=MODEL_FILES, commit_message=f"Upload {name}"
        )
        if tag:
            pin_tag(api, repo_id, f"v{__version__}", "main")
    return name, repo_id, str(getattr(commit, "commit_url", commit))


def push_model(
    model: GenerativeModel,
    repo_id: str,
    *,
    private: bool = False,
    branch: str | None = None,
    token: str | None = None,
    logs: Path | None = None,
    recipe: Path | None = None,
    tag: str | None = None,
) -> str:
    """The one way to the Hub: ``model.push_to_hub`` (its card names ``repo_id``), then the recipe and the
    TensorBoard logs (under ``runs/``) in a second commit, then ``tag`` on the pushed commit. Returns the URL of
    the model's commit."""
    from huggingface_hub import HfApi

    if parse_repo_ref(repo_id) is None or "@" in repo_id:
        raise WeightsError.worded(
            f"invalid repo id {repo_id!r}: use org/name (and {{branch}} for a branch)",
            branch=("revision=", "--revision"),
        )
    api = HfApi(token=token)
    with hub_errors(f"pushing to {repo_id}", repo_id=repo_id, revision=branch):
        api.create_repo(repo_id, private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        commit = model.push_to_hub(
            repo_id,
            branch=branch,
            token=token,
            allow_patterns=MODEL_FILES,
            commit_message=f"Upload {model.model_id} with hub-models",
            model_card_kwargs={"repo_id": repo_id, "recipe": recipe is not None and recipe.is_file()},
        )
        extras: dict[str, Path] = {}
        if recipe is not None and recipe.is_file():
            extras[RECIPE_NAME] = recipe
        for event in sorted(logs.rglob("events.out.tfevents.*")) if logs and logs.is_dir() else []:
            extras[f"runs/{event.relative_to(logs).as_posix()}"] = event
        if extras:
            from huggingface_hub import CommitOperationAdd

            api.create_commit(
                repo_id,
                operations=[CommitOperationAdd(path, str(file)) for path, file in extras.items()],
                commit_message="Upload the training recipe and TensorBoard logs",
                revision=branch,
            )
        if tag:
            pin_tag(api, repo_id, tag, branch or "main")
    return str(getattr(commit, "commit_url", commit))


def pin_tag(api: Any, repo_id: str, tag: str, branch: str) -> None:
    """Tag the head of ``branch``; an existing tag must already point there (published revisions never move)."""
    refs = api.list_repo_refs(repo_id)
    head = next(ref.target_commit for ref in refs.branches if ref.name == branch)
    existing = next((ref.target_commit for ref in refs.tags if ref.name == tag), None)
    if existing is None:
        api.create_tag(repo_id, tag=tag, revision=head, tag_message=f"hub-models pinned revision {tag}")
    elif existing != head:
        raise WeightsError(
            f"{repo_id} already has tag {tag} at {existing[:12]}, not at the new head {head[:12]}: pinned "
            "revisions never move; bump the plugin's version (or its hub_revision) to publish new weights"
        )


def regenerate(model_ids: list[str] | None = None) -> list[Path]:
    """Rewrite config.json, README.md and .eval_results of every local checkpoint (or ``model_ids``), the MNIST
    classifier of the digit metrics included."""
    done = []
    for model_id in model_ids or [*list_models(), *ASSETS]:
        cls = get_trainable_class(model_id)
        if has_local_copy(cls):
            rewrite_docs(bundled_dir(cls), load_weights(cls, bundled_dir(cls), device="cpu"))
            done.append(bundled_dir(cls))
    return done


if __name__ == "__main__":
    for directory in regenerate(sys.argv[1:]):
        print(f"rewrote {directory / 'README.md'}")
