"""Headless Chromium helpers for the demo's browser tests: a driver, waiting, tabs, fields, toasts, pictures."""

from __future__ import annotations

import base64
import io
import shutil
import time
from typing import Any

import pytest

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# a browser test's marks: `browser`, and skipped without Chromium
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="headless Chromium: apt-get install chromium chromium-driver"),
]


def make_driver(width: int = 1400, height: int = 1000, performance_log: bool = False) -> Any:
    """A fresh headless Chromium (a first-time visitor: no cookies, no storage)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    return driver


def visible(elements: list) -> list:
    return [e for e in elements if e.is_displayed()]


def wait_for(condition: Any, timeout: float = 90, what: str = "") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            found = condition()
        except Exception:  # a re-render replaced the element meanwhile
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def error_toasts(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    toasts = driver.find_elements(By.CSS_SELECTOR, "[data-testid='toast-body'], .toast-body")
    return [t.text for t in toasts if t.is_displayed() and "error" in (t.get_attribute("class") + t.text).lower()]


def panels(driver: Any) -> list:
    from selenium.webdriver.common.by import By

    return visible(driver.find_elements(By.CSS_SELECTOR, "[role='tabpanel']"))


def open_tab(driver: Any, url: str, tab: str, load: bool = True) -> Any:
    """Load the page (unless ``load`` is False), open ``tab``; its panel."""
    from selenium.webdriver.common.by import By

    if load:
        driver.get(url)
    tabs = lambda: visible(driver.find_elements(By.XPATH, "//button[@role='tab']"))  # noqa: E731
    wait_for(tabs, what="the tabs")
    [tab_button] = [b for b in tabs() if b.text.strip() == tab]
    tab_button.click()
    wait_for(lambda: len(panels(driver)) == 1 and tab_button.get_attribute("aria-selected") == "true",
             what=f"the {tab} panel")  # fmt: skip
    return panels(driver)[0]


def button(panel: Any, text: str) -> Any:
    from selenium.webdriver.common.by import By

    xpath = f".//button[normalize-space()='{text}']"
    return wait_for(lambda: visible(panel.find_elements(By.XPATH, xpath)), what=f"the {text!r} button")[0]


def field(panel: Any, label: str) -> Any:
    """The visible input a person types into for the field labelled ``label``."""
    from selenium.webdriver.common.by import By

    found = [i for i in panel.find_elements(By.CSS_SELECTOR, f"input[aria-label='{label}']") if i.is_displayed()]
    assert found, f"no field {label!r}"
    return found[0]


def type_into(driver: Any, element: Any, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    element.click()
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(text)
    element.send_keys(Keys.ENTER)
    driver.execute_script("arguments[0].blur()", element)


def image_bytes(driver: Any, img: Any) -> bytes:
    """The bytes the page's <img> shows (fetched by the page itself, from the same URL)."""
    script = """
      const done = arguments[arguments.length - 1];
      fetch(arguments[0].src).then(r => r.arrayBuffer()).then(b => {
        let s = ''; const a = new Uint8Array(b);
        for (let i = 0; i < a.length; i += 8192) s += String.fromCharCode.apply(null, a.subarray(i, i + 8192));
        done(btoa(s));
      }).catch(() => done(null));
    """
    encoded = driver.execute_async_script(script, img)
    return base64.b64decode(encoded) if encoded else b""


def picture(driver: Any, img: Any) -> Any:
    """The <img>'s picture as a PIL image."""
    from PIL import Image

    return Image.open(io.BytesIO(image_bytes(driver, img)))


def shown_images(panel: Any, min_px: int = 1) -> list:
    """The panel's visible <img> elements that show a loaded picture."""
    from selenium.webdriver.common.by import By

    return [
        i for i in visible(panel.find_elements(By.TAG_NAME, "img"))
        if int(i.get_attribute("naturalWidth") or 0) >= min_px
    ]  # fmt: skip
