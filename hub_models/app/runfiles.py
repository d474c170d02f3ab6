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
import threading
import time
import weakref
from pathlib import Path
from typing import Any

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


def sweep(app: Any, age: float) -> int:
    """Delete the files the app served (its components' temp files) older than ``age`` seconds, except their
    initial values; the number deleted. Gradio's own ``delete_cache`` loop iterates those sets while requests
    add to them, and under concurrent traffic it died at the first "Set changed size during iteration": files
    piled up for as long as the app ran. This iterates copies."""
    keep = set().union(*(getattr(block, "keep_in_cache", ()) for block in app.blocks.values()))
    cutoff, deleted = time.time() - age, 0
    for files in app.temp_file_sets:
        for path in list(files):
            if path in keep:
                continue
            try:
                if os.lstat(path).st_ctime < cutoff:
                    os.remove(path)
                    files.discard(path)
                    deleted += 1
            except FileNotFoundError:
                files.discard(path)
    return deleted


def start_sweeping(app: Any, every: float, age: float) -> threading.Thread:
    """``sweep`` every ``every`` seconds on a daemon thread, for as long as ``app`` exists."""
    ref = weakref.ref(app)

    def run() -> None:
        while True:
            time.sleep(every)
            blocks = ref()
            if blocks is None:
                return
            sweep(blocks, age)
            del blocks

    thread = threading.Thread(target=run, name="hub-models-sweep", daemon=True)
    thread.start()
    return thread
