"""Where the running demo keeps its files, and their removal: at exit (SIGTERM included, within seconds) and, at
the next start, what earlier runs of the demo left behind (their own folders only, never another program's).

A run's folder is ``<temp>/hub-models-demo-<pid>``: Gradio's cache (uploads and every served file) unless
``GRADIO_TEMP_DIR`` names another, in which case the run's outputs go to a ``hub-models-<pid>`` folder inside it.
The app writes each image once, inside Gradio's cache, so Gradio serves that file without a copy and its
``delete_cache`` removes it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "hub-models-demo-"


def run_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"{PREFIX}{os.getpid()}"


def claim_gradio_cache() -> Path:
    """Point Gradio's cache at this run's folder (unless the environment chose one); the folder it uses."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        os.environ["GRADIO_TEMP_DIR"] = str(run_dir() / "gradio")
    return Path(os.environ["GRADIO_TEMP_DIR"])


def outputs_dir() -> Path:
    """The folder the app writes its images to: inside Gradio's cache, so they are served as they are."""
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()) / f"hub-models-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def remove_own_files() -> None:
    """This run's folders (called at exit)."""
    for folder in (run_dir(), Path(os.environ.get("GRADIO_TEMP_DIR") or run_dir()) / f"hub-models-{os.getpid()}"):
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers() -> list[Path]:
    """The folders of earlier runs of the demo whose process is gone (killed before it could clean up)."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        pid = folder.name.removeprefix(PREFIX)
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)) and folder.stat().st_uid == os.getuid():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
