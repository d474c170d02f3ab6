"""The install step of a Gradio-SDK Space build, started in the background when the test session starts.

The Spaces builder creates a fresh venv and an empty app directory, runs `pip install -r requirements.txt
"gradio[oauth,mcp]==<sdk_version>" spaces` with no repository there, then copies the repository in and starts the
app file. The install takes minutes (torch, into a fresh venv) and waits mostly on the disk, so ``conftest`` starts
it with the session and ``test_space.py::test_the_spaces_builder`` waits for it: the rest of the suite runs
meanwhile instead of after it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def space_fields() -> dict[str, str]:
    """The Space's settings from the README's YAML header (sdk_version, app_file, ...)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return dict(line.split(": ", 1) for line in text.split("---")[1].strip().splitlines() if ": " in line)


class SpaceInstall:
    """A fresh venv and ``home/user/app`` under ``work`` holding only requirements.txt, and the builder's pip
    install into it, running until ``wait()``."""

    def __init__(self, work: Path) -> None:
        self.app, self.venv, self.log = work / "home" / "user" / "app", work / "venv", work / "pip.log"
        self.app.mkdir(parents=True)
        shutil.copy2(ROOT / "requirements.txt", self.app)
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        self.python = str(self.venv / "bin" / "python")
        gradio = f"gradio[oauth,mcp]=={space_fields()['sdk_version']}"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "pip", "install", "-q", "-r", "requirements.txt", gradio, "spaces"],
                cwd=self.app, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait(self) -> tuple[int, str]:
        """The install's exit status and the end of its output."""
        code = self.process.wait()
        return code, self.log.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        """Stop the install if it still runs and delete the venv (6 GB: pytest keeps its last runs' temp folders)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.venv, ignore_errors=True)
