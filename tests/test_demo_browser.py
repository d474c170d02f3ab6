"""The demo in a real browser: headless Chromium clicks through every tab and runs one generation in each.

Screenshots go to $HUB_MODELS_ARTIFACTS (default: the test's tmp dir). Skips when Chromium or its driver
is not installed (`apt-get install chromium chromium-driver`; .ci/run does it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
from demo_server import DemoServer, stand_in_weights  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="headless Chromium: apt-get install chromium chromium-driver"),
]


def draw_a_one(driver, panel) -> None:
    """Pick the brush and draw a vertical stroke on the sketchpad's canvas, as a user would."""
    panel.find_element(By.CSS_SELECTOR, "button[aria-label='Brush']").click()
    [canvas] = visible(panel.find_elements(By.TAG_NAME, "canvas"))
    stroke = ActionChains(driver).move_to_element_with_offset(canvas, 0, -60).click_and_hold()
    for _ in range(12):
        stroke.move_by_offset(0, 10)
    stroke.release().perform()


# tab, what to do first, button to press, what must appear in the tab afterwards (new images, text)
TABS = [
    ("DCGAN faces", None, "Generate", ("img", "")),
    ("CGAN digit picker", None, "Generate", ("img", "")),
    ("VAE reconstruction", draw_a_one, "Reconstruct the drawing / upload", ("img", "MSE")),
    ("2-D toy distribution", None, "Train live", ("", "step 1000/1000: w2 =")),
    ("All models", None, "Generate", ("img", "")),
]


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1100"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # to list every request the page makes
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def visible(elements):
    return [e for e in elements if e.is_displayed()]


def wait_for(condition, timeout: float = 90, what: str = "") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def error_toasts(driver) -> list[str]:
    toasts = driver.find_elements(By.CSS_SELECTOR, "[data-testid='toast-body'], .toast-body")
    return [t.text for t in toasts if t.is_displayed() and "error" in (t.get_attribute("class") + t.text).lower()]


def exercise_tab(driver, tab: str, prepare, button: str, expect: tuple[str, str], shots: Path) -> None:
    """Open ``tab``, press ``button``, wait for the output, screenshot, and fail on an error toast."""
    tabs = driver.find_elements(By.XPATH, "//button[@role='tab']")
    [tab_button] = [b for b in tabs if b.text.strip() == tab]
    tab_button.click()
    panels = lambda: visible(driver.find_elements(By.CSS_SELECTOR, "[role='tabpanel']"))  # noqa: E731
    wait_for(lambda: len(panels()) == 1, what=f"the {tab} panel")
    [panel] = panels()
    images = lambda: visible(panel.find_elements(By.TAG_NAME, "img"))  # noqa: E731
    before = {i.get_attribute("src") for i in images()}  # the tab opens on a result already
    xpath = f".//button[normalize-space()='{button}']"
    wait_for(lambda: visible(panel.find_elements(By.XPATH, xpath)), what=f"the {button!r} button of {tab}")
    if prepare is not None:
        prepare(driver, panel)
    visible(panel.find_elements(By.XPATH, xpath))[0].click()
    want_image, want_text = expect

    def done() -> bool:
        return (not want_image or {i.get_attribute("src") for i in images()} - before) and want_text in panel.text

    wait_for(lambda: done() or error_toasts(driver), what=f"{expect} in {tab}")
    assert not error_toasts(driver), f"{tab}: {error_toasts(driver)}"
    if want_image:
        newest = images()[-1]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", newest)
        time.sleep(0.3)
        assert any(int(img.get_attribute("naturalWidth") or 0) > 0 for img in images()), f"{tab}: empty image"
    driver.save_screenshot(str(shots / f"{tab.split()[0].lower()}.png"))
    driver.execute_script("window.scrollTo(0, 0)")


def outside_requests(driver, host: str) -> list[str]:
    """URLs the page asked for that are not on the demo's own host (fonts, CDNs, analytics...)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http:", "https:", "ws:", "wss:")) and urlsplit(url).hostname != host:
                urls.append(url)
    return urls


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # untrained stand-ins for the tabs whose models have no bundled weights yet (see demo_server.py)
    demo = DemoServer(env=stand_in_weights(tmp_path_factory.mktemp("weights")))
    yield demo
    demo.stop()


def open_tab(driver, url: str, tab: str):
    """Load the page, open ``tab``; its panel."""
    driver.get(url)
    wait_for(lambda: visible(driver.find_elements(By.XPATH, "//button[@role='tab']")), what="the tabs")
    [tab_button] = [b for b in driver.find_elements(By.XPATH, "//button[@role='tab']") if b.text.strip() == tab]
    tab_button.click()
    panels = lambda: visible(driver.find_elements(By.CSS_SELECTOR, "[role='tabpanel']"))  # noqa: E731
    wait_for(lambda: len(panels()) == 1, what=f"the {tab} panel")
    return panels()[0]


def field(panel, label: str):
    """The visible input a person types into for the field labelled ``label``."""
    found = [i for i in panel.find_elements(By.CSS_SELECTOR, f"input[aria-label='{label}']") if i.is_displayed()]
    assert found, f"no field {label!r}"
    return found[0]


def type_into(driver, element, text: str) -> None:
    element.click()
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(text)
    element.send_keys(Keys.ENTER)
    driver.execute_script("arguments[0].blur()", element)


def test_click_through_every_tab(browser, server, tmp_path):
    shots = Path(os.environ.get("HUB_MODELS_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    start = time.time()
    browser.get(server.url)
    wait_for(lambda: visible(browser.find_elements(By.XPATH, "//button[@role='tab']")), what="the tabs")
    assert time.time() - start < 30, "the page took over 30 s to show its tabs (an external fetch hanging?)"
    for tab, prepare, button, expect in TABS:
        exercise_tab(browser, tab, prepare, button, expect, shots)
    assert not outside_requests(browser, "127.0.0.1"), "the page fetched from outside the app (must work offline)"


def test_all_models_fields_take_typing(browser, server):
    """The form built from a plugin's declared inputs is editable: a visitor types a digit and gets it."""
    panel = open_tab(browser, server.url, "All models")
    type_into(browser, field(panel, "model"), "cgan-digits")  # Enter takes the first match
    wait_for(lambda: field(panel, "model").get_attribute("value").startswith("cgan-digits"), what="a digit model")
    model = field(panel, "model").get_attribute("value")
    wait_for(lambda: panel.find_elements(By.CSS_SELECTOR, "input[aria-label='digit']"), what="the digit field")
    time.sleep(1)  # the form re-renders when the model changes
    assert field(panel, "digit").is_enabled(), "the plugin's digit field is disabled"

    def seven() -> bool:  # type again if a re-render replaced the field meanwhile
        try:
            if field(panel, "digit").get_attribute("value") != "7":
                type_into(browser, field(panel, "digit"), "7")
            return field(panel, "digit").get_attribute("value") == "7"
        except StaleElementReferenceException:
            return False

    wait_for(seven, timeout=30, what="the digit to take 7")
    images = lambda: [i.get_attribute("src") for i in visible(panel.find_elements(By.TAG_NAME, "img"))]  # noqa: E731
    before = images()
    visible(panel.find_elements(By.XPATH, ".//button[normalize-space()='Generate']"))[0].click()
    wait_for(lambda: images() != before or error_toasts(browser), what="the digits")
    assert not error_toasts(browser), error_toasts(browser)
    sevens = [src for src in images() if src not in before]
    assert sevens, "no new picture"
    # the same request through the API: the picture the page shows is the sevens' one
    from demo_server import call, fetch

    _, picture = call(server.url, "/generate", [model, 0, 16, '{"label": "7"}'])
    assert fetch(picture[0]) == fetch({"url": sevens[0]})


# every 150 ms, in the page: is the plot's centre showing the plot (not an overlay), and which points it draws
WATCH_PLOT = """
window.plotFrames = [];
const plot = document.getElementById('toy-plot');
window.plotWatch = setInterval(() => {
  const r = plot.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  const shown = !!(top && top.closest('svg, canvas') && plot.contains(top));
  const marks = Array.from(plot.querySelectorAll('g.mark-symbol path')).slice(-25);
  window.plotFrames.push([shown, marks.map(p => p.getAttribute('transform')).join(';')]);
}, 150);
"""


def test_train_live_shows_the_distribution_moving(browser, server):
    """During one "train live" the visitor sees at least three different plots (no progress bar hiding them)."""
    panel = open_tab(browser, server.url, "2-D toy distribution")
    type_into(browser, field(panel, "number input for training steps"), "1000")
    browser.execute_script(WATCH_PLOT)
    visible(panel.find_elements(By.XPATH, ".//button[normalize-space()='Train live']"))[0].click()
    wait_for(lambda: "step 1000/1000:" in panel.text or error_toasts(browser), timeout=180, what="the training")
    frames = browser.execute_script("clearInterval(window.plotWatch); return window.plotFrames;")
    seen = {marks for shown, marks in frames if shown and marks}
    assert len(seen) >= 3, f"{len(seen)} different plots visible during training ({len(frames)} samples)"


def test_the_scatter_legend_is_inside_the_plot(browser, server):
    """The toy tab's legend (which colour is the target, which the generated points) is drawn inside the plot's
    box, not clipped off below it."""
    panel = open_tab(browser, server.url, "2-D toy distribution")
    visible(panel.find_elements(By.XPATH, ".//button[normalize-space()='Show bundled model']"))[0].click()
    wait_for(lambda: "bundled weights:" in panel.text or error_toasts(browser), what="the bundled model's plot")
    boxes = """
      const plot = document.getElementById('toy-plot'), box = e => e.getBoundingClientRect().toJSON();
      return [box(plot), Array.from(plot.querySelectorAll('g.role-legend text')).map(t => [t.textContent, box(t)])];
    """
    wait_for(lambda: browser.execute_script(boxes)[1], timeout=30, what="the legend")
    time.sleep(1)  # the chart re-lays itself out once after the first draw
    plot, labels = browser.execute_script(boxes)
    assert {"target", "generated"} <= {text for text, _ in labels}, labels
    clipped = [text for text, b in labels if b["bottom"] > plot["bottom"] or b["top"] < plot["top"]]
    assert not clipped, f"legend entries outside the plot's box {plot}: {labels}"
