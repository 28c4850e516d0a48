"""The live page in a real browser: headless Chromium (Debian's chromium + chromium-driver, Selenium) watches
``activemat run --view`` on a small campaign whose DFT is a ReplayOracle, then ``activemat view`` on the
finished store.

Checked as a user would see it: the plots are drawn, the header shows the store's number of completed
calculations and follows it as rows land, and neither the driver (with its Dask scheduler and workers)
nor the standalone view listens on anything but the loopback.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from activemat.store.read import read_store
from tests.browser import chromium

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
if chromium.find() is None:
    pytestmark.append(pytest.mark.skip(reason="needs Debian's chromium and chromium-driver (make test installs "
                                              "them)"))

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "browser" / "view_driver.py"
LINE = re.compile(r"view: (http://127\.0\.0\.1:(\d+)/)")
PLOTS = 3  # band gap, learning curve, parity


def completed(store: Path) -> int:
    """The store's completed calculations, as `activemat status` counts them (ok rows)."""
    if not store.exists():
        return 0
    return int((read_store(store).calculations["status"] == "ok").sum())


class Lines:
    """A process's stream read in a thread (so the pipe never fills), kept as text."""

    def __init__(self, stream):
        self.text, self._stream = "", stream
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.text += line

    def close(self) -> None:
        """Once the process has ended: the rest of its output, then the pipe closed."""
        self._thread.join(timeout=10)
        self._stream.close()

    def url(self, timeout: float = 60) -> tuple[str, int]:
        m = chromium.wait_until(lambda: LINE.search(self.text), timeout)
        assert m, f"no 'view: http://127.0.0.1:PORT/' line within {timeout} s:\n{self.text}"
        return m.group(1), int(m.group(2))


def only_loopback(pid: int, port: int) -> None:
    sockets = chromium.listening(pid)
    assert any(p == port for _, _, p in sockets), f"nothing listens on the page's port {port}: {sockets}"
    outside = [s for s in sockets if not chromium.loopback(s[1])]
    assert not outside, f"listening beyond the loopback (pid, address, port): {outside}"


def shown(browser, label: str = "completed") -> int | None:
    return chromium.count(chromium.page_text(browser), label)


def top_pick(browser) -> int | None:
    """Row number of the newest calculation in the 'last picks' table."""
    m = re.search(r"DFT gap \(eV\) (\d+) ", chromium.page_text(browser))
    return int(m.group(1)) if m else None


def running_rows(browser) -> str:
    """The 'running' table's rows, as text."""
    text = chromium.page_text(browser)
    return text[text.find("elapsed / expected"):text.find("recent failures")]


def screenshot(browser, name: str, tmp: Path) -> None:
    """Into tmp; also into $ACTIVEMAT_SCREENSHOTS when set (how docs/figures/view-*.png can be remade)."""
    browser.save_screenshot(str(tmp / name))
    if os.environ.get("ACTIVEMAT_SCREENSHOTS"):
        browser.save_screenshot(str(Path(os.environ["ACTIVEMAT_SCREENSHOTS"]) / name))


@pytest.fixture
def browser():
    b = chromium.start(1440, 1700)
    yield b
    b.quit()


def test_page_follows_a_running_campaign_then_reports_the_finished_store(tmp_path, browser, campaign_file):
    budget = 8
    campaign_file("c.toml", name="browser", store="runs/live.h5", seed=2, test_size=1, strategy={"n_seed": 4},
                  stop={"budget": budget}, cluster={"dashboard": None})  # the Dask dashboard on, as by default
    store = tmp_path / "runs" / "live.h5"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # 5 s per result: at load 6 the page was up only as the 8th of 9 rows landed with 2.5 s, and the last row
    # ends the run (and its server), so the page never showed a row after its first agreement
    driver = subprocess.Popen([sys.executable, str(DRIVER), "c.toml", "5.0", "--view-port", "0"], cwd=tmp_path,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = Lines(driver.stderr)
    try:
        url, port = err.url()
        browser.get(url)
        assert chromium.wait_until(lambda: chromium.canvases(browser) >= PLOTS, 60), "the plots were not drawn"
        # the page binds the loopback only, and so do the driver's Dask scheduler and workers
        only_loopback(driver.pid, port)

        # the header shows the store's count: wait until both agree on a count with results in it
        def agreed():
            n = completed(store)
            return n if n >= 2 and shown(browser) == n else None
        first = chromium.wait_until(agreed, 60)
        assert first, f"page shows {shown(browser)}, store has {completed(store)}\n{err.text}"
        pick, queue = top_pick(browser), running_rows(browser)
        # a new row lands: the page follows without a reload
        assert chromium.wait_until(lambda: completed(store) > first, 60), err.text
        later = chromium.wait_until(lambda: (n := completed(store)) > first and shown(browser) == n and n, 30)
        assert later, f"page stuck at {shown(browser)}, store has {completed(store)}"
        # the tables follow too: newer picks, other calculations running
        assert chromium.wait_until(lambda: (top_pick(browser) or -1) > pick, 10), (pick, top_pick(browser))
        assert chromium.wait_until(lambda: running_rows(browser) != queue, 10), queue
        text = chromium.page_text(browser)
        assert "campaign running" in text and "Dask dashboard" in text
        screenshot(browser, "view-running.png", tmp_path)
        assert driver.wait(timeout=120) == 0, err.text
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        err.close()

    final = completed(store)
    # the same page, served on its own from the finished store: a report
    view = subprocess.Popen([sys.executable, "-m", "activemat.cli", "view", str(store), "--port", "0"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Lines(view.stdout)
    try:
        url, port = out.url()
        only_loopback(view.pid, port)
        browser.get(url)
        assert chromium.wait_until(lambda: chromium.canvases(browser) >= PLOTS, 60), "the plots were not drawn"
        assert chromium.wait_until(lambda: shown(browser) == final, 30), (shown(browser), final)
        text = chromium.page_text(browser)
        assert "no driver" in text and f"{budget} of budget {budget}" in text
        assert "held-out" in text and "recent failures (the last" in text  # the oracle failed some first attempts
        time.sleep(1.0)
        screenshot(browser, "view-finished.png", tmp_path)
    finally:
        view.send_signal(signal.SIGINT)
        try:
            code = view.wait(timeout=20)
        except subprocess.TimeoutExpired:
            view.kill()
            code = view.wait()
        out.close()
    assert code == 0, out.text
