"""Start the real demo (python demo/app.py) on a free local port, for the client and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import hub_models
from hub_models.errors import HubModelsError
from hub_models.weights import resolve_weights

ROOT = Path(__file__).resolve().parents[1]


def missing_weights(model_id: str) -> str | None:
    """Why ``model_id`` cannot run in the demo (plugin not installed, no bundled weights), or None."""
    try:
        resolve_weights(hub_models.get_model_class(model_id), None)
    except HubModelsError as exc:
        return str(exc)
    return None


# Tabs whose models may not have bundled weights yet: the app is tested on freshly initialised (untrained)
# checkpoints of them instead, saved in the Hub layout and passed the way a user would (HUB_MODELS_WEIGHTS_<ID>).
STAND_INS = ("dcgan-faces", "cgan-digits", "cgan-digits-mlp")


def weights_env_var(model_id: str) -> str:
    """The variable a user sets to choose a model's weights (read by hub_models.app.store.env_weights)."""
    return "HUB_MODELS_WEIGHTS_" + model_id.upper().replace("-", "_")


def stand_in_weights(root: Path) -> dict[str, str]:
    import torch

    env = {}
    for model_id in STAND_INS:
        if model_id in hub_models.list_models() and missing_weights(model_id):
            torch.manual_seed(0)
            hub_models.get_model_class(model_id)().save_pretrained(root / model_id)
            env[weights_env_var(model_id)] = str(root / model_id)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoServer:
    """``python demo/app.py --port PORT`` (or, with ``command``, e.g. ``hub-models demo ...``, on ``port``)."""

    def __init__(
        self, env: dict[str, str] | None = None, command: list[str] | None = None, port: int | None = None,
        timeout: float = 120, cwd: Path | None = None,
    ) -> None:  # fmt: skip
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"hub-models-demo-{self.port}.log"
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
        command = command or [sys.executable, str(ROOT / "demo" / "app.py"), "--port", str(self.port)]
        self.proc = subprocess.Popen(
            command, env=full_env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, cwd=cwd
        )
        self.started = time.perf_counter()
        self.ready_after = self.wait(timeout)

    def wait(self, timeout: float = 120) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the demo exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the demo did not start in {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def call(url: str, endpoint: str, data: list, timeout: float = 120) -> tuple[str, Any]:
    """One request over Gradio's plain HTTP API (POST, then the event stream): ("complete", outputs) or
    ("error", message). The protocol curl and the JS client use; thread-safe, unlike a shared gradio_client."""
    import json

    import httpx

    api = url.rstrip("/") + "/gradio_api/call" + endpoint
    with httpx.Client(timeout=timeout) as http:
        response = http.post(api, json={"data": data})
        if response.status_code != 200:
            return f"http {response.status_code}", response.text
        event_id = response.json()["event_id"]
        event = None
        with http.stream("GET", f"{api}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    return event, json.loads(line[5:])
    return "no result", None


def fetch(file: dict) -> bytes:
    import httpx

    return httpx.get(file["url"], timeout=60).raise_for_status().content


def upload(url: str, path: Path) -> dict:
    """Upload a file the way the page does; the FileData to pass as an input."""
    import httpx

    with path.open("rb") as f:
        response = httpx.post(url.rstrip("/") + "/gradio_api/upload", files={"files": (path.name, f)}, timeout=60)
    [server_path] = response.raise_for_status().json()
    return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


ACME = '''
from dataclasses import dataclass
import torch
from torch import nn
from hub_models import CardInfo, GenerativeModel, Input

@dataclass
class TilesConfig:
    size: int = 8

class Tiles(GenerativeModel):
    """A third-party image plugin with declared inputs of every kind: the demo must build its form unchanged."""
    model_id = "acme-tiles"
    Config = TilesConfig
    card = CardInfo(summary="Random grey tiles.")
    inputs = (
        Input("brightness", "float", 0.5, label="brightness", minimum=0.0, maximum=1.0),
        Input("pattern", "choice", "plain", choices=("plain", "stripes")),
        Input("repeat", "int", 1),
    )

    def build(self, config):
        return nn.Linear(4, config.size * config.size)

    def sample_latents(self, n, generator, **inputs):
        return torch.randn(n, 4, generator=generator)

    def decode(self, latents, brightness=0.5, pattern="plain", repeat=1):
        s = self.config.size
        x = torch.sigmoid(self.net(latents)).view(-1, 1, s, s) * 0 + brightness
        if pattern == "stripes":
            x[:, :, ::2] = 0
        return x.repeat(1, 1, repeat, repeat)
'''


def plugin_site(site: Path) -> Path:
    """A plugin package installed the way pip would (dist-info entry points), with its own bundled weights:
    ``acme-tiles`` (inputs of every kind) and ``acme-oops`` (fails to import). Put ``site`` on PYTHONPATH."""
    (site / "acme_demo").mkdir(parents=True)
    (site / "acme_demo" / "__init__.py").write_text("")
    (site / "acme_demo" / "tiles.py").write_text(ACME)
    (site / "acme_demo" / "broken.py").write_text("raise ImportError('needs a library that is not installed')\n")
    dist = site / "acme_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[hub_models.models]\nacme-tiles = acme_demo.tiles:Tiles\nacme-oops = acme_demo.broken:Nope\n"
    )
    sys.path.insert(0, str(site))
    try:
        from acme_demo.tiles import Tiles

        Tiles().save_pretrained(site / "acme_demo" / "weights" / "acme-tiles")  # its bundled weights
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("acme_demo.tiles", None)
        sys.modules.pop("acme_demo", None)
    return site
