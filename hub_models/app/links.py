"""Shareable results: each tab's controls as URL query parameters (``?tab=faces&model=dcgan-faces&seed=3``), a link
under every result, and the page restoring the controls and the result from its URL when it opens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import gradio as gr

from ..errors import HubModelsError
from ..registry import get_model_class
from ..weights import pinned_revision
from .checks import quote
from .store import ModelStore


@dataclass
class Tab:
    """What a tab shares through links: its id in the URL, its controls by query parameter (in the order
    ``run`` takes them), its outputs, and ``run``: control values → output values (the tab's own handlers)."""

    id: str
    controls: dict[str, gr.components.Component]
    run: Callable[..., tuple]
    outputs: list[gr.components.Component] = field(default_factory=list)
    link: gr.Markdown = field(default=None)  # type: ignore[assignment]

    def defaults(self) -> list[Any]:
        return [c.value for c in self.controls.values()]


def weights_revision(store: ModelStore, model_id: str) -> str:
    """The weights a model runs with: the ref chosen for this app, else the model's pinned Hub revision."""
    return store.weights.get(model_id) or pinned_revision(get_model_class(model_id)) or "bundled"


def link_text(store: ModelStore, tab: Tab, values: list[Any]) -> str:
    """The Markdown link to the result of ``values`` in ``tab`` (relative: the page's own address)."""
    query = {"tab": tab.id}
    for name, value in zip(tab.controls, values):
        query[name] = f"{value:g}" if isinstance(value, float) else str(value)
    if "model" in query:
        query["rev"] = weights_revision(store, query["model"])
    return f"[Link to this result]({'?' + urlencode(query)}) (the same controls and picture, for anyone)"


def linker(store: ModelStore, tab: Tab) -> Callable[..., str]:
    def link(*values: Any) -> str:
        return link_text(store, tab, list(values))

    return link


def initial_results(tab: Tab, count: int) -> list[Any]:
    """The ``count`` outputs of the tab for its default controls, computed once at start and shown when the page
    opens (the outputs' initial values: Gradio keeps them out of its cache cleanup), or empty boxes when the
    model is not available."""
    try:
        return list(tab.run(*tab.defaults()))
    except (HubModelsError, gr.Error):
        return [None] * count


def restore(store: ModelStore, tabs: list[Tab], tabs_block: gr.Tabs) -> Callable[[gr.Request], dict]:
    """The page-load event: when the URL names a tab, select it, set its controls from the query and show their
    result; a value the tab refuses leaves the defaults, with the one-line reason under the result."""

    def load(request: gr.Request) -> dict:
        query = dict(request.query_params) if request else {}
        tab = next((t for t in tabs if t.id == query.get("tab")), None)
        if tab is None:
            return {}
        values = [_typed(query.get(name), default) for name, default in zip(tab.controls, tab.defaults())]
        update: dict = {tabs_block: gr.Tabs(selected=tab.id)}
        try:
            results = tab.run(*values)
        except (HubModelsError, gr.Error) as exc:
            message = getattr(exc, "message", None) or str(exc)
            return {**update, tab.link: f"⚠️ this link's values were not used: {str(message)[:200]}"}
        note = ""
        model = query.get("model")
        if model and query.get("rev") and query["rev"] != weights_revision(store, model):
            note = f" ⚠️ made with weights {quote(query['rev'])}; this app runs {weights_revision(store, model)}"
        return {
            **update,
            **dict(zip(tab.controls.values(), values)),
            **dict(zip(tab.outputs, results)),
            tab.link: link_text(store, tab, values) + note,
        }

    return load


def _typed(text: str | None, default: Any) -> Any:
    """A query value as its control holds it: a number for a number control (the handlers check its range)."""
    if text is None:
        return default
    if isinstance(default, int | float) and not isinstance(default, bool):
        try:
            number = float(text)
        except ValueError:
            return text  # the handler names the field and the problem
        return int(number) if isinstance(default, int) and number.is_integer() else number
    return text
