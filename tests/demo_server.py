"""Start the real demo (python demo/app.py) on a free local port, for the client and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"hub-models-demo-{self.port}.log"
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "demo" / "app.py"), "--port", str(self.port)],
            env=full_env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.started = time.perf_counter()
        self.ready_after = self.wait()

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
