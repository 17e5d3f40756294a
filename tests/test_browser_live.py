"""Live mode in headless Chromium: switch Live on, see simulated frames arrive, pause, resume,
lasso live points and read their count in the inspect panel, see a two-time map's measure.

The page starts a real `morphospace live` session (its own process) on the built map; a real
frame series is replayed into it over ZMQ; points reach the page over the session's websocket.
The tests run in file order on one page (Live is switched off at the end of the last).
"""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import click, drag, to_viewport, wait_for_map_count
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


def replay(frames: np.ndarray, start_index: int, metadata: dict | None = None) -> threading.Thread:
    """Send frames to the live session in the background, as a detector would."""
    from streaming.simulator import replay_zmq

    thread = threading.Thread(target=replay_zmq, args=(frames, LIVE_SOURCE),
                              kwargs={"rate": 25, "start_index": start_index, "end": False,
                                      "metadata": metadata}, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def page(browser, web_app):
    browser.get(web_app)
    wait_for_map_count(browser)  # a map is shown: Live has one to use
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


def live_trace(driver, *fields: str) -> list:
    """Arrays of the live trace, as plain lists."""
    return driver.execute_script("""
        const t = document.querySelector('.ms-map .js-plotly-plot').data.find(t => t.meta === 'live');
        return arguments[0].map(f => Array.from(t[f]));""", list(fields))


def lasso_left_of_a_gap(driver, xy: np.ndarray) -> int:
    """Lasso the points left of the widest gap in their x near the middle; how many that is."""
    xs = np.unique(xy[:, 0])
    middle = slice(len(xs) // 4, 3 * len(xs) // 4)
    k = middle.start + int(np.argmax(np.diff(xs[middle.start:middle.stop + 1])))
    cut = (xs[k] + xs[k + 1]) / 2
    (left, low), (right, high) = xy.min(axis=0), xy.max(axis=0)
    pad = 0.02 * max(right - left, high - low)
    corners = [[left - pad, low - pad], [cut, low - pad], [cut, high + pad], [left - pad, high + pad]]
    path = to_viewport(driver, corners + [corners[0]])
    assert abs(path[1][0] - to_viewport(driver, [[xs[k], 0]])[0][0]) > 2, "the gap is under 3 px wide"
    drag(driver, path)
    return int((xy[:, 0] < cut).sum())


def test_lasso_over_live_points_counts_them_in_the_inspect_panel(page):
    """A lasso over some live points: the panel counts exactly those and shows their mean image."""
    x, y, custom, text = live_trace(page, "x", "y", "customdata", "text")
    assert len(x) == 10 * PATCHES, "the arrival test runs first"
    assert sorted(row for row, _ in custom) == list(range(10 * PATCHES))  # [row, frame] per point
    assert all(re.fullmatch(rf"live frame {frame} patch \d+", t) for t, (_, frame) in zip(text, custom))
    expected = lasso_left_of_a_gap(page, np.column_stack([x, y]))
    counts = WebDriverWait(page, 30).until(
        lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, ".ms-inspect .ms-live-count") if e.text])
    assert int(counts[0].replace(",", "")) == expected
    WebDriverWait(page, 30).until(lambda d: d.find_elements(
        By.CSS_SELECTOR, ".ms-inspect img.ms-live-mean[src^='data:image/png;base64,']"))


def test_two_time_map_shows_its_non_equilibrium_measure(page):
    """A frame sent as a two-time map: its measure in #live-status and in its points' hover text."""
    from core.xpcs import non_equilibrium
    from streaming.simulator import TWO_TIME_METADATA

    lag = np.abs(np.subtract.outer(np.arange(500), np.arange(500)))
    C = 1 + np.exp(-lag / 50.0)
    C[:100, :100] += 0.5  # ageing in the first fifth of the scan
    value = non_equilibrium(C)
    replay(C[None], 10, TWO_TIME_METADATA).join(timeout=60)
    WebDriverWait(page, 60).until(lambda d: status(d, "non-equilibrium"))
    assert float(status(page, "non-equilibrium")) == pytest.approx(value, rel=1e-6)  # float32 on the wire
    assert f"non-equilibrium {value:.3f} (frame 10)" in page.find_element(By.ID, "live-status").text
    [text] = live_trace(page, "text")
    assert text[-1].startswith("live frame 10 patch") and f"non-equilibrium {value:.3f}" in text[-1]

    click(page, page.find_element(By.CSS_SELECTOR, ".ms-live-switch input"))  # off: the session ends
    WebDriverWait(page, 30).until(lambda d: status(d, "state") == "off")
