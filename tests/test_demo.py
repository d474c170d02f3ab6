"""The demo, driven through its real HTTP API with gradio_client (one server for the module)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from demo_server import (  # noqa: E402
    STAND_INS,
    DemoServer,
    missing_weights,
    plugin_site,
    stand_in_weights,
    weights_env_var,
)
from gradio_client import Client, handle_file  # noqa: E402

import hub_models  # noqa: E402

BROKEN = "gan-ring8"  # its weights point nowhere in the test server


def needs(*model_ids: str) -> None:
    for model_id in model_ids:
        reason = missing_weights(model_id)
        if reason:
            pytest.skip(f"{model_id} has no weights to demo yet: {reason}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = stand_in_weights(tmp_path_factory.mktemp("weights"))
    # one model's weights point nowhere: only that model must fail, cleanly
    demo = DemoServer(env={**env, weights_env_var(BROKEN): "/nonexistent/ring"})
    yield demo
    demo.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


def error_of(client: Client, *args, api_name: str) -> str:
    with pytest.raises(Exception) as info:  # gradio_client raises AppError with the gr.Error message
        client.predict(*args, api_name=api_name)
    return str(info.value)


def test_every_tab_has_an_endpoint(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    expected = {"/faces", "/interpolate", "/digits", "/vae_reconstruct", "/vae_example", "/vae_sample", "/vae_walk"}
    assert expected | {"/toy_show", "/toy_train", "/generate"} <= names


def test_faces_grid_and_determinism(client):
    grid = client.predict("dcgan-faces", 7, 6, 1.0, api_name="/faces")
    picture = Image.open(grid)
    # one PNG, 6 faces in a row (64px, make_grid's 2px padding), upscaled by a whole factor to about 1000 px wide
    assert picture.format == "PNG" and picture.size == (3 * (6 * 66 + 2), 3 * 68)
    assert Path(grid).read_bytes() == Path(client.predict("dcgan-faces", 7, 6, 1.0, api_name="/faces")).read_bytes()
    assert Path(grid).read_bytes() != Path(client.predict("dcgan-faces", 8, 6, 1.0, api_name="/faces")).read_bytes()
    assert Image.open(client.predict("dcgan-faces", 0, 16, 1.0, api_name="/faces")).size == (2 * 530, 2 * 134)
    # the slider's bounds are checked by Gradio itself, before the handler
    assert "greater than maximum value 1.0" in error_of(client, "dcgan-faces", 0, 4, 2.0, api_name="/faces")
    assert "greater than maximum value 64" in error_of(client, "dcgan-faces", 0, 65, 1, api_name="/faces")
    assert "count must be a whole number" in error_of(client, "dcgan-faces", 0, 2.5, 1, api_name="/faces")
    assert "less than minimum value 0" in error_of(client, "dcgan-faces", -1, 4, 1, api_name="/faces")
    assert "greater than maximum value 4294967295" in error_of(client, "dcgan-faces", 2**32, 4, 1, api_name="/faces")


def test_plain_http_api_as_curl_uses_it(client):
    """POST /gradio_api/call/faces, read the event stream, fetch the PNG: the API without any Gradio client."""
    import io

    import httpx

    api = client.src.rstrip("/") + "/gradio_api/call/faces"
    with httpx.Client(timeout=60) as http:
        event_id = http.post(api, json={"data": ["dcgan-faces", 3, 4, 1.0]}).raise_for_status().json()["event_id"]
        lines = http.get(f"{api}/{event_id}").raise_for_status().text.splitlines()
        assert "event: complete" in lines, lines
        [output] = json.loads(lines[lines.index("event: complete") + 1].removeprefix("data:"))
        picture = Image.open(io.BytesIO(http.get(output["url"]).raise_for_status().content))
    assert picture.format == "PNG" and picture.size == (4 * (4 * 66 + 2), 4 * 68)


def test_faces_interpolation(client):
    strip, gif, caption = client.predict("dcgan-faces", 1, 2, 5, 0.7, api_name="/interpolate")
    assert caption == "dcgan-faces: seed 1 → seed 2, ψ = 0.7, 5 steps"
    assert Image.open(strip).size[0] == 5 * Image.open(strip).size[1]
    animation = Image.open(gif)
    assert animation.format == "GIF" and animation.n_frames == 8  # 5 forward + 3 back


def test_digit_picker_grid_and_single_digit(client):
    picture, download = client.predict("cgan-digits-mlp", "all", 0, 100, api_name="/digits")
    image = Image.open(picture)
    assert image.format == "PNG" and image.size[0] == image.size[1]  # 10 x 10, one row per digit
    one = Image.open(client.predict("cgan-digits", "7", 3, 8, api_name="/digits")[0])
    assert one.format == "PNG"
    assert Path(download).suffix == ".png"
    assert "'12' is not in the list of choices" in error_of(client, "cgan-digits", "12", 0, 8, api_name="/digits")
    assert "not in the list of choices" in error_of(client, "dcgan-faces", "7", 0, 8, api_name="/digits")


def test_vae_reconstruction_from_test_example_upload_and_errors(client, tmp_path):
    needs("vae-digits")
    picture, text = client.predict(0, api_name="/vae_example")
    width, height = Image.open(picture).size
    assert width > 1.8 * height  # input and reconstruction side by side
    assert re.search(r"MSE \d\.\d{4} per pixel", text)
    # a dark digit on a white photo-like background is inverted and centred like MNIST
    drawing = Image.new("RGB", (200, 120), "white")
    from PIL import ImageDraw

    ImageDraw.Draw(drawing).line([(60, 20), (140, 100)], fill="black", width=12)
    drawing.save(tmp_path / "seven.png")
    _, text = client.predict(None, handle_file(str(tmp_path / "seven.png")), api_name="/vae_reconstruct")
    assert "MSE" in text
    (tmp_path / "notes.txt").write_text("not an image")
    message = error_of(client, None, handle_file(str(tmp_path / "notes.txt")), api_name="/vae_reconstruct")
    assert "not a readable image" in message and "PNG" in message
    assert "canvas is empty" in error_of(client, None, None, api_name="/vae_reconstruct")
    assert "greater than maximum value" in error_of(client, 10**6, api_name="/vae_example")


def test_vae_from_the_sketchpad(client, tmp_path):
    """The Sketchpad's value (an ImageEditor dict: background, layers, composite) as a browser sends it."""
    needs("vae-digits")
    from PIL import ImageDraw

    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))  # transparent canvas, black strokes
    ImageDraw.Draw(canvas).line([(140, 40), (140, 240)], fill=(0, 0, 0, 255), width=18)
    canvas.save(tmp_path / "one.png")
    stroke = handle_file(str(tmp_path / "one.png"))
    sketch = {"background": None, "layers": [stroke], "composite": stroke}
    picture, text = client.predict(sketch, None, api_name="/vae_reconstruct")
    pair = Image.open(picture).convert("L")
    assert "MSE" in text
    left = pair.crop((0, 0, pair.width // 2, pair.height))
    assert 0 < sum(p > 128 for p in left.getdata()) < 0.5 * left.width * left.height  # ink, centred, not a blank
    blank = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    blank.save(tmp_path / "blank.png")
    empty = handle_file(str(tmp_path / "blank.png"))
    message = error_of(client, {"background": None, "layers": [empty], "composite": empty}, None,
                       api_name="/vae_reconstruct")  # fmt: skip
    assert "canvas is empty" in message


def test_vae_prior_and_walk(client):
    needs("vae-digits")
    assert Image.open(client.predict(3, 16, api_name="/vae_sample")).format == "PNG"
    walk = Image.open(client.predict(0, 2, 5, 6, api_name="/vae_walk"))
    assert walk.size[0] == walk.size[1]
    assert "different latent dimensions" in error_of(client, 0, 3, 3, 6, api_name="/vae_walk")


def test_toy_scatter_training_and_a_broken_model(client):
    plot, text = client.predict("gan-toy2d", 0, api_name="/toy_show")
    rows = plot["value"]["data"]
    assert len(rows) == 2000 and {r[2] for r in rows} == {"target", "generated"}
    assert "w2" in text
    plot, text = client.predict("gan-toy2d", 50, 1, api_name="/toy_train")
    assert "step 50/50" in text and "w2 =" in text
    # the ring's weights were pointed at a missing directory: a clear message, the app keeps working
    assert "gan-ring8 is not available" in error_of(client, "gan-ring8", 0, api_name="/toy_show")
    assert client.predict("gan-toy2d", 1, api_name="/toy_show")


def test_all_models_endpoint_any_plugin(client):
    picture, _ = client.predict("gan-toy2d", 0, 16, "{}", api_name="/generate")
    assert Image.open(picture).format == "PNG"
    picture, _ = client.predict("cgan-digits-mlp", 0, 20, json.dumps({"label": "3"}), api_name="/generate")
    assert Image.open(picture).format == "PNG"
    assert "does not take" in error_of(client, "gan-toy2d", 0, 4, '{"label": "3"}', api_name="/generate")
    assert "JSON object" in error_of(client, "gan-toy2d", 0, 4, "[1]", api_name="/generate")
    assert "'nope' is not in the list of choices" in error_of(client, "nope", 0, 4, "{}", api_name="/generate")


def test_models_without_weights_fail_cleanly_and_alone(client):
    """Every installed plugin: it generates, or it says in one line why it is not available; the app goes on.

    BROKEN's weights point nowhere in this server, so at least one model is always unavailable.
    """
    unavailable = {BROKEN} | {m for m in hub_models.list_models() if missing_weights(m) and m not in STAND_INS}
    for model_id in hub_models.list_models():
        if model_id in unavailable:
            message = error_of(client, model_id, 0, 4, "{}", api_name="/generate")
            assert f"{model_id} is not available" in message and "Traceback" not in message
        else:
            picture, _ = client.predict(model_id, 0, 4, "{}", api_name="/generate")
            assert Image.open(picture).format == "PNG", model_id


@pytest.fixture(scope="module")
def third_party_site(tmp_path_factory):
    return plugin_site(tmp_path_factory.mktemp("site"))


def test_a_third_party_plugin_appears_in_all_models_with_no_change(third_party_site):
    import os
    import urllib.request

    path = os.pathsep.join(filter(None, [str(third_party_site), os.environ.get("PYTHONPATH")]))
    server = DemoServer(env={"PYTHONPATH": path})
    try:
        client = Client(server.url, verbose=False)
        inputs = json.dumps({"brightness": 0.25, "pattern": "stripes", "repeat": 2})
        picture, download = client.predict("acme-tiles", 0, 4, inputs, api_name="/generate")
        image = Image.open(picture)
        assert image.format == "PNG" and Path(download).suffix == ".png"
        assert "brightness must be between" in error_of(client, "acme-tiles", 0, 4, '{"brightness": 3}',
                                                        api_name="/generate")  # fmt: skip
        with urllib.request.urlopen(server.url + "config", timeout=10) as response:
            config = response.read().decode()
        # the page lists it, and names the plugin that failed to import with its error
        assert "acme-tiles" in config and "acme-oops" in config and "needs a library" in config
    finally:
        server.stop()


def test_tabs_choose_models_by_their_declarations(monkeypatch):
    """No tab names model ids: a third-party conditional image plugin lands in the class picker unchanged."""
    from hub_models import registry
    from hub_models.app import checks
    from hub_models.contract import GenerativeModel
    from hub_models.spec import CardInfo, Input

    assert set(checks.tab_models("faces")) == {"dcgan-faces", "convgan-faces128"}
    assert set(checks.tab_models("classes")) == {"cgan-digits", "cgan-digits-mlp"}
    assert checks.tab_models("reconstruction") == ("vae-digits",)
    assert set(checks.tab_models("points")) == {"gan-toy2d", "gan-ring8"}

    class Letters(GenerativeModel):  # someone else's class-conditional image model
        model_id = "acme-letters"
        Config = type("Config", (), {})
        inputs = (Input("letter", "choice", "a", choices=("a", "b", "c")),)
        conditioning = "letter"
        card = CardInfo(summary="letters")

    found = {m: registry.get_model_class(m) for m in registry.list_models()}
    monkeypatch.setattr(checks, "list_models", lambda: sorted({*found, "acme-letters"}))
    monkeypatch.setattr(checks, "get_model_class", lambda m: Letters if m == "acme-letters" else found[m])
    assert "acme-letters" in checks.tab_models("classes")
    assert checks.class_choices("acme-letters") == ("a", "b", "c")
    assert checks.class_choices("cgan-digits") == ("all", *map(str, range(10)))


DEEP = "[" * 100_000 + "]" * 100_000
# a visitor's (or API caller's) mistakes: each gets a one-line message, none a traceback in the server log
MISTAKES = [
    ("/faces", ["dcgan-faces", 0, 65, 1.0]),  # out of the slider's range
    ("/faces", ["dcgan-faces", 0, 4, 0.1]),  # below the model's declared truncation
    ("/faces", ["dcgan-faces", "abc", 4, 1.0]),  # a word for a seed
    ("/faces", ["x" * 2**20, 0, 4, 1.0]),  # a 1 MB model name
    ("/faces", ["dcgan-faces"]),  # too few values
    ("/digits", ["cgan-digits", "12", 0, 8]),  # not among the choices
    ("/digits", ["cgan-digits", "all", 0, 5]),  # "all" digits, fewer than 10
    ("/generate", ["gan-toy2d", 0, 4, '{"seed": 5}']),
    ("/generate", ["gan-toy2d", 0, 4, '{"n": 5}']),
    ("/generate", ["gan-toy2d", 0, 4, DEEP]),
    ("/generate", ["gan-toy2d", 0, 4, "y" * 2**20]),
    ("/generate", ["cgan-digits", 0, 4, '{"label": "all"}']),
    ("/vae_reconstruct", [None, {"path": 5, "meta": {"_type": "gradio.FileData"}}]),
    ("/vae_example", [10**6]),
    ("/describe", []),
]


def test_visitor_mistakes_get_one_line_and_no_traceback(server):
    from demo_server import call

    log_before = server.log.read_text()
    for endpoint, args in MISTAKES:
        event, data = call(server.url, endpoint, args)
        message = data.get("error") if isinstance(data, dict) else data
        assert event == "error" and isinstance(message, str) and message, (endpoint, str(args)[:80], event, data)
        assert "\n" not in message and len(message) < 400, (endpoint, message[:500])
        assert "x" * 101 not in message and "y" * 101 not in message, (endpoint, message[:300])
    time.sleep(1)
    log = server.log.read_text()[len(log_before) :]
    assert "Traceback" not in log, log[-3000:]


def test_every_endpoint_and_output_has_a_name(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    names = [p["label"] for e in info.values() for p in (*e["parameters"], *e["returns"])]
    unnamed = [n for n in names if not n or re.fullmatch(r"(value|parameter)_\d+", n)]
    assert not unnamed, unnamed


def test_the_mcp_server_lists_a_tool_per_job_and_the_faces_tool_draws(server):
    """A real MCP client (the `mcp` package) against the running app: the tools, their one-sentence
    descriptions and bounded inputs, and the faces tool answering with a PNG."""
    pytest.importorskip("mcp")
    import asyncio
    import base64
    import io

    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def session() -> tuple:
        async with (
            streamablehttp_client(server.url + "gradio_api/mcp/") as (read, write, _),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            tools = (await client.list_tools()).tools
            args = {"model_id": "dcgan-faces", "seed": 3, "count": 4, "truncation": 1.0}
            return tools, await client.call_tool("faces", args)

    tools, result = asyncio.run(session())
    # every tool's inputs are parameters a client sets: none is a gr.State (Gradio warns of one at start)
    assert "gr.State input" not in server.log.read_text()
    by_name = {tool.name: tool for tool in tools}
    jobs = {"faces", "interpolate", "digits", "vae_reconstruct", "vae_example", "vae_sample", "vae_walk", "toy_show",
            "toy_train", "generate"}  # fmt: skip
    assert jobs <= set(by_name), sorted(by_name)
    for name in jobs:
        sentence = by_name[name].description.split(" If a user passes a file")[0]
        assert sentence.endswith(".") and sentence.count(". ") == 0, (name, sentence)
    assert "gan-toy2d" in by_name["describe"].inputSchema["properties"]["model_id"]["enum"]  # any model
    count = by_name["faces"].inputSchema["properties"]["count"]
    assert count["type"] == "integer" and (count["minimum"], count["maximum"]) == (1, 64)
    psi = by_name["faces"].inputSchema["properties"]["truncation"]
    assert psi["minimum"] == 0.6 and psi["maximum"] == 1.0
    assert not result.isError
    [image] = [c for c in result.content if getattr(c, "mimeType", None) == "image/png"]
    faces = Image.open(io.BytesIO(base64.b64decode(image.data)))
    assert faces.format == "PNG" and faces.width * 68 == faces.height * (4 * 66 + 2)  # 4 faces in a row, upscaled
