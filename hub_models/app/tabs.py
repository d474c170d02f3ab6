"""The demo's tabs, one function each: its controls (bounds from the model's declared inputs and the handlers'
limits, never repeated), its result shown when the page opens, and its events wired to the Handlers."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from ..registry import get_model_class, list_models, plugin_errors
from ..spec import MAX_SEED
from .checks import LIMITS, class_choices, friendly, friendly_stream, tab_models, user_error
from .handlers import Handlers
from .links import Tab, initial_results, link_text, linker
from .store import ModelStore
from .waiting import BUSY, TRAIN_CONCURRENCY, TRAIN_GROUP, TRAIN_QUEUE, Waiting

# The model each tab opens on when it is installed and loads (the first model of its kind); the tab's list still
# comes from the plugins' declarations.
TAB_DEFAULTS = {"faces": "dcgan-faces", "classes": "cgan-digits", "points": "gan-toy2d"}


def installed(tab: str, store: ModelStore) -> list[str]:
    """The tab's models (chosen by their declarations), those whose weights resolve first (the default choice)."""
    models = sorted(tab_models(tab), key=lambda m: m != TAB_DEFAULTS.get(tab))
    return store.prefer_ready(models)


def declared_input(model_id: str, name: str) -> Any:
    """A model's declared input ``name`` (its bounds, default and label are the UI's and the handlers')."""
    return next(spec for spec in get_model_class(model_id).inputs if spec.name == name)


def bounded(component: Any, lo: float, hi: float, kind: str = "integer") -> Any:
    """``component`` whose API type (the API page, the MCP tools' input schema) states its bounds as JSON Schema
    ``minimum``/``maximum``, not only in words."""
    described = component.api_info()
    component.api_info = lambda: {**described, "type": kind, "minimum": lo, "maximum": hi}
    return component


def slider(limit: str, label: str, **kwargs: Any) -> gr.Slider:
    """A slider over one of the handlers' LIMITS (lowest, highest, default): the bounds live there once."""
    lo, hi, default = LIMITS[limit]
    return bounded(gr.Slider(lo, hi, value=default, step=kwargs.pop("step", 1), label=label, **kwargs), lo, hi)


def seed_box(value: int = 0, label: str = "seed") -> gr.Number:
    return bounded(gr.Number(value, label=label, precision=0, minimum=0, maximum=MAX_SEED), 0, MAX_SEED)


def info_line() -> gr.Markdown:
    return gr.Markdown(label="about the model", elem_classes="tab-line")


def link_line(store: ModelStore, tab: Tab, elem_id: str) -> gr.Markdown:
    tab.link = gr.Markdown(link_text(store, tab, tab.defaults()), label="link", elem_id=elem_id)
    return tab.link


def with_link(event: Any, store: ModelStore, tab: Tab) -> None:
    """After the result: the link to it (its own step, so the API endpoint's outputs stay the result alone)."""
    event.then(linker(store, tab), list(tab.controls.values()), tab.link, api_visibility="private",
               show_progress="hidden")  # fmt: skip


def result_image(value: Any, label: str, **kwargs: Any) -> gr.Image:
    """A result picture under a heading of its own: Gradio's label badge sits over the picture's top-left corner
    (it hid the first face, digit or frame). The label still names the API output."""
    with gr.Column(scale=kwargs.pop("scale", None) or 1, min_width=kwargs.pop("min_width", 160)):
        gr.Markdown(f"**{label}**", elem_classes="result-heading")
        return gr.Image(value, label=label, show_label=False, **kwargs)


def faces_tab(h: Handlers, store: ModelStore) -> tuple[Tab, gr.Dropdown, gr.Markdown]:
    faces = installed("faces", store)
    info = info_line()
    with gr.Row():
        model = gr.Dropdown(faces, value=faces[0], label="model")
        seed = seed_box()
        count = slider("faces_count", "count")
        psi = declared_input(faces[0], "truncation")
        truncation = bounded(gr.Slider(psi.minimum, psi.maximum, value=psi.default, step=0.05, label=psi.label,
                                       info="< 1 trades variety for quality (latents scaled by ψ)"),
                             psi.minimum, psi.maximum, "number")  # fmt: skip
    go = gr.Button("Generate", variant="primary")
    grid_at = gr.Column()  # filled below, once the interpolation's controls exist (the first result needs them)
    gr.Markdown("**Interpolation**: the faces on the path between the latents of two seeds (same ψ).")
    with gr.Row():
        seed_a, seed_b = seed_box(1, "seed A"), seed_box(2, "seed B")
        steps = slider("interpolation_steps", "steps")
    go_path = gr.Button("Interpolate")

    def run(model_id: str, seed: Any, count: Any, psi: Any, a: Any, b: Any, n: Any) -> tuple:
        return (friendly(h.faces)(model_id, seed, count, psi), *friendly(h.interpolate)(model_id, a, b, n, psi))

    controls = {"model": model, "seed": seed, "count": count, "psi": truncation, "a": seed_a, "b": seed_b,
                "steps": steps}  # fmt: skip
    tab = Tab("faces", controls, run)
    first = initial_results(tab, 4)
    with grid_at:
        grid = result_image(first[0], "faces (download saves the PNG)", format="png", type="filepath",
                            elem_classes="pixelated", elem_id="face-grid",
                            buttons=["download", "fullscreen"])  # fmt: skip
    with gr.Row():
        strip = result_image(first[1], "the faces in between (left to right, top to bottom)", format="png",
                             type="filepath", elem_classes="pixelated", elem_id="face-strip", scale=3)  # fmt: skip
        animation = result_image(first[2], "animation", type="filepath", elem_id="face-gif", scale=1)
    caption = gr.Markdown(first[3], label="caption")
    tab.outputs = [grid, strip, animation, caption]
    link_line(store, tab, "faces-link")
    faces = go.click(friendly(h.faces), [model, seed, count, truncation], grid, api_name="faces",
                     api_description="Generate a grid of faces (PNG) from a seed with a face GAN.")  # fmt: skip
    with_link(faces, store, tab)
    path = go_path.click(
        friendly(h.interpolate),
        [model, seed_a, seed_b, steps, truncation],
        [strip, animation, caption],
        api_name="interpolate",
        api_description="The faces on the path between two seeds' latents, as a PNG and a GIF.",
    )
    with_link(path, store, tab)
    return tab, model, info


def class_dropdown(model_id: str | None, value: str | None = None) -> gr.Dropdown:
    """The class picker for a conditional model: its conditioning input's choices ("all" shown as "all digits")."""
    choices = class_choices(model_id) if model_id else ()
    pairs = [("all digits" if c == "all" else c, c) for c in choices]
    default = value if value in choices else (choices[0] if choices else None)
    return gr.Dropdown(pairs, value=default, label="digit")


def digits_tab(h: Handlers, store: ModelStore) -> tuple[Tab, gr.Radio, gr.Markdown]:
    digits = installed("classes", store)
    info = info_line()
    with gr.Row():
        model = gr.Radio(digits, value=digits[0] if digits else None, label="model variant")
        digit = class_dropdown(digits[0] if digits else None)
        seed = seed_box()
        count = slider("digits_count", "count")
    go = gr.Button("Generate", variant="primary")
    tab = Tab("digits", {"model": model, "digit": digit, "seed": seed, "count": count}, friendly(h.digits))
    first = initial_results(tab, 2)
    image = result_image(first[0], "digits", format="png", type="filepath", elem_classes="pixelated", height=560,
                         elem_id="digit-grid")  # fmt: skip
    download = gr.File(first[1], label="download (PNG)")
    tab.outputs = [image, download]
    link_line(store, tab, "digits-link")
    grid = go.click(friendly(h.digits), [model, digit, seed, count], [image, download], api_name="digits",
                    api_description="Generate handwritten digits (a PNG grid) of one digit or all ten.")  # fmt: skip
    with_link(grid, store, tab)
    # .input: a visitor's choice only (a link setting model and digit together must not have its digit reset)
    model.input(lambda m, v: class_dropdown(m, v), [model, digit], digit, api_visibility="private")
    return tab, model, info


def toy_plot(h: Handlers, elem_id: str, value: Any = None, visible: bool = True) -> gr.ScatterPlot:
    """The scatter of target vs generated points, in the one set of axes of every toy model (``toy_limits``).

    show_label=False: Gradio 6 sizes the chart to the block's height without the label above it, so a label
    pushed the legend (below the chart) out of the block, clipped; the legend names the colours."""
    x_lim, y_lim = h.toy_limits
    return gr.ScatterPlot(value, x="x", y="y", color="set", label="target vs generated points", show_label=False,
                          elem_id=elem_id, height=420, x_title="x", y_title="y", color_title="points",
                          x_lim=x_lim, y_lim=y_lim, visible=visible,
                          color_map={"target": "#94a3b8", "generated": "#ea580c"})  # fmt: skip


def first_of(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, the result a tab opens on, or None when its model is not available."""
    try:
        return fn(*args)
    except Exception:
        return None


def toy_tab(h: Handlers, store: ModelStore, app: gr.Blocks) -> tuple[Tab, gr.Radio, gr.Markdown]:
    info = info_line()
    with gr.Row():
        toys = installed("points", store)
        model = gr.Radio(toys, value=toys[0] if toys else None, label="model (its target distribution)")
        seed = seed_box()
        steps = slider("toy_steps", "training steps", step=10)
    with gr.Row():
        show = gr.Button("Show bundled model", variant="primary")
        train = gr.Button("Train live")
    tab = Tab("toy", {"model": model, "seed": seed}, friendly(h.toy_show))
    first = first_of(h.toy_points, model.value, seed.value)
    plot = toy_plot(h, "toy-plot", first[0] if first else None)
    status = gr.Markdown(first[1] if first else "", label="status", min_height=48, elem_id="toy-status")
    tab.outputs = [plot, status]
    link_line(store, tab, "toy-link")
    shown = show.click(
        friendly(h.toy_show),
        [model, seed],
        [plot, status],
        api_name="toy_show",
        api_description="1000 points of a bundled 2-D toy GAN next to its target, and its metrics.",
    )
    with_link(shown, store, tab)
    waiting = Waiting(TRAIN_QUEUE)

    def toy_train(target: str, steps: Any, seed: Any) -> Any:  # named as its MCP tool
        waiting.started()
        yield from friendly_stream(h.toy_train)(target, steps, seed)

    def admit(target: Any, steps: Any, seed: Any, request: gr.Request) -> list[dict[str, Any]]:
        """The surplus hears "busy" at once (a message of its own, not a red mark on the model choice)."""
        busy = waiting.admit(request.session_hash)
        if busy is not None:
            raise user_error(BUSY.format(n=busy))
        return [gr.validate(True, "")] * 3

    # the queue's place and time shown over the status line, not over the plot that is the point of it
    train.click(toy_train, [model, steps, seed], [plot, status], api_name="toy_train", concurrency_id=TRAIN_GROUP,
                concurrency_limit=TRAIN_CONCURRENCY, validator=admit, show_progress="full", show_progress_on=status,
                api_description="Train a fresh 2-D toy GAN live: 20 snapshots of its points.")  # fmt: skip

    def closed(request: gr.Request) -> None:  # the tab closed: Gradio drops its queued events
        waiting.forget(request.session_hash)

    app.unload(closed)
    return tab, model, info


def plugin_field(spec: Any) -> gr.components.Component:
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


def all_models_tab(h: Handlers, store: ModelStore) -> tuple[Tab, gr.Dropdown, gr.Markdown]:
    models = store.prefer_ready(list_models())
    with gr.Row():
        model = gr.Dropdown(models, value=models[0] if models else None, label="model")
        seed = seed_box()
        count = slider("all_count", "count")
    info = info_line()

    def shown(model_id: str, seed: Any, count: Any, inputs: str = "{}") -> tuple:
        """The samples: a points model in the toy tab's chart (axes, legend), an image model as a picture."""
        if get_model_class(model_id).output == "points":
            return gr.Image(None, visible=False), None, friendly(h.generic_points)(model_id, seed, count, inputs)
        path, download = friendly(h.generic)(model_id, seed, count, inputs)
        return gr.Image(path, visible=True), download, gr.ScatterPlot(visible=False)

    @gr.render(inputs=model)
    def form(model_id: str) -> None:
        if not model_id:
            return
        specs = get_model_class(model_id).inputs
        fields = [plugin_field(spec) for spec in specs]
        go = gr.Button("Generate", variant="primary")

        def run(seed: Any, count: Any, *values: Any) -> Any:
            return shown(model_id, seed, count, json.dumps({s.name: v for s, v in zip(specs, values)}))

        generated = go.click(run, [seed, count, *fields], [picture, download, plot], api_visibility="private")
        with_link(generated, store, tab)

    tab = Tab("all", {"model": model, "seed": seed, "count": count}, shown)
    points = bool(model.value) and get_model_class(model.value).output == "points"
    first = None if points else first_of(h.generic, model.value, seed.value, count.value, "{}")
    picture = gr.Image(first[0] if first else None, label="samples", show_label=False, format="png", type="filepath",
                       elem_classes="pixelated", elem_id="all-image", visible=not points)  # fmt: skip
    plot = toy_plot(h, "all-plot", visible=points)
    download = gr.File(first[1] if first else None, label="download (PNG)")
    tab.outputs = [picture, download, plot]
    link_line(store, tab, "all-link")

    def cleared(model_id: str | None) -> tuple:  # another model: the previous one's output goes
        points = bool(model_id) and get_model_class(model_id).output == "points"
        return gr.Image(None, visible=not points), None, gr.ScatterPlot(None, visible=points)

    model.input(cleared, model, [picture, download, plot], api_visibility="private", show_progress="hidden")
    # a fixed endpoint for API clients: the model's inputs as JSON
    inputs_json = gr.Textbox(label="inputs (JSON)", visible=False)

    def generate(model_id: str, seed: Any, count: Any, inputs_json: str) -> tuple:  # named as its MCP tool
        return friendly(h.generic)(model_id, seed, count, inputs_json)

    gr.Button(visible=False).click(generate, [model, seed, count, inputs_json], [picture, download],
                                   api_name="generate", api_description="Samples (a PNG) of any installed model, "
                                   "its declared inputs as a JSON object.")  # fmt: skip
    broken = plugin_errors()
    if broken:
        gr.Markdown("Plugins that failed to load: " + "; ".join(f"`{k}`: {v}" for k, v in broken.items()))
    return tab, model, info
