"""The Gradio demo: four model tabs plus "All models" (any installed plugin), Space-ready.

``hub-models demo`` and ``python demo/app.py`` (through the CLI's one parser) call :func:`launch`; ``build_app()``
returns the Blocks.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
import torch

from ..errors import HubModelsError
from ..registry import get_model_class, list_models, plugin_errors
from .handlers import (
    DECODES,
    Handlers,
    check_image_header,
    class_choices,
    friendly,
    friendly_stream,
    tab_models,
    user_error,
    vae_id,
)
from .store import ModelStore

MAX_UPLOAD = "10mb"
# Requests computed at once. More workers than cores, each with a one-thread torch pool: a request is half
# GIL-bound Python (Gradio's queue, PNG bookkeeping) and half GIL-free kernels, and overlapping them is what
# uses both cores. Measured on 2 cores, 8 clients of 16 faces: 48 req/s with 2 workers, 52 with 4, 57 with 8.
CONCURRENCY = int(os.environ.get("HUB_MODELS_DEMO_CONCURRENCY", "8"))
CACHE_CLEANUP = (3600, 3600)  # (every, older than) seconds
QUEUE_SIZE = 64  # waiting requests beyond this get "queue full" at once instead of a long wait
# Long jobs (a live training runs for seconds to minutes) get their own concurrency group and a cap on how many
# may wait: Gradio's queue limit is app-wide, so without it 64 queued trainings would lock every visitor out.
TRAIN_GROUP, TRAIN_CONCURRENCY, TRAIN_QUEUE = "train-live", 1, 8
BUSY = "busy: {n} live trainings are already waiting; try again in a minute (the other tabs answer meanwhile)"
CSS = (
    ".pixelated img { image-rendering: pixelated; }"
    # the face grid comes at the size to show it (see handlers.faces_grid): as is, at most the column's width
    " #face-grid img { width: auto; height: auto; max-width: 100%; max-height: 75vh; object-fit: contain; }"
)
INTRO = (
    "# hub-models\nClassic generative models — DCGAN, conditional GANs, a VAE and toy GANs — as plugins with "
    "weights on the Hugging Face Hub. Face weights were trained on CelebA: non-commercial research use only."
)


# The model each tab opens on when it is installed and loads (the first model of its kind); the tab's list still
# comes from the plugins' declarations.
TAB_DEFAULTS = {"faces": "dcgan-faces", "classes": "cgan-digits", "points": "gan-toy2d"}


def _installed(tab: str, store: ModelStore) -> list[str]:
    """The tab's models (chosen by their declarations), those whose weights resolve first (the default choice)."""
    models = sorted(tab_models(tab), key=lambda m: m != TAB_DEFAULTS.get(tab))
    return store.prefer_ready(models)


def _class_dropdown(model_id: str | None, value: str | None = None) -> gr.Dropdown:
    """The class picker for a conditional model: its conditioning input's choices ("all" shown as "all digits")."""
    choices = class_choices(model_id) if model_id else ()
    pairs = [("all digits" if c == "all" else c, c) for c in choices]
    default = value if value in choices else (choices[0] if choices else None)
    return gr.Dropdown(pairs, value=default, label="digit")


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
                except gr.Error:
                    raise
                except Exception:
                    name = getattr(_block, "label", None) or _block.get_block_name()
                    raise user_error(f"{name}: {payload!r:.60} is not a valid value for this field") from None

            block.preprocess = safe  # type: ignore[method-assign]
            block._hub_models_guarded = True


def _field(spec: Any) -> gr.components.Component:
    """A form field for one declared plugin input (the contract's ``Input``): any plugin gets a form.

    interactive=True: Gradio decides whether a component is editable from the events that read it, and these
    fields, made inside @gr.render, came out disabled (a plugin's digit or ψ could not be changed)."""
    label, info, editable = spec.label or spec.name, spec.help or None, {"interactive": True}
    if spec.kind == "choice":
        return gr.Dropdown([str(c) for c in spec.choices], value=str(spec.default), label=label, info=info, **editable)
    if spec.kind in ("int", "float"):
        if spec.minimum is not None and spec.maximum is not None:
            step = 1 if spec.kind == "int" else 0.01
            return gr.Slider(spec.minimum, spec.maximum, value=spec.default, step=step, label=label, info=info,
                             **editable)  # fmt: skip
        return gr.Number(spec.default, label=label, info=info, precision=0 if spec.kind == "int" else None,
                         minimum=spec.minimum, maximum=spec.maximum, **editable)  # fmt: skip
    return gr.Textbox(str(spec.default), label=label, info=info, **editable)  # a kind this app does not know yet


class Waiting:
    """Long jobs admitted to Gradio's queue and not started yet, counted here: Gradio 6's only queue limit
    (``queue(max_size=...)``) is app-wide, with no public per-event one, so the surplus is refused before it is
    queued, by the event's validator (which Gradio runs when a request arrives, before queueing it).

    A ticket is taken when a request is admitted and given back when a job starts (the oldest: one concurrency
    group runs its events in order), when the visitor's session ends (the page's unload, for an event Gradio
    drops from its queue when the tab closes), or ``abandon_after_s`` after admission (an API client that
    went away: its event left Gradio's queue without telling anyone)."""

    def __init__(self, limit: int, abandon_after_s: float = 600) -> None:
        self.limit, self.abandon_after_s = limit, abandon_after_s
        self._tickets: list[tuple[float, str | None]] = []  # (admitted at, session), oldest first
        self._lock = threading.Lock()

    def admit(self, session: str | None = None) -> int | None:
        """Take a ticket: None when admitted, else how many already wait."""
        with self._lock:
            cutoff = time.monotonic() - self.abandon_after_s
            self._tickets = [t for t in self._tickets if t[0] >= cutoff]
            if len(self._tickets) >= self.limit:
                return len(self._tickets)
            self._tickets.append((time.monotonic(), session))
            return None

    def started(self) -> None:
        with self._lock:
            if self._tickets:
                self._tickets.pop(0)

    def forget(self, session: str | None) -> None:
        if session is not None:
            with self._lock:
                self._tickets = [t for t in self._tickets if t[1] != session]

    def __len__(self) -> int:
        return len(self._tickets)


def _admission(waiting: Waiting) -> Any:
    """The validator of "train live": a clear "busy" for the surplus, at once, instead of a place in the queue."""

    def check(target: Any, steps: Any, seed: Any, request: gr.Request) -> list[dict[str, Any]]:
        busy = waiting.admit(request.session_hash)
        ok = busy is None
        return [gr.validate(ok, "" if ok else BUSY.format(n=busy)), gr.validate(True, ""), gr.validate(True, "")]

    return check


def build_app(store: ModelStore | None = None) -> gr.Blocks:
    store = store or ModelStore()
    h = Handlers(store)
    describe = friendly(h.describe)
    # every request leaves a PNG in Gradio's cache: a long-running Space must delete them (hourly, an hour old)
    with gr.Blocks(title="hub-models", delete_cache=CACHE_CLEANUP) as app:
        gr.Markdown(INTRO)
        gr.Markdown(f"Running on **{store.device}**.")
        with gr.Tab("DCGAN faces"):
            faces = _installed("faces", store)
            f_info = gr.Markdown(elem_classes="tab-line")
            with gr.Row():
                f_model = gr.Dropdown(faces, value=faces[0], label="model")
                f_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                f_count = gr.Slider(1, 64, value=16, step=1, label="count")
                f_psi = gr.Slider(0.1, 1.0, value=1.0, step=0.05, label="truncation ψ",
                                  info="< 1 trades variety for quality (latents scaled by ψ)")  # fmt: skip
            f_go = gr.Button("Generate", variant="primary")
            f_grid = gr.Image(label="faces (8 per row; download saves the PNG)", format="png", type="filepath",
                              elem_classes="pixelated", elem_id="face-grid",
                              buttons=["download", "fullscreen"])  # fmt: skip
            f_go.click(friendly(h.faces), [f_model, f_seed, f_count, f_psi], f_grid, api_name="faces")
            gr.Markdown("**Interpolation**: the faces on the path between the latents of two seeds (same ψ).")
            with gr.Row():
                i_a = gr.Number(1, label="seed A", precision=0, minimum=0)
                i_b = gr.Number(2, label="seed B", precision=0, minimum=0)
                i_steps = gr.Slider(2, 32, value=8, step=1, label="steps")
            i_go = gr.Button("Interpolate")
            i_strip = gr.Image(label="strip", format="png", type="filepath", elem_classes="pixelated")
            i_anim = gr.Image(label="animation", type="filepath")
            i_caption = gr.Markdown()
            i_go.click(friendly(h.interpolate), [f_model, i_a, i_b, i_steps, f_psi], [i_strip, i_anim, i_caption],
                       api_name="interpolate")  # fmt: skip

        with gr.Tab("CGAN digit picker"):
            digits = _installed("classes", store)
            d_info = gr.Markdown(elem_classes="tab-line")
            with gr.Row():
                d_model = gr.Radio(digits, value=digits[0] if digits else None, label="model variant")
                d_digit = _class_dropdown(digits[0] if digits else None)
                d_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                d_count = gr.Slider(1, 100, value=100, step=1, label="count")
            d_go = gr.Button("Generate", variant="primary")
            d_image = gr.Image(label="digits", format="png", type="filepath", elem_classes="pixelated", height=560)
            d_file = gr.File(label="download (PNG)")
            d_go.click(friendly(h.digits), [d_model, d_digit, d_seed, d_count], [d_image, d_file], api_name="digits")
            d_model.change(lambda m, v: _class_dropdown(m, v), [d_model, d_digit], d_digit, api_visibility="private")

        with gr.Tab("VAE reconstruction"):
            v_info = gr.Markdown(elem_classes="tab-line")
            with gr.Row():
                pen = gr.Brush(default_size=20, colors=["#000000"], default_color="#000000", color_mode="fixed")
                v_sketch = _guard_upload(
                    gr.Sketchpad(label="draw a digit", type="numpy", canvas_size=(280, 280), fixed_canvas=True,
                                 brush=pen, layers=False, transforms=(), height=360),
                    "drawing",
                )  # fmt: skip
                # image_mode=None: Gradio hands over the file as uploaded (no RGB conversion, which decodes the
                # whole picture and turns a transparent background black); the handler decodes it, bounded
                v_upload = _guard_upload(
                    gr.Image(label="…or upload a picture", type="filepath", sources=["upload"], image_mode=None),
                    "upload",
                )
            # the latest of the two is the input: an upload clears the drawing, drawing clears the upload
            v_upload.upload(lambda: None, None, v_sketch, api_visibility="private", show_progress="hidden")
            v_sketch.input(lambda: None, None, v_upload, api_visibility="private", show_progress="hidden")
            with gr.Row():
                v_go = gr.Button("Reconstruct the drawing / upload", variant="primary")
            with gr.Row():
                last = len(h.test_set()) - 1
                v_example = gr.Slider(0, last, value=0, step=1, label=f"MNIST test-set example (0-{last})")
                v_ex_go = gr.Button("Reconstruct this test example")
            v_out = gr.Image(label="input | reconstruction", format="png", type="pil", elem_classes="pixelated",
                             height=300)  # fmt: skip
            v_err = gr.Markdown()
            v_go.click(friendly(h.vae_reconstruct), [v_sketch, v_upload], [v_out, v_err], api_name="vae_reconstruct")
            v_ex_go.click(friendly(h.vae_example), v_example, [v_out, v_err], api_name="vae_example")
            with gr.Row():
                s_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                s_count = gr.Slider(1, 100, value=64, step=1, label="samples from the prior")
                w_x = gr.Slider(0, 19, value=0, step=1, label="walk: x dimension")
                w_y = gr.Slider(0, 19, value=1, step=1, label="walk: y dimension")
                w_steps = gr.Slider(2, 20, value=10, step=1, label="walk: steps")
            with gr.Row():
                s_go = gr.Button("Sample the prior")
                w_go = gr.Button("Latent walk")
            s_out = gr.Image(label="samples / walk", format="png", type="pil", elem_classes="pixelated")
            s_go.click(friendly(h.vae_sample), [s_seed, s_count], s_out, api_name="vae_sample")
            w_go.click(friendly(h.vae_walk), [s_seed, w_x, w_y, w_steps], s_out, api_name="vae_walk")

        with gr.Tab("2-D toy distribution"):
            t_info = gr.Markdown(elem_classes="tab-line")
            with gr.Row():
                toys = _installed("points", store)
                t_target = gr.Radio(toys, value=toys[0] if toys else None, label="model (its target distribution)")
                t_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                t_steps = gr.Slider(10, 5000, value=1000, step=10, label="training steps")
            with gr.Row():
                t_show = gr.Button("Show bundled model", variant="primary")
                t_train = gr.Button("Train live")
            # show_label=False: Gradio 6 sizes the chart to the block's height without the label above it, so a
            # label pushed the legend (below the chart) out of the block, clipped; the legend names the colours
            t_plot = gr.ScatterPlot(x="x", y="y", color="set", label="target vs generated points", show_label=False,
                                    elem_id="toy-plot", height=420, x_title="x", y_title="y", color_title="points",
                                    color_map={"target": "#94a3b8", "generated": "#ea580c"})  # fmt: skip
            t_text = gr.Markdown()
            t_show.click(friendly(h.toy_show), [t_target, t_seed], [t_plot, t_text], api_name="toy_show")
            # progress only as the small timer: the full overlay would hide the plot that is the point of it
            waiting = Waiting(TRAIN_QUEUE)

            def train(target: str, steps: Any, seed: Any) -> Any:
                waiting.started()
                yield from friendly_stream(h.toy_train)(target, steps, seed)

            t_train.click(train, [t_target, t_steps, t_seed], [t_plot, t_text], api_name="toy_train",
                          concurrency_id=TRAIN_GROUP, concurrency_limit=TRAIN_CONCURRENCY,
                          validator=_admission(waiting), show_progress="minimal")  # fmt: skip

            def closed(request: gr.Request) -> None:  # the tab closed: Gradio drops its queued events
                waiting.forget(request.session_hash)

            app.unload(closed)

        with gr.Tab("All models"):
            models = store.prefer_ready(list_models())
            with gr.Row():
                a_model = gr.Dropdown(models, value=models[0] if models else None, label="model")
                a_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                a_count = gr.Slider(1, 100, value=16, step=1, label="count")
            a_info = gr.Markdown(elem_classes="tab-line")

            @gr.render(inputs=a_model)
            def form(model_id: str) -> None:
                if not model_id:
                    return
                fields = [_field(spec) for spec in get_model_class(model_id).inputs]
                go = gr.Button("Generate", variant="primary")
                names = [spec.name for spec in get_model_class(model_id).inputs]

                def run(seed: Any, count: Any, *values: Any) -> Any:
                    return friendly(h.generic)(model_id, seed, count, json.dumps(dict(zip(names, values))))

                go.click(run, [a_seed, a_count, *fields], [a_out, a_file], api_visibility="private")

            a_out = gr.Image(label="samples", format="png", type="filepath", elem_classes="pixelated")
            a_file = gr.File(label="download (PNG)")
            # a fixed endpoint for API clients: inputs as JSON
            api_json = gr.Textbox(visible=False)
            api_btn = gr.Button(visible=False)
            api_btn.click(
                friendly(h.generic), [a_model, a_seed, a_count, api_json], [a_out, a_file], api_name="generate"
            )
            broken = plugin_errors()
            if broken:
                gr.Markdown("Plugins that failed to load: " + "; ".join(f"`{k}`: {v}" for k, v in broken.items()))

        # each tab's one line (what the model is, its measured quality), kept in step with the chosen model
        gr.on([app.load, f_model.change], describe, f_model, f_info, api_name="describe", show_progress="hidden")
        for trigger, source, info in ((d_model.change, d_model, d_info), (a_model.change, a_model, a_info)):
            gr.on([app.load, trigger], describe, source, info, api_visibility="private", show_progress="hidden")
        gr.on([app.load, t_target.change], describe, t_target, t_info, api_visibility="private", show_progress="hidden")
        app.load(lambda: describe(vae_id()), None, v_info, api_visibility="private", show_progress="hidden")
    _guard_inputs(app)
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
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
    store = ModelStore(weights)
    if store.device == "cpu":  # one intra-op thread pool per concurrent request, not all of them on every core
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))
    app = build_app(store)
    kwargs.setdefault("max_file_size", MAX_UPLOAD)
    # `kill`/docker stop send SIGTERM: exit normally so atexit removes the app's temporary files
    if threading_is_main():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app.launch(server_name=host, server_port=port, share=share, css=CSS, **kwargs)
    return app


def threading_is_main() -> bool:
    return threading.current_thread() is threading.main_thread()
