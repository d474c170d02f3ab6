"""The demo as a first-time visitor meets it: headless Chromium does what a person did, and the test checks what
they see (the page's text and the pictures' pixels). Skips without Chromium (`apt-get install chromium
chromium-driver`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

pytest.importorskip("selenium.webdriver")
from demo_page import (
    BROWSER,
    button,
    error_toasts,
    image_bytes,
    make_driver,
    open_tab,
    panels,
    picture,
    shown_images,
    visible,
    wait_for,
)
from demo_server import DemoServer, stand_in_weights
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

pytestmark = BROWSER
RECONSTRUCT = "Reconstruct the drawing / upload"
ARTIFACTS = os.environ.get("HUB_MODELS_ARTIFACTS")  # screenshots and pictures go there when set


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    demo = DemoServer(env=stand_in_weights(tmp_path_factory.mktemp("weights")))
    yield demo
    demo.stop()


@pytest.fixture
def page():
    driver = make_driver()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """A clean drawing of a one (black on white PNG) and a photo of a seven (dark ink on beige paper, JPEG)."""
    folder = tmp_path_factory.mktemp("pictures")
    one = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(one).line([(100, 30), (100, 170)], fill="black", width=16)
    one.save(folder / "one.png")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    paper = np.stack([225 - 0.03 * xx, 205 - 0.03 * yy, 170 + 0 * xx], -1) + rng.normal(0, 4, (480, 640, 3))
    photo = Image.fromarray(paper.clip(0, 255).astype(np.uint8))
    ImageDraw.Draw(photo).line([(300, 120), (360, 110), (330, 360)], fill=(40, 35, 45), width=14)
    photo.filter(ImageFilter.GaussianBlur(1)).save(folder / "seven.jpg", quality=85)
    return folder


def upload(panel, path) -> None:
    """Choose a file in the panel's upload box, as the file dialog does; return once the box shows it (the file
    reached the server, which then runs the upload's event)."""
    [box] = panel.find_elements(By.CSS_SELECTOR, "#vae-upload input[type=file]")
    box.send_keys(str(path))
    previews = lambda: panel.find_elements(By.CSS_SELECTOR, "#vae-upload img")  # noqa: E731
    shown = lambda: any(int(i.get_attribute("naturalWidth") or 0) > 0 for i in previews())  # noqa: E731
    wait_for(shown, timeout=60, what="the upload's preview")


def stroke(driver, panel) -> None:
    """A vertical stroke on the sketchpad, without picking a tool first (what a visitor does)."""
    [canvas] = visible(panel.find_elements(By.TAG_NAME, "canvas"))
    chain = ActionChains(driver).move_to_element_with_offset(canvas, 0, -60).click_and_hold()
    for _ in range(12):
        chain.move_by_offset(0, 10)
    chain.release().perform()


def reconstruction(driver, panel, before: set[str]) -> Image.Image:
    """Press Reconstruct; the new input | reconstruction picture (fails on an error toast)."""
    button(panel, RECONSTRUCT).click()
    result = "#vae-pair img"
    new = lambda: [i for i in driver.find_elements(By.CSS_SELECTOR, result) if i.get_attribute("src") not in before]  # noqa: E731
    wait_for(lambda: new() or error_toasts(driver), timeout=60, what="the reconstruction")
    assert not error_toasts(driver), error_toasts(driver)
    pair = picture(driver, new()[0]).convert("L")
    if ARTIFACTS:
        stamp = time.strftime("%H%M%S")
        pair.save(Path(ARTIFACTS) / f"vae-pair-{stamp}.png")
        driver.save_screenshot(str(Path(ARTIFACTS) / f"vae-page-{stamp}.png"))
    return pair


def srcs(driver) -> set[str]:
    return {i.get_attribute("src") for i in driver.find_elements(By.CSS_SELECTOR, "#vae-pair img")}


def ink_share(pair: Image.Image) -> float:
    """The share of inked pixels (even faint grey) in the input (left) half of an input | reconstruction
    picture, inside the padding between the two."""
    side = pair.width // 2
    left = np.asarray(pair.crop((side // 10, pair.height // 10, side - side // 10, pair.height - pair.height // 10)))
    return float((left > 40).mean())


def test_an_upload_on_a_fresh_page_stays_and_is_reconstructed(page, server, pictures):
    panel = open_tab(page, server.url, "VAE reconstruction")
    upload(panel, pictures / "one.png")
    time.sleep(2.5)  # the old page cleared the upload about a second later
    assert any("one" in (i.get_attribute("alt") or "") or i.get_attribute("src") for i in shown_images(panel))
    pair = reconstruction(page, panel, srcs(page))
    assert 0.02 < ink_share(pair) < 0.3, "the input half shows no stroke (or a box)"
    assert "MSE" in panel.text


def test_the_first_stroke_on_a_fresh_page_draws(page, server):
    panel = open_tab(page, server.url, "VAE reconstruction")
    time.sleep(1)
    stroke(page, panel)
    pair = reconstruction(page, panel, srcs(page))
    assert 0.02 < ink_share(pair) < 0.3


def test_draw_then_upload_then_clear_the_canvas(page, server, pictures):
    """The newer of drawing and upload counts; clearing the canvas leaves the upload (and it then counts)."""
    panel = open_tab(page, server.url, "VAE reconstruction")
    time.sleep(1)
    stroke(page, panel)
    upload(panel, pictures / "seven.jpg")
    time.sleep(1.5)
    first = reconstruction(page, panel, srcs(page))
    shown = srcs(page)  # another picture in between: the same result twice is the same file (the same URL)
    button(panel, "Reconstruct this test example").click()
    wait_for(lambda: srcs(page) != shown, timeout=60, what="the example")
    clear = [b for b in panel.find_elements(By.CSS_SELECTOR, "#vae-sketch button") if "clear" in
             (b.get_attribute("aria-label") or b.get_attribute("title") or "").lower()]  # fmt: skip
    assert clear, "no Clear button on the sketchpad"
    clear[0].click()
    time.sleep(1)
    second = reconstruction(page, panel, srcs(page))
    assert np.array_equal(np.asarray(first), np.asarray(second)), "the upload did not count in both"


def test_a_photo_of_handwriting_is_a_digit_not_a_grey_box(page, server, pictures):
    """Dark ink on beige paper (a JPEG photo): the input half shows a stroke, not the whole paper as ink."""
    panel = open_tab(page, server.url, "VAE reconstruction")
    upload(panel, pictures / "seven.jpg")
    pair = reconstruction(page, panel, srcs(page))
    assert 0.02 < ink_share(pair) < 0.15, f"{ink_share(pair):.2f} of the input is ink"


PLOT_MARKS = """return Array.from(document.querySelectorAll(arguments[0] + ' g.mark-symbol path'))
  .map(p => p.getAttribute('transform')).join(';')"""


def test_switching_toy_models_shows_the_new_models_points(page, server):
    """Another model, then "Show bundled model": the new model's points at once (pressing again changes
    nothing), both ways, twice."""
    panel = open_tab(page, server.url, "2-D toy distribution")

    def show(model: str) -> str:
        [choice] = [label for label in panel.find_elements(By.CSS_SELECTOR, "label") if label.text.strip() == model]
        choice.click()
        time.sleep(1)
        shown = []
        for _ in range(2):
            before = page.execute_script(PLOT_MARKS, "#toy-plot")
            button(panel, "Show bundled model").click()
            wait_for(lambda b=before: page.execute_script(PLOT_MARKS, "#toy-plot") not in ("", b) or len(shown) == 1,
                     timeout=60, what=f"{model}'s points")  # fmt: skip
            time.sleep(2)  # the chart settles
            shown.append(page.execute_script(PLOT_MARKS, "#toy-plot"))
        assert shown[0] == shown[1], f"{model}: the first press drew other points than the second"
        return shown[1]

    for _ in range(2):
        ring, toy = show("gan-ring8"), show("gan-toy2d")
        assert ring != toy


def choose(driver, dropdown, option: str) -> None:
    """Open a dropdown, type to filter, click the option (as a person picks one)."""
    dropdown.click()
    dropdown.send_keys(Keys.CONTROL, "a")
    dropdown.send_keys(option)
    items = lambda: [li for li in visible(driver.find_elements(By.CSS_SELECTOR, "ul.option-list li"))  # noqa: E731
                     if li.text.strip().lstrip("✓").strip() == option]  # fmt: skip
    wait_for(items, timeout=20, what=f"the option {option}")[0].click()
    wait_for(lambda: dropdown.get_attribute("value") == option, timeout=20, what=f"{option} chosen")


def faces_tiles(grid: Image.Image, per_row: int) -> list[np.ndarray]:
    """The faces of a grid (equal cells, ``per_row`` a row)."""
    array = np.asarray(grid.convert("RGB"), np.float32)
    side = grid.width // per_row
    inner = side // 10  # inside the padding between faces
    return [array[r + inner : r + side - inner, c + inner : c + side - inner]
            for r in range(0, grid.height - side + 1, side) for c in range(0, side * per_row, side)]  # fmt: skip


def test_the_lowest_truncation_still_draws_faces(page, server):
    """ψ at the slider's far left: every tile is a face (light and dark parts), not a plain square."""
    panel = open_tab(page, server.url, "DCGAN faces")
    [psi] = [s for s in panel.find_elements(By.CSS_SELECTOR, "input[type=range]") if "ψ" in
             (s.get_attribute("aria-label") or "")]  # fmt: skip
    psi.send_keys(Keys.HOME)
    wait_for(lambda: psi.get_attribute("value") == psi.get_attribute("min"), timeout=10, what="ψ at its minimum")
    before = {i.get_attribute("src") for i in shown_images(panel)}
    button(panel, "Generate").click()
    new = lambda: [i for i in shown_images(panel) if i.get_attribute("src") not in before]  # noqa: E731
    wait_for(lambda: new() or error_toasts(page), timeout=60, what="the faces")
    assert not error_toasts(page), error_toasts(page)
    grid = picture(page, new()[0])
    spreads = [float(tile.std()) for tile in faces_tiles(grid, 8)]
    assert min(spreads) > 18, f"a tile is nearly plain (pixel std {min(spreads):.1f})"  # 0.1 gave ~8


def test_all_models_draws_points_as_the_toy_chart_and_clears_on_switch(page, server):
    from demo_page import field, type_into

    panel = open_tab(page, server.url, "All models")
    choose(page, field(panel, "model"), "gan-ring8")
    time.sleep(1.5)
    button(panel, "Generate").click()
    legend = "return Array.from(document.querySelectorAll('#all-plot g.role-legend text')).map(t => t.textContent)"
    wait_for(lambda: {"target", "generated"} <= set(page.execute_script(legend)) or error_toasts(page),
             timeout=60, what="the chart's legend")  # fmt: skip
    assert not error_toasts(page), error_toasts(page)
    assert page.execute_script(PLOT_MARKS, "#all-plot"), "no points drawn"
    assert not [i for i in shown_images(panel) if "ring8" in (i.get_attribute("src") or "")], "a bare PNG too"
    choose(page, field(panel, "model"), "cgan-digits")
    time.sleep(1.5)
    assert not visible(page.find_elements(By.ID, "all-plot")), "the previous model's chart stays"
    # "all" digits with fewer than 10: a clear message instead of silently leaving digits out
    [count] = [s for s in panel.find_elements(By.CSS_SELECTOR, "input[type=number]")
               if s.get_attribute("aria-label") == "number input for count"]  # fmt: skip
    type_into(page, count, "5")
    button(panel, "Generate").click()
    wait_for(lambda: error_toasts(page), timeout=60, what="the message")
    assert "at least 10" in " ".join(error_toasts(page))


def test_every_tab_opens_on_a_result(page, server):
    """A first-time visitor sees a picture (or the chart's points) in every tab without pressing anything."""
    page.get(server.url)
    results = (("DCGAN faces", "#face-grid img"), ("CGAN digit picker", "#digit-grid img"),
               ("VAE reconstruction", "#vae-pair img"), ("VAE reconstruction", "#vae-walk img"),
               ("2-D toy distribution", "#toy-plot g.mark-symbol path"), ("All models", "#all-image img"))  # fmt: skip
    for tab, shown in results:
        open_tab(page, server.url, tab, load=False)
        found = wait_for(lambda s=shown: visible(page.find_elements(By.CSS_SELECTOR, s)), timeout=30, what=shown)
        if found[0].tag_name == "img":
            assert picture(page, found[0]).width > 50, shown


def test_a_results_link_restores_the_controls_and_the_same_picture(page, server):
    """Generate with other controls, follow the result's link in a fresh browser: the same controls, and the
    same PNG byte for byte."""
    from demo_page import field, type_into

    panel = open_tab(page, server.url, "DCGAN faces")
    type_into(page, field(panel, "seed"), "5")
    type_into(page, field(panel, "number input for count"), "4")
    [psi] = [s for s in panel.find_elements(By.CSS_SELECTOR, "input[type=range]") if "ψ" in
             (s.get_attribute("aria-label") or "")]  # fmt: skip
    psi.send_keys(Keys.END, Keys.LEFT, Keys.LEFT)  # 0.9
    time.sleep(0.5)
    before = {i.get_attribute("src") for i in page.find_elements(By.CSS_SELECTOR, "#face-grid img")}
    button(panel, "Generate").click()
    new = lambda: [i for i in page.find_elements(By.CSS_SELECTOR, "#face-grid img")  # noqa: E731
                   if i.get_attribute("src") not in before]  # fmt: skip
    wait_for(lambda: new() or error_toasts(page), timeout=60, what="the faces")
    assert not error_toasts(page), error_toasts(page)
    made = image_bytes(page, new()[0])
    links = lambda: [a.get_attribute("href") or "" for a in page.find_elements(By.CSS_SELECTOR, "#faces-link a")]  # noqa: E731
    link = wait_for(lambda: [h for h in links() if "seed=5" in h], timeout=20, what="the link")[0]
    assert "tab=faces" in link and "count=4" in link and "psi=0.9" in link and "rev=" in link, link
    fresh = make_driver()
    try:
        fresh.get(link)
        panel = wait_for(lambda: [p for p in panels(fresh) if "Interpolation" in p.text], timeout=60, what="the tab")[0]
        wait_for(lambda: field(panel, "seed").get_attribute("value") == "5", timeout=60, what="the seed restored")
        assert field(panel, "number input for count").get_attribute("value") == "4"
        assert field(panel, "number input for truncation ψ").get_attribute("value") == "0.9"
        shown = lambda: [image_bytes(fresh, i) for i in fresh.find_elements(By.CSS_SELECTOR, "#face-grid img")]  # noqa: E731
        wait_for(lambda: made in shown(), timeout=60, what="the same PNG")
    finally:
        fresh.quit()


def test_a_typed_link_opens_its_tab_with_its_result(page, server):
    """A link to the digit picker (typed or shared) opens that tab on that digit: the picture equals what
    pressing Generate with those controls gives."""
    from demo_page import field

    page.get(server.url + "?tab=digits&model=cgan-digits-mlp&digit=3&seed=7&count=20")
    panel = wait_for(lambda: [p for p in panels(page) if "model variant" in p.text], timeout=60, what="the tab")[0]
    wait_for(lambda: field(panel, "digit").get_attribute("value") == "3", timeout=60, what="the digit restored")
    shown = lambda: [i for i in page.find_elements(By.CSS_SELECTOR, "#digit-grid img")]  # noqa: E731
    wait_for(lambda: shown() and "cgan-digits-mlp-3-seed7-n20" in (shown()[0].get_attribute("src") or ""),
             timeout=60, what="the linked picture")  # fmt: skip
    from demo_server import call, fetch

    _, (picture_data, _) = call(server.url, "/digits", ["cgan-digits-mlp", "3", 7, 20])
    assert image_bytes(page, shown()[0]) == fetch(picture_data)
