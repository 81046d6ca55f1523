"""A headless Chromium, driven with selenium, and the checks of a report page in it.

The browser is Debian's ``chromium`` with its ``chromium-driver`` (``.ci/run``
installs both); where either is missing, :func:`start_chromium` skips the test with
that reason (``tests/conftest.py``'s ``chromium`` fixture holds one per
module). Run as a script to check any report::

    python -m tests.browser results/topo2body/report.html [screenshot.png]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

#: The viewport of the checks, in CSS pixels: a laptop screen.
WIDTH, HEIGHT = 1400, 900

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")
_DRIVERS = ("chromedriver", "/usr/lib/chromium/chromedriver")


def _first(names: tuple[str, ...]) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


def start_chromium() -> Any:
    """A headless Chromium with a WIDTH x HEIGHT viewport; ``pytest.skip`` where none is installed."""
    browser, driver = _first(_BROWSERS), _first(_DRIVERS)
    if browser is None or driver is None:
        pytest.skip(
            f"no {'Chromium' if browser is None else 'chromedriver'} installed "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(arg)
    # the driver given, so that selenium never looks for one on the network
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    chrome.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    return chrome


_ABOVE_FOLD = """
const top = id => { const e = document.getElementById(id); return e ? e.getBoundingClientRect().top : null; };
const table = document.querySelector('#headline ~ table');
return {height: window.innerHeight, headline: top('headline'), warnings: top('warnings'),
        headline_table: table ? table.getBoundingClientRect().top : null};
"""

_IMAGES_DONE = "return Array.from(document.images).every(i => i.complete);"

_LAYOUT = """
document.querySelectorAll('details').forEach(d => d.open = true);
const width = document.documentElement.clientWidth;
const wide = [];
for (const el of document.querySelectorAll('table, figure, img, pre')) {
  const r = el.getBoundingClientRect();
  if (r.width > 0 && (r.left < -0.5 || r.right > width + 0.5)) {
    const where = el.closest('[id]');
    wide.push(`${el.tagName.toLowerCase()} in #${where ? where.id : '?'}: ${Math.round(r.left)} to ${Math.round(r.right)} px`);
  }
}
return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth, wide: wide,
        broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
        n_images: document.images.length,
        anchors: Array.from(document.querySelectorAll('a[href^="#"]')).map(a => a.getAttribute('href'))
                   .filter(h => !document.getElementById(decodeURIComponent(h.slice(1)))),
        files: Array.from(document.querySelectorAll('a[href]:not([href^="#"])')).map(a => a.href)};
"""


def report_problems(chrome: Any, page: Path) -> list[str]:
    """What is wrong with ``page`` at WIDTH x HEIGHT; empty when nothing is.

    Checks that the headline table and the warnings start above the fold (the
    page as it opens), then, with every ``<details>`` open, that every image
    loads, every link inside the page or to a file next to it resolves, and
    no table, figure, image or preformatted block is wider than the viewport.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    chrome.get(page.resolve().as_uri())
    problems = []
    fold = chrome.execute_script(_ABOVE_FOLD)
    for key in ("headline", "headline_table", "warnings"):
        if fold[key] is None or not 0 <= fold[key] < fold["height"]:
            problems.append(f"{key} starts at {fold[key]} px, below the fold ({fold['height']} px)")
    chrome.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);")
    WebDriverWait(chrome, 30).until(lambda c: c.execute_script(_IMAGES_DONE))
    layout = chrome.execute_script(_LAYOUT)
    if layout["scroll"] > layout["inner"]:
        problems.append(
            f"the page scrolls sideways: {layout['scroll']} px wide in a {layout['inner']} px window"
        )
    problems += [f"wider than the window: {w}" for w in layout["wide"]]
    problems += [f"image does not load: {src}" for src in layout["broken"]]
    problems += [f"link to a missing anchor: {h}" for h in layout["anchors"]]
    for url in layout["files"]:
        parts = urlsplit(url)
        if parts.scheme == "file" and not Path(unquote(parts.path)).exists():
            problems.append(f"link to a missing file: {url}")
    if not layout["n_images"]:
        problems.append("no images on the page")
    return problems


if __name__ == "__main__":
    chrome = start_chromium()
    try:
        found = report_problems(chrome, Path(sys.argv[1]))
        if len(sys.argv) > 2:
            chrome.execute_script(
                "document.querySelectorAll('details').forEach((d, i) => d.open = i == 0)"
            )
            chrome.execute_script("window.scrollTo(0, 0)")
            chrome.save_screenshot(sys.argv[2])
    finally:
        chrome.quit()
    print("\n".join(found) or "no problems")
    sys.exit(1 if found else 0)
