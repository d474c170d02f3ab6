"""The VAE tab: a drawing or an upload to reconstruct, a test example, the prior's samples and a latent walk."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .checks import friendly
from .handlers import Handlers
from .links import Tab, initial_results
from .store import ModelStore
from .tabs import bounded, info_line, link_line, result_image, seed_box, slider, with_link

# run when the tab opens: a fresh sketchpad has no tool selected, and a visitor's first stroke drew nothing
PICK_BRUSH = """() => {
  let tries = 0;
  const pick = () => {
    const brush = document.querySelector('#vae-sketch button[aria-label="Brush"]');
    if (brush && !brush.dataset.picked) { brush.dataset.picked = '1'; brush.click(); }
    else if (!brush && ++tries < 40) setTimeout(pick, 100);
  };
  pick();
}"""


def vae_inputs(guard: Any) -> tuple[gr.Sketchpad, gr.Image, gr.State]:
    """The drawing and the upload side by side, and which of them the visitor touched last."""
    with gr.Row():
        pen = gr.Brush(default_size=20, colors=["#000000"], default_color="#000000", color_mode="fixed")
        sketch = guard(gr.Sketchpad(label="draw a digit", type="numpy", canvas_size=(280, 280), fixed_canvas=True,
                                    brush=pen, layers=False, transforms=(), height=360, elem_id="vae-sketch"),
                       "drawing")  # fmt: skip
        # image_mode=None: Gradio hands over the file as uploaded (no RGB conversion, which decodes the whole
        # picture and turns a transparent background black); the handler decodes it, bounded
        upload = guard(gr.Image(label="…or upload a picture", type="filepath", sources=["upload"], image_mode=None,
                                elem_id="vae-upload"), "upload")  # fmt: skip
    # the newer of the two is the input; neither clears the other (clearing the sketchpad from an event fired
    # its .input, and that handler cleared a fresh upload)
    latest = gr.State("sketch")
    upload.upload(lambda: "upload", None, latest, api_visibility="private", show_progress="hidden")
    sketch.input(lambda: "sketch", None, latest, api_visibility="private", show_progress="hidden")
    return sketch, upload, latest


def vae_sampling_controls(h: Handlers) -> dict[str, Any]:
    """The prior's samples and the latent walk: seed, count, the two swept dimensions, steps, their buttons."""
    with gr.Row():
        z_last = h.vae_z_dim() - 1
        controls = {
            "seed": seed_box(),
            "count": slider("vae_count", "samples from the prior"),
            "x": bounded(gr.Slider(0, z_last, value=0, step=1, label="walk: x dimension"), 0, z_last),
            "y": bounded(gr.Slider(0, z_last, value=1, step=1, label="walk: y dimension"), 0, z_last),
            "steps": slider("walk_steps", "walk: steps"),
        }
    with gr.Row():
        controls["go_sample"], controls["go_walk"] = gr.Button("Sample the prior"), gr.Button("Latent walk")
    return controls


def vae_tab(h: Handlers, store: ModelStore, guard: Any) -> tuple[Tab, gr.Markdown]:
    """The reconstruction tab, top to bottom as the page shows it: two inputs, a test example, the prior's
    samples and the latent walk."""
    info = info_line()
    sketch, upload, latest = vae_inputs(guard)
    go = gr.Button("Reconstruct the drawing / upload", variant="primary")
    with gr.Row():
        last = len(h.test_set()) - 1
        example = bounded(gr.Slider(0, last, value=0, step=1, label=f"MNIST test-set example (0-{last})"), 0, last)
        go_example = gr.Button("Reconstruct this test example")
    pair_at = gr.Column()  # filled below, once the sampling controls exist (the first results need them)
    sampling = vae_sampling_controls(h)
    seed, count, x, y, steps = (sampling[k] for k in ("seed", "count", "x", "y", "steps"))

    def run(index: Any, seed: Any, count: Any, x: Any, y: Any, steps: Any) -> tuple:
        return (*friendly(h.vae_example)(index), friendly(h.vae_sample)(seed, count),
                friendly(h.vae_walk)(seed, x, y, steps))  # fmt: skip

    tab = Tab("vae", {"example": example, "seed": seed, "count": count, "x": x, "y": y, "steps": steps}, run)
    first = initial_results(tab, 4)
    with pair_at:
        pair = result_image(first[0], "input | reconstruction", format="png", type="pil", elem_classes="pixelated",
                            elem_id="vae-pair", height=300)  # fmt: skip
        error = gr.Markdown(first[1], label="reconstruction error")
    with gr.Row():
        samples = result_image(first[2], "samples of the prior", format="png", type="pil", elem_classes="pixelated",
                               elem_id="vae-samples")  # fmt: skip
        walk = result_image(first[3], "latent walk (two latent dimensions swept, the others from the seed)",
                            format="png", type="pil", elem_classes="pixelated", elem_id="vae-walk")  # fmt: skip
    tab.outputs = [pair, error, samples, walk]
    link_line(store, tab, "vae-link")
    reconstruct_events(h, go, sketch, upload, latest, [pair, error])
    events = [
        go_example.click(friendly(h.vae_example), example, [pair, error], api_name="vae_example",
                         api_description="Reconstruct an MNIST test digit with the VAE (input next to output)."),
        sampling["go_sample"].click(friendly(h.vae_sample), [seed, count], samples, api_name="vae_sample",
                                    api_description="Sample digits from the VAE's prior (a PNG grid)."),
        sampling["go_walk"].click(friendly(h.vae_walk), [seed, x, y, steps], walk, api_name="vae_walk",
                                  api_description="Decode a grid sweeping two of the VAE's latent dimensions (a PNG)."),
    ]  # fmt: skip
    for event in events:
        with_link(event, store, tab)
    return tab, info


def reconstruct_events(h: Handlers, go: gr.Button, sketch: Any, upload: Any, latest: gr.State, outputs: list) -> None:
    """The page's button reads which input is newer (a gr.State); API and MCP clients get an endpoint of the
    two pictures alone (a State input is not a tool parameter: an MCP client could never set it)."""

    def reconstruct_latest(sketch: Any, upload: Any, latest: str) -> Any:
        return friendly(h.vae_reconstruct)(sketch, upload, None, latest)

    def vae_reconstruct(sketch: Any, upload: Any) -> Any:  # named as its MCP tool; the drawing wins over the upload
        return friendly(h.vae_reconstruct)(sketch, upload)

    go.click(reconstruct_latest, [sketch, upload, latest], outputs, api_visibility="private")
    gr.Button(visible=False).click(
        vae_reconstruct,
        [sketch, upload],
        outputs,
        api_name="vae_reconstruct",
        api_description="Reconstruct a picture of one handwritten digit with the VAE (input next to output).",
    )
