"""The variations panel in headless Chromium against a real worker: lasso, sample, explore, refuse.

One page load for the module; the tests run in file order on that page (the run first).
"""

from __future__ import annotations

from urllib.parse import unquote

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from headless_chromium import to_viewport
from tests.browser import (click, drag, read_all, wait_for, wait_for_map, wait_for_map_count,
                           wait_for_text)
from tests.conftest import INTEGRATION_PROJECT
from tests.test_browser_inspect import map_selected
from tests.test_browser_jobs import choose, run_rows, type_number, wait_for_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PANEL = ".ms-variations"
PNG = "[src^='data:image/png;base64,']"


@pytest.fixture(scope="module")
def page(browser, web_app):
    """The explorer with its map drawn and the variations panel opened."""
    browser.get(web_app)
    wait_for_map_count(browser)
    wait_for_map(browser, ".ms-map .js-plotly-plot")
    click(browser, wait_for(browser, f"{PANEL} .accordion-button"))
    wait_for(browser, f"{PANEL} .variations-gamma")
    wait_for_text(browser, ".services-banner", "Worker ✓", timeout=60)  # the worker serves the flows
    return browser


def panel_text(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f"{PANEL} {css}").text


def value_of(driver, css: str) -> str | None:
    """A form control's current value (the property, not the attribute), read in one script call."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.value : null;", css)


def lasso_a_few(driver, worker, few: int = 5, least: int = 3) -> None:
    """Lasso a box holding about ``few`` points (``least`` at least) of the map shown (a quick run).

    The box is 30 px, or larger on a sparse map: the map shown is the newest clustered one in the
    project, which after other modules' flows may have few frames (a 30 px box once held one)."""
    from core.data.store import Store

    store = Store.from_uri(worker["tiled_uri"], api_key=worker["api_key"], project=INTEGRATION_PROJECT)
    clustering_id = driver.find_element(By.CSS_SELECTOR, ".ms-map-count").get_attribute("title").split()[-1]
    projection_id = store.metadata("clusterings", clustering_id)["projection_id"]
    px = np.asarray(to_viewport(driver, store.array("projections", projection_id, "embedding")[:, :2]))
    assert len(px) >= least, f"the map shown ({clustering_id}) has {len(px)} frames"
    for side in (30, 45, 70, 100, 150, 220):
        counts = (np.abs(px[:, None] - px[None]) < side / 2).all(axis=2).sum(axis=1)  # points in a box around each
        if counts.max() >= least:
            break
    miss = np.where(counts >= least, np.abs(counts - few), np.inf)
    ok = np.flatnonzero(miss == miss.min())
    (x, y) = px[ok[np.argmin(np.linalg.norm(px[ok] - np.median(px, axis=0), axis=1))]]  # nearest the middle
    h = side / 2
    drag(driver, [[x - h, y - h], [x + h, y - h], [x + h, y + h], [x - h, y + h], [x - h, y - h + 1]])


def test_lassoed_frames_are_sampled_and_the_results_drawn(page, worker):
    """Lasso → N = 12, filters off → the run completes in the jobs table → its result is chosen
    without a reload: reference, trace, gallery, a playing sequence and the dendrogram."""
    lasso_a_few(page, worker)
    references = WebDriverWait(page, 30).until(lambda d: map_selected(d))
    assert references >= 3, "3 reference states at least, for the variations to be clustered"
    wait_for_text(page, f"{PANEL} .ms-var-refs", f"{references} frames selected on the map → {references} reference")
    type_number(page, f"{PANEL} .variations-n_per_reference", "12")
    choose(page, f"{PANEL} .variations-preset", "clumps")  # a preset fills the filters ...
    WebDriverWait(page, 30).until(lambda d: value_of(d, f"{PANEL} .variations-iou_min") == "0.5")
    for name in ("entropy_max", "iou_min", "intensity_max"):  # blank = off: every sample is kept
        type_number(page, f"{PANEL} .variations-{name}", Keys.BACKSPACE)
    WebDriverWait(page, 30).until(  # ... and editing one makes it custom
        lambda d: value_of(d, f"{PANEL} .variations-preset") == "custom")
    before = set(run_rows(page))
    click(page, page.find_element(By.CSS_SELECTOR, f"{PANEL} .variations-submit"))
    run_id = WebDriverWait(page, 30).until(lambda d: next(iter(set(run_rows(d)) - before), False))
    wait_for_state(page, run_id, ("COMPLETED",), timeout=120)
    result = WebDriverWait(page, 30).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f"tr[data-run='{run_id}'] .jobs-result").text)
    assert result.startswith("var-")
    WebDriverWait(page, 30).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f"{PANEL} .ms-var-results").get_attribute("value") == result)
    wait_for_text(page, f"{PANEL} .ms-var-summary", f"of {references * 12:,} samples kept")
    assert read_all(page, f"{PANEL} .ms-var-filters") == ["Filters: custom, keep every sample."]
    wait_for(page, f"{PANEL} img.ms-var-ref{PNG}")
    wait_for(page, f"{PANEL} img.ms-var-trace{PNG}")
    assert len(page.find_elements(By.CSS_SELECTOR, f"{PANEL} .ms-var-gallery img{PNG}")) == 12
    wait_for(page, f"{PANEL} .ms-var-dendrogram .scatterlayer path.js-line")
    wait_for(page, f"{PANEL} .ms-var-embedding .scatterlayer .point")
    assert not page.find_elements(By.CSS_SELECTOR, f"{PANEL} .alert-danger")
    # The particle traces: the area histogram and a CSV with a row per stored trace, or a hint without any.
    from core.data.results.variations import read_traces
    from core.data.store import Store

    store = Store.from_uri(worker["tiled_uri"], api_key=worker["api_key"], project=INTEGRATION_PROJECT)
    traces = read_traces(store, result)
    n_traces = len(traces.table)
    if n_traces:
        wait_for(page, f"{PANEL} .ms-var-area-histogram .js-plotly-plot")
        [href] = read_all(page, f"{PANEL} a.ms-var-traces-csv", "href")
        rows = unquote(href.split(",", 1)[1]).strip().splitlines()
        assert rows[0].startswith("reference,particle") and f",area ({traces.units['area']})," in rows[0]
        assert len(rows) == 1 + n_traces
    else:
        wait_for_text(page, f"{PANEL} .ms-var-modes", "No particle traces")
    # Sampled vs measured: the mean-area ratio when both kinds of traces are stored, else a line saying why not.
    from core.data.results.variations import read_measured_traces

    both = n_traces and read_measured_traces(store, result) is not None
    wait_for_text(page, f"{PANEL} .ms-var-measured", "Mean diffusion area: sampled" if both else "measured traces")
    # The player steps through reference and samples in the browser.
    wait_for_text(page, f"{PANEL} .ms-var-caption", "reference")
    click(page, page.find_element(By.CSS_SELECTOR, f"{PANEL} .ms-var-play"))
    wait_for_text(page, f"{PANEL} .ms-var-caption", "of 12, ‖ε‖", timeout=10)
    click(page, page.find_element(By.CSS_SELECTOR, f"{PANEL} .ms-var-play"))
    wait_for_text(page, f"{PANEL} .ms-var-play", "Play")


def test_gamma_out_of_range_is_explained_and_not_submitted(page):
    """γ = 0 shows the field and its range beside the form; no run is added to the jobs table."""
    rows = run_rows(page)
    type_number(page, f"{PANEL} .variations-gamma", "0")
    click(page, page.find_element(By.CSS_SELECTOR, f"{PANEL} .variations-submit"))
    wait_for_text(page, f"{PANEL} .variations-message", "γ [gamma] must be", timeout=30)
    message = panel_text(page, ".variations-message")
    assert "more than 0 and at most 10 (you entered 0)" in message and "Not submitted" in message
    assert run_rows(page) == rows
