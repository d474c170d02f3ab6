"""The Gradio demo: four model tabs plus "All models" (any installed plugin), Space-ready.

``hub-models demo`` and ``python demo/app.py`` (through the CLI's one parser) call :func:`launch`; ``build_app()``
returns the Blocks. Each tab is one function in ``tabs.py``; what its buttons do is in ``handlers.py``.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import threading
import time  # noqa: F401 - the tests move Waiting's clock through it
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
import torch

from ..errors import HubModelsError
from ..registry import get_model_class, list_models
from .checks import check_image_header, friendly, quote, user_error, vae_id
from .handlers import DECODES, Handlers
from .links import restore
from .runfiles import claim_gradio_cache, remove_leftovers, remove_own_files, start_sweeping
from .store import ModelStore
from .tabs import all_models_tab, digits_tab, faces_tab, toy_tab
from .vae_tab import PICK_BRUSH, vae_tab
from .waiting import BUSY, Waiting

__all__ = ["BUSY", "CACHE_CLEANUP", "Waiting", "build_app", "launch", "weights_option"]

MAX_UPLOAD = "10mb"
# Requests computed at once. More workers than cores, each with a one-thread torch pool: a request is half
# GIL-bound Python (Gradio's queue, PNG bookkeeping) and half GIL-free kernels, and overlapping them is what
# uses both cores. Measured on 2 cores, 8 clients of 16 faces: 48 req/s with 2 workers, 52 with 4, 57 with 8.
CONCURRENCY = int(os.environ.get("HUB_MODELS_DEMO_CONCURRENCY", "8"))
# (every, older than) seconds: the served files of the last 15 minutes stay on disk ("60,120" in the environment
# for a soak test that shows the disk staying bounded)
CACHE_CLEANUP = tuple(map(int, os.environ.get("HUB_MODELS_DEMO_CACHE_CLEANUP", "300,900").split(",")))
SESSIONS = 200  # sessions whose state Gradio keeps (a visitor's changed dropdowns, the rendered form), oldest out
QUEUE_SIZE = 64  # waiting requests beyond this get "queue full" at once instead of a long wait
CSS = (
    ".pixelated img { image-rendering: pixelated; }"
    # the face grid comes at the size to show it (see handlers.faces_grid): as is, at most the column's width
    " #face-grid img, #face-strip img { width: auto; height: auto; max-width: 100%; max-height: 80vh;"
    " object-fit: contain; }"
    # at phone width a grid of 8 faces a row drawn in the column's width made 38 px faces: up to twice the screen's
    # width (faces of about 100 px), in frames as wide as the picture (not centred: its left edge stays in reach),
    # scrolled sideways
    " @media (max-width: 640px) { #face-grid, #face-strip { overflow-x: auto !important; }"
    " #face-grid img, #face-strip img { max-width: 200vw; max-height: none; }"
    " :is(#face-grid, #face-strip) :is(.image-container, .image-container > button, .image-frame)"
    " { width: max-content; min-width: 100%; } }"
    " .result-heading p { margin: 0; }"
)
INTRO = (
    "# hub-models\nClassic generative models — DCGAN, conditional GANs, a VAE and toy GANs — as plugins with "
    "weights on the Hugging Face Hub. Face weights were trained on CelebA: non-commercial research use only."
)


def _file_paths(payload: Any) -> list[str]:
    """Every uploaded file's path in a component's payload (an image, or an editor's background/layers)."""
    data = payload.model_dump() if hasattr(payload, "model_dump") else payload
    if isinstance(data, dict):
        own = [data["path"]] if isinstance(data.get("path"), str) else []
        return own + [p for v in data.values() if isinstance(v, dict | list) for p in _file_paths(v)]
    if isinstance(data, list):
        return [p for v in data for p in _file_paths(v)]
    return []


def _guard_upload(component: gr.components.Component, what: str) -> gr.components.Component:
    """Check an uploaded image's dimensions from its header before anything decodes it (a 200 KB PNG can hold
    13000x13000 pixels: 2.5 GB decoded), bound how many decode at once, and turn a file that is not a readable
    image into a one-line toast instead of a processing error."""
    preprocess = component.preprocess

    def safe(payload: Any) -> Any:
        try:
            for path in _file_paths(payload):
                check_image_header(path)
            with DECODES:
                return preprocess(payload)
        except HubModelsError as exc:
            raise user_error(str(exc)) from None
        except gr.Error:
            raise
        except Exception:  # PIL's UnidentifiedImageError, truncated files, bad payloads
            raise user_error(f"the {what} is not a readable image: upload a PNG, JPEG, WebP, BMP or GIF") from None

    component.preprocess = safe  # type: ignore[method-assign]
    return component


def _guard_inputs(app: gr.Blocks) -> None:
    """A value of the wrong type sent to the API (a word for a seed) gets a message naming the field, not a bare
    ``{"error": null}``: Gradio shows only gr.Error texts to visitors (show_error=False), so convert."""
    seen: set[int] = set()
    for fn in app.fns.values():
        for block in fn.inputs:
            if block._id in seen or getattr(block, "_hub_models_guarded", False):
                continue
            seen.add(block._id)
            preprocess = block.preprocess

            def safe(payload: Any, _pre: Any = preprocess, _block: Any = block) -> Any:
                try:
                    return _pre(payload)
                except Exception as exc:
                    raise user_error(rejected(_block, payload, exc)) from None

            block.preprocess = safe  # type: ignore[method-assign]
            block._hub_models_guarded = True


def rejected(block: Any, payload: Any, exc: Exception) -> str:
    """The one-line message for a value a field's own checks refused, quoting at most ~100 characters of it."""
    name = getattr(block, "label", None) or block.get_block_name()
    if isinstance(exc, gr.Error) and not isinstance(exc, HubModelsError):
        message = str(exc.message)
        if "not in the list of choices" in message:
            choices = [str(c[1] if isinstance(c, tuple) else c) for c in getattr(block, "choices", [])]
            return f"{name}: {quote(payload)} is not in the list of choices ({quote(', '.join(choices))})"
        if len(message) <= 200:  # Gradio's bounds messages ("Value 65 is greater than maximum value 64.")
            return f"{name}: {message}"
    return f"{name}: {quote(payload)} is not a valid value for this field"


class DemoBlocks(gr.Blocks):
    """Blocks whose requests that do not fit an endpoint (too few values, a file payload of the wrong shape)
    get a one-line message for the client instead of a traceback in the server log: they are the caller's
    mistake, not the app's."""

    def validate_inputs(self, block_fn: Any, inputs: list[Any]) -> None:
        if len(inputs) < len(block_fn.inputs):
            names = ", ".join(getattr(b, "label", None) or b.get_block_name() for b in block_fn.inputs)
            raise user_error(f"this endpoint takes {len(block_fn.inputs)} values ({names}); got {len(inputs)}")

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False):
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error as exc:
            if exc.print_exception:
                raise user_error(str(exc.message)[:300]) from None
            raise
        except Exception:  # pydantic's ValidationError for a malformed file payload, a stray type
            raise user_error("the values sent do not fit this endpoint's inputs (see its API page)") from None


def build_app(store: ModelStore | None = None) -> gr.Blocks:
    """The demo's Blocks: every tab opens on its result for the default controls (computed once, here), and a
    link in the page's address (``?tab=faces&seed=3``) restores a tab's controls and result."""
    store = store or ModelStore()
    h = Handlers(store)
    describe = friendly(h.describe)
    # every request leaves a PNG in Gradio's cache: a long-running Space must delete them (see runfiles.sweep)
    with DemoBlocks(title="hub-models") as app:
        gr.Markdown(INTRO)
        gr.Markdown(f"Running on **{store.device}**.")
        with gr.Tabs(overflow_behavior="wrap") as tabs:  # at phone width every tab stays in sight (not a menu)
            with gr.Tab("DCGAN faces", id="faces"):
                faces, f_model, f_info = faces_tab(h, store)
            with gr.Tab("CGAN digit picker", id="digits"):
                digits, d_model, d_info = digits_tab(h, store)
            with gr.Tab("VAE reconstruction", id="vae") as v_tab:
                vae, v_info = vae_tab(h, store, _guard_upload)
            with gr.Tab("2-D toy distribution", id="toy"):
                toy, t_model, t_info = toy_tab(h, store, app)
            with gr.Tab("All models", id="all"):
                every, a_model, a_info = all_models_tab(h, store)
        # the sketchpad opens with no tool selected (a first stroke drew nothing): pick its brush
        v_tab.select(None, None, None, js=PICK_BRUSH, api_visibility="private")
        shared = [faces, digits, vae, toy, every]
        linked = [c for t in shared for c in (*t.controls.values(), *t.outputs, t.link)]
        app.load(restore(store, shared, tabs), None, [tabs, *linked], api_visibility="private", show_progress="hidden")
        # the line for API and MCP clients, about any installed model (made first: its name is "describe")
        any_model = gr.Dropdown(list_models(), label="model", visible=False)
        gr.Button(visible=False).click(describe, any_model, gr.Markdown(label="about the model", visible=False),
                                       api_name="describe", api_description="One line about any installed model: "
                                       "what it is and its measured quality.")  # fmt: skip
        # each tab's one line (what the model is, its measured quality), kept in step with the chosen model
        for model, info in ((f_model, f_info), (d_model, d_info), (a_model, a_info), (t_model, t_info)):
            gr.on([app.load, model.change], describe, model, info, api_visibility="private", show_progress="hidden")
        app.load(lambda: describe(vae_id()), None, v_info, api_visibility="private", show_progress="hidden")
    _guard_inputs(app)
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    start_sweeping(app, *CACHE_CLEANUP)
    return app


def weights_option(items: list[str]) -> dict[str, str]:
    """``--weights MODEL=REF`` values → {model id: ref}, model ids exactly as listed (dashes kept)."""
    weights = {}
    for item in items:
        model_id, sep, ref = item.partition("=")
        model_id, ref = model_id.strip(), ref.strip()
        if not sep or not model_id or not ref:
            raise HubModelsError(f"--weights {item!r} must look like MODEL=REF, e.g. dcgan-faces=org/name@v1")
        get_model_class(model_id)  # an unknown id fails here, naming the installed ones
        weights[model_id] = ref
    return weights


def launch(host: str | None = None, port: int | None = None, share: bool = False,
           weights: dict[str, str] | None = None, **kwargs: Any) -> gr.Blocks:  # fmt: skip
    remove_leftovers()  # what earlier runs of the demo left when they were killed (their own folders only)
    claim_gradio_cache()
    atexit.register(remove_own_files)
    store = ModelStore(weights)
    if store.device == "cpu":  # one intra-op thread pool per concurrent request, not all of them on every core
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))
    app = build_app(store)
    kwargs.setdefault("max_file_size", MAX_UPLOAD)
    # each session Gradio remembers holds a copy of the page's configuration (~150 KB): 10,000 by default, which
    # grew the process by gigabytes under API traffic from fresh sessions
    kwargs.setdefault("state_session_capacity", SESSIONS)
    if threading_is_main():
        signal.signal(signal.SIGTERM, terminate)
    # an MCP server beside the page (one tool per named endpoint) where Gradio's MCP extra is installed, as on a Space
    kwargs.setdefault("mcp_server", importlib.util.find_spec("mcp") is not None)
    app.launch(server_name=host, server_port=port, share=share, css=CSS, **kwargs)
    return app


def terminate(*_: Any) -> None:
    """SIGTERM (`kill`, a container stop, which kills 10 s later): remove this run's files and exit now. A normal
    exit waited for running requests (a live training: minutes) and took 30 s after heavy traffic."""
    remove_own_files()
    os._exit(0)


def threading_is_main() -> bool:
    return threading.current_thread() is threading.main_thread()
