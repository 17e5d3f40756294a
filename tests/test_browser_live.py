"""Live mode in headless Chromium: switch Live on, see simulated frames arrive, pause, resume.

The page starts a real `morphospace live` session (its own process) on the built map; a real
frame series is replayed into it over ZMQ; points reach the page over the session's websocket.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import click, map_count
from tests.conftest import DEMO_DATA, LIVE_SOURCE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PATCHES = 16  # the built map's dataset cuts each 500 px frame into 4 × 4 patches of 125 px


def status(driver, key: str) -> str:
    return driver.find_element(By.ID, "live-status").get_attribute(f"data-{key}") or ""


def points(driver) -> int:
    return int(status(driver, "points") or 0)


def drawn_live_points(driver) -> int:
    return driver.execute_script("""
        const gd = document.querySelector('.ms-map .js-plotly-plot');
        const t = (gd.data || []).find(t => t.meta === 'live');
        return t ? t.x.length : 0;""")


def replay(frames: np.ndarray, start_index: int) -> threading.Thread:
    """Send frames to the live session in the background, as a detector would."""
    from streaming.simulator import replay_zmq

    thread = threading.Thread(target=replay_zmq, args=(frames, LIVE_SOURCE),
                              kwargs={"rate": 25, "start_index": start_index, "end": False}, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def page(browser, web_app):
    browser.get(web_app)
    WebDriverWait(browser, 120).until(lambda d: map_count(d) is not None)  # a map is shown: Live has one to use
    return browser


def test_live_points_arrive_pause_and_resume(page):
    """Frames sent after Live is on appear on the map; while paused they wait; resume shows them all."""
    frames = np.load(DEMO_DATA / "colloids_brightfield.npz")["frames"]
    click(page, page.find_element(By.CSS_SELECTOR, ".ms-live-switch input"))
    WebDriverWait(page, 120).until(lambda d: status(d, "state") == "connected")

    replay(frames[:6], 0).join(timeout=60)
    WebDriverWait(page, 60).until(lambda d: points(d) == 6 * PATCHES)
    assert drawn_live_points(page) == 6 * PATCHES

    click(page, page.find_element(By.CSS_SELECTOR, ".ms-live-pause"))
    WebDriverWait(page, 10).until(lambda d: status(d, "state") == "paused")
    replay(frames[6:10], 6).join(timeout=60)
    WebDriverWait(page, 60).until(lambda d: int(status(d, "buffered") or 0) > 0)
    assert points(page) == 6 * PATCHES and drawn_live_points(page) == 6 * PATCHES

    click(page, page.find_element(By.CSS_SELECTOR, ".ms-live-pause"))
    WebDriverWait(page, 60).until(lambda d: points(d) == 10 * PATCHES)
    assert drawn_live_points(page) == 10 * PATCHES
    assert page.find_element(By.CSS_SELECTOR, ".ms-live-pause").text == "Pause"

    click(page, page.find_element(By.CSS_SELECTOR, ".ms-live-switch input"))  # off: the session ends
    WebDriverWait(page, 30).until(lambda d: status(d, "state") == "off")
