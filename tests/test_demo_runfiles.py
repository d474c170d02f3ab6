"""The demo's files while it runs and after: served files deleted under traffic, one folder per run removed on
SIGTERM within seconds, and only dead runs' folders removed at the next start."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from demo_server import DemoServer


def test_a_long_running_space_deletes_its_outputs(monkeypatch):
    """The app's outputs go while it runs, under concurrent traffic too (Gradio's own cleanup loop died there):
    with the cleanup every second for files over a second old, PNGs served while 8 clients keep calling are
    gone a few seconds later (the server still up)."""
    from concurrent.futures import ThreadPoolExecutor

    from demo_server import call

    import hub_models.app as demo
    from hub_models.app import CACHE_CLEANUP

    every, older_than = CACHE_CLEANUP
    assert 0 < every <= 86400 and 0 < older_than <= 86400  # the real period: at most a day
    monkeypatch.setattr(demo, "CACHE_CLEANUP", (1, 1))
    app = demo.build_app()
    app.queue().launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        with ThreadPoolExecutor(8) as pool:  # 6 s of calls: the cleanup runs while files are being added
            end = time.monotonic() + 6
            list(
                pool.map(
                    lambda i: end > time.monotonic() and call(app.local_url, "/generate", ["gan-toy2d", i, 4, "{}"]),
                    range(400),
                )
            )
        kept = {f for block in app.blocks.values() for f in getattr(block, "keep_in_cache", ())}  # first results
        served = {Path(f) for files in app.temp_file_sets for f in files if f not in kept}
        assert served and all(f.is_file() for f in served)
        deadline = time.monotonic() + 30
        while any(f.exists() for f in served) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(f.exists() for f in served), "outputs still on disk while the app runs"
    finally:
        app.close()


def test_sigterm_exits_at_once_and_a_restart_removes_only_its_own_leftovers(tmp_path):
    """SIGTERM (a container stop kills 10 s later): the app exits within seconds and its folder (Gradio's cache,
    its images) is gone. A start removes what killed runs of the demo left behind, and nothing else."""
    import os
    import signal
    import subprocess
    import tempfile

    from demo_server import call

    temp = Path(tempfile.gettempdir())
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed_run = temp / f"hub-models-demo-{dead.pid}"  # an earlier run whose process is gone
    living_run = temp / f"hub-models-demo-{os.getpid()}"  # a live process's folder (this test's own pid)
    stranger = temp / f"hub-models-demos-{dead.pid}"  # not the demo's
    for folder in (killed_run, living_run, stranger):
        (folder / "gradio").mkdir(parents=True, exist_ok=True)
        (folder / "gradio" / "old.png").write_bytes(b"x")
    try:
        server = DemoServer(env={"GRADIO_TEMP_DIR": ""})
        event, _ = call(server.url, "/faces", ["dcgan-faces", 1, 4, 1.0])
        assert event == "complete"
        own = temp / f"hub-models-demo-{server.proc.pid}"
        assert any(own.rglob("*.png")), "the run's images are not in its folder"
        assert not killed_run.exists(), "a killed run's leftovers stay"
        assert living_run.exists() and stranger.exists(), "removed a folder that was not a dead run's"
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(30)
        assert time.monotonic() - start < 10, "SIGTERM took longer than a container stop waits"
        assert not own.exists(), "the run's folder is left on disk"
    finally:
        for folder in (killed_run, living_run, stranger):
            shutil.rmtree(folder, ignore_errors=True)
