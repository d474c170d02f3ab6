"""What a visitor sees of the page's layout, in headless Chromium: at phone width (390x844) and on a desktop
(1400x1000). Skips without Chromium (`apt-get install chromium chromium-driver`)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("selenium.webdriver")
from demo_page import (
    BROWSER,
    error_toasts,
    image_bytes,
    make_driver,
    open_tab,
    panels,
    shown_images,
    visible,
    wait_for,
)
from demo_server import DemoServer, stand_in_weights
from selenium.webdriver.common.by import By

pytestmark = BROWSER
TABS = ("DCGAN faces", "CGAN digit picker", "VAE reconstruction", "2-D toy distribution", "All models")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    demo = DemoServer(env=stand_in_weights(tmp_path_factory.mktemp("weights")))
    yield demo
    demo.stop()


def phone():
    """Chromium as a 390x844 phone (a headless window is at least 500 px wide: the viewport is set instead)."""
    driver = make_driver(500, 844)
    metrics = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver


def tab_buttons(driver) -> dict[str, object]:
    return {b.text.strip(): b for b in visible(driver.find_elements(By.XPATH, "//button[@role='tab']"))}


def test_at_phone_width_every_tab_is_in_sight_and_the_faces_are_face_sized(server):
    """At 390x844 each tab's name is on the page (not folded into a "..." menu) and opens its tab with a click;
    the 16 faces are drawn at least 64 CSS px wide (they were 38 px: 8 a row in a 309 px column), the rest of the
    grid a sideways scroll away."""
    driver = phone()
    try:
        driver.get(server.url)
        wait_for(lambda: len(tab_buttons(driver)) == len(TABS), timeout=60, what="every tab's name in sight")
        for tab in reversed(TABS):  # each one clicked where a person sees it
            tab_buttons(driver)[tab].click()
            wait_for(lambda tab=tab: tab_buttons(driver)[tab].get_attribute("aria-selected") == "true",
                     timeout=20, what=f"the {tab} tab")  # fmt: skip
            assert len(panels(driver)) == 1
        panel = open_tab(driver, server.url, "DCGAN faces", load=False)
        grid = wait_for(lambda: panel.find_elements(By.CSS_SELECTOR, "#face-grid img"), what="the faces")[0]
        wait_for(lambda: grid.get_attribute("naturalWidth") not in (None, "0"), what="the faces drawn")
        assert grid.rect["width"] / 8 >= 64, f"a face is {grid.rect['width'] / 8:.0f} CSS px wide"
        frame = panel.find_element(By.ID, "face-grid")
        reach = driver.execute_script("return [arguments[0].scrollWidth, arguments[0].clientWidth]", frame)
        assert driver.execute_script("return window.innerWidth") == 390
        assert reach[0] >= grid.rect["width"] - 1 and reach[1] < 390, reach  # all of it, by scrolling sideways
    finally:
        driver.quit()


def badges_over_pictures(driver, panel) -> list[str]:
    """The label badges drawn over a shown result picture (a badge lets clicks through, so it is found by where
    it is drawn, not by what is under the pointer)."""
    script = """
      const img = arguments[0], block = img.closest('.block'); const r = img.getBoundingClientRect();
      return Array.from(block ? block.querySelectorAll('[data-testid=block-label]') : []).filter(l => {
        const b = l.getBoundingClientRect();
        return b.width > 0 && b.left < r.right && b.right > r.left && b.top < r.bottom && b.bottom > r.top;
      }).map(l => l.textContent.trim());
    """
    return [text for img in shown_images(panel, min_px=28) for text in driver.execute_script(script, img)]


def test_no_label_badge_covers_a_result_picture(server):
    """Gradio's label badge sat over the top-left corner of the result pictures (the first face, digit, frame):
    in every tab, no badge is drawn over a picture."""
    driver = make_driver()
    try:
        for i, tab in enumerate(t for t in TABS if t != "2-D toy distribution"):  # a chart there, no picture
            panel = open_tab(driver, server.url, tab, load=i == 0)
            wait_for(lambda panel=panel: shown_images(panel, min_px=28), timeout=60, what=f"the {tab} result")
            assert not badges_over_pictures(driver, panel), (tab, badges_over_pictures(driver, panel))
    finally:
        driver.quit()


def test_the_latent_walk_shows_its_axis_labels(server):
    """The walk is shown whole, with the names of its two axes drawn beside it: dark text on white margins
    below and on the left of the grid of digits."""
    driver = make_driver()
    try:
        panel = open_tab(driver, server.url, "VAE reconstruction")
        walk = wait_for(lambda: panel.find_elements(By.CSS_SELECTOR, "#vae-walk img"), what="the latent walk")[0]
        wait_for(lambda: walk.get_attribute("naturalWidth") not in (None, "0"), what="the walk drawn")
        shown = np.asarray(Image.open(io.BytesIO(image_bytes(driver, walk))).convert("L"), dtype=float)
        ratio = walk.rect["width"] / walk.rect["height"]
        assert abs(ratio - shown.shape[1] / shown.shape[0]) < 0.02, "the walk is cropped or stretched"
        margin = 28  # gpu_work.axis_labels
        below, left = shown[-margin:, margin:], shown[:-margin, :margin]
        for name, strip in (("below", below), ("left", left)):
            dark = (strip < 100).mean()
            assert np.median(strip) > 240 and 0.01 < dark < 0.4, f"no axis label {name} ({dark:.3f} dark)"
    finally:
        driver.quit()


def test_busy_is_a_message_not_a_mark_on_the_model_choice(tmp_path):
    """With the live-training queue full, "Train live" answers with an error message saying busy, and the model
    radio is not marked invalid (it was a red overlay on it, as if the model were a wrong choice)."""
    import httpx

    demo = DemoServer(env=stand_in_weights(tmp_path / "weights"))
    driver = make_driver()
    try:
        with httpx.Client(timeout=30) as http:  # one training runs, the queue's 8 places fill, the rest is refused
            answers = [http.post(demo.url + "gradio_api/call/toy_train", json={"data": ["gan-toy2d", 5000, i]})
                       for i in range(12)]  # fmt: skip
        assert any(a.status_code != 200 for a in answers), "the queue did not fill"
        panel = open_tab(driver, demo.url, "2-D toy distribution")
        [train] = visible(panel.find_elements(By.XPATH, ".//button[normalize-space()='Train live']"))
        train.click()
        toasts = wait_for(lambda: error_toasts(driver), timeout=60, what="the busy message")
        assert any("busy" in t for t in toasts), toasts
        marks = [e.text for e in visible(panel.find_elements(By.CSS_SELECTOR, ".validation-error"))]
        assert not marks, marks
    finally:
        driver.quit()
        demo.stop()
