"""Headless Chromium for the browser tests and the docs' screenshots: Debian's chromium and chromium-driver
driven by Selenium, nothing downloaded, and no address but the page's own looked up.

    python tests/browser/chromium.py URL OUT.png [--width W] [--height H] [--settle SECONDS]

saves a screenshot of URL once its plots are drawn (used for docs/figures/view-*.png).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import time

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"

# Text of the page, through the shadow roots Bokeh draws its widgets in (test code only: the page has no
# hand-written JavaScript).
_TEXT = """
function walk(n) {
  let t = '';
  if (n.shadowRoot) t += walk(n.shadowRoot);
  for (const c of n.childNodes) {
    if (c.nodeType === 3) t += c.textContent;
    else if (c.nodeType === 1 && c.tagName !== 'SCRIPT' && c.tagName !== 'STYLE') t += walk(c) + ' ';
  }
  return t;
}
return walk(document.body);
"""
_CANVASES = """
function count(n) {
  let k = 0;
  if (n.shadowRoot) k += count(n.shadowRoot);
  for (const c of n.children || []) {
    if (c.tagName === 'CANVAS' && c.width > 0 && c.height > 0) k += 1;
    k += count(c);
  }
  return k;
}
return count(document.body);
"""


def find() -> tuple[str, str] | None:
    """Paths of the browser and its driver, or None when either is missing."""
    browser = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    driver = shutil.which(DRIVER)
    return (browser, driver) if browser and driver else None


def start(width: int = 1440, height: int = 1600):
    """A headless Chromium (Selenium WebDriver) with a window of ``width`` x ``height`` pixels."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch a driver
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    paths = find()
    if paths is None:
        raise RuntimeError("headless Chromium needs Debian's chromium and chromium-driver (make test installs them)")
    browser, driver = paths
    options = Options()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
                "--disable-features=OptimizationHints,MediaRouter,Translate,DialMediaRouteProvider",
                # look up no name but the loopback: the pages are on 127.0.0.1
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def page_text(browser) -> str:
    """The visible text of the page, Bokeh's shadow roots included, whitespace collapsed."""
    return " ".join(browser.execute_script(_TEXT).split())


def canvases(browser) -> int:
    """Canvases drawn on the page (one or more per Bokeh plot)."""
    return int(browser.execute_script(_CANVASES))


def count(text: str, label: str) -> int | None:
    """The number after ``label:`` in the page's text (the header's counts), or None."""
    m = re.search(rf"\b{re.escape(label)}: (\d+)", text)
    return int(m.group(1)) if m else None


def wait_until(predicate, timeout: float, step: float = 0.25):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass (None)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(step)


def listening(pid: int) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket of a process and its children."""
    import psutil

    proc = psutil.Process(pid)
    out = []
    for p in [proc, *proc.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="inet")
        except psutil.Error:  # a worker that just exited
            continue
        out += [(p.pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


def loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def screenshot(url: str, out: str, *, width: int = 1440, height: int = 1600, settle: float = 3.0,
               plots: int = 3) -> None:
    """Open ``url``, wait for its plots and the store's first reading, and save a PNG of the window."""
    browser = start(width, height)
    try:
        browser.get(url)
        if not wait_until(lambda: canvases(browser) >= plots and count(page_text(browser), "completed") is not None,
                          60):
            raise RuntimeError(f"{url}: no plots after 60 s")
        time.sleep(settle)
        browser.save_screenshot(out)
    finally:
        browser.quit()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=1600)
    parser.add_argument("--settle", type=float, default=3.0)
    a = parser.parse_args()
    screenshot(a.url, a.out, width=a.width, height=a.height, settle=a.settle)
    print(a.out)
