"""Synthesis from the map in headless Chromium, acting as a person: click empty space, draw a path.

One page load for the module; the tests run in file order on that page.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from headless_chromium import to_viewport
from tests.browser import (click, drag, shown_embedding, wait_for, wait_for_map, wait_for_map_count,
                           wait_for_text)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PANEL = ".ms-synthesis"
GRAPH = "document.querySelector('.ms-map .js-plotly-plot')"


def traces(driver, meta: str) -> list[dict]:
    """x and y of the map's traces whose meta is ``meta`` (assets/synthesis.js names its own)."""
    return driver.execute_script(
        f"return ({GRAPH}.data || []).filter(t => t.meta === arguments[0])"
        ".map(t => ({x: Array.from(t.x || []), y: Array.from(t.y || [])}));", meta)


def caption(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, f"{PANEL} .ms-synth-caption").text


def choose_mode(driver, label: str) -> None:
    click(driver, driver.find_element(By.CSS_SELECTOR, PANEL).find_element(
        By.XPATH, f".//label[contains(., '{label}')]"))


@pytest.fixture(scope="module")
def page(browser, web_app):
    browser.get(web_app)
    wait_for_map_count(browser)
    wait_for_map(browser, ".ms-map .js-plotly-plot")
    return browser


@pytest.fixture(scope="module")
def embedding(page, worker):
    return shown_embedding(page, worker)[:, :2].astype(float)


def emptiest_spot(embedding: np.ndarray) -> np.ndarray:
    """The point of a 25 × 25 grid over the map's inner box farthest from every frame."""
    lo, hi = np.percentile(embedding, 10, axis=0), np.percentile(embedding, 90, axis=0)
    grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 25), np.linspace(lo[1], hi[1], 25)), -1).reshape(-1, 2)
    gaps = np.sqrt(((grid[:, None] - embedding[None]) ** 2).sum(-1)).min(1)
    return grid[np.argmax(gaps)]


def test_a_click_on_empty_space_shows_images_and_where_they_landed(page, embedding):
    """Click mode, a click where no frame lies: 4 generated images, a cross at the click, 4 diamonds
    where the latents landed when projected back, and the landing distance in words. Hovering a
    frame in click mode still shows its card (clicks on empty space must not take the hover)."""
    choose_mode(page, "Click → image")
    WebDriverWait(page, 20).until(lambda d: d.execute_script(f"return {GRAPH}._fullLayout.clickanywhere"))
    i = int(np.argmin(np.linalg.norm(embedding - np.median(embedding, axis=0), axis=1)))  # a central frame
    [(x, y)] = to_viewport(page, embedding[i : i + 1])
    ActionChains(page, duration=50).move_to_location(int(x), int(y)).perform()
    card = wait_for(page, ".ms-map-tooltip img[src^='data:image/png;base64,']", timeout=30).find_element(By.XPATH, "./..")
    assert re.search(r"frame \d+ · ", card.text), card.text
    ActionChains(page, duration=50).move_to_location(5, 5).perform()  # leave the map
    spot = emptiest_spot(embedding)
    (x, y), = to_viewport(page, [spot])
    # As a hand does: arrive, rest, click (Plotly clicks what the last hover found).
    ActionChains(page).move_to_location(int(x), int(y)).pause(0.2).move_by_offset(1, 0).pause(0.2).click().perform()
    wait_for(page, f"{PANEL} .ms-synth-gallery img[src^='data:image/png;base64,']", timeout=60)
    assert len(page.find_elements(By.CSS_SELECTOR, f"{PANEL} .ms-synth-gallery img")) == 4
    WebDriverWait(page, 20).until(lambda d: traces(d, "synth-landed"))
    asked, landed = traces(page, "synth-asked")[0], traces(page, "synth-landed")[0]
    assert len(landed["x"]) == 4
    span = embedding.max(0) - embedding.min(0)  # the pointer's map coordinates, to a pixel or two
    assert abs(asked["x"][0] - spot[0]) < span[0] / 100 and abs(asked["y"][0] - spot[1]) < span[1] / 100, (asked, spot)
    text = page.find_element(By.CSS_SELECTOR, f"{PANEL} .ms-synth-landing").text
    found = re.search(r"landed ([\d.e+-]+) map units", text)
    distances = np.hypot(np.array(landed["x"]) - asked["x"][0], np.array(landed["y"]) - asked["y"][0])
    assert found and float(found[1]) == pytest.approx(distances.mean(), rel=2e-3, abs=2e-3), text
    assert "UMAP-guided PCA" in page.find_element(By.CSS_SELECTOR, f"{PANEL} .ms-synth-made-by").text
    assert not page.find_elements(By.CSS_SELECTOR, f"{PANEL} .alert")


def test_a_drawn_path_plays_a_sequence(page, embedding):
    """Path mode, a drag across the map: 16 images along it in the player, which plays."""
    choose_mode(page, "Path → sequence")
    WebDriverWait(page, 20).until(lambda d: d.execute_script(f"return {GRAPH}._fullLayout.dragmode") == "drawopenpath")
    lo, hi = np.percentile(embedding, 20, axis=0), np.percentile(embedding, 80, axis=0)
    drag(page, to_viewport(page, [lo, (lo + hi) / 2 + [0, (hi - lo)[1] / 4], hi]))
    wait_for_text(page, f"{PANEL} .ms-synth-caption", "step 1 of 16", timeout=60)
    assert len(traces(page, "synth-landed")[0]["x"]) == 16
    click(page, page.find_element(By.CSS_SELECTOR, f"{PANEL} .ms-synth-play"))
    WebDriverWait(page, 10).until(lambda d: re.match(r"step ([2-9]|1[0-6]) of 16", caption(d)))
    click(page, page.find_element(By.CSS_SELECTOR, f"{PANEL} .ms-synth-play"))
    choose_mode(page, "Inspect frames")  # the map as it was: no clicks on empty space, no marks, lasso again
    WebDriverWait(page, 10).until(lambda d: not traces(d, "synth-landed") and d.execute_script(
        f"return {GRAPH}._fullLayout.dragmode") == "lasso" and not d.execute_script(
        f"return {GRAPH}._fullLayout.clickanywhere"))
