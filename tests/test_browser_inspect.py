"""The inspect panel in headless Chromium, acting as a person: lasso, read the statistics, page the gallery.

One page load for the module; the tests run in file order on that page (the lasso first).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from headless_chromium import to_viewport
from tests.browser import (click, lasso, map_count, read_all, wait_for, wait_for_map, wait_for_map_count,
                           wait_for_text)
from tests.conftest import INTEGRATION_PROJECT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PANEL = ".ms-inspect"
PNG = "[src^='data:image/png;base64,']"


def map_selected(driver) -> int | None:
    found = map_count(driver)
    return found[1] if found else None


def panel_count(driver) -> int:
    texts = read_all(driver, f"{PANEL} .ms-count")
    return int(texts[0].replace(",", "")) if texts and texts[0] else 0


def open_tab(driver, label: str) -> None:
    click(driver, driver.find_element(By.CSS_SELECTOR, PANEL).find_element(By.LINK_TEXT, label))


@pytest.fixture(scope="module")
def page(browser, web_app):
    """The explorer with its map drawn and the inspect panel waiting for a selection."""
    browser.get(web_app)
    wait_for_map_count(browser)
    wait_for_map(browser, ".ms-map .js-plotly-plot")
    wait_for_text(browser, PANEL, "Lasso a region")
    return browser


def test_lasso_shows_count_composition_and_mean_std_images(page):
    """A lasso over most of the map: the panel's count matches the map's, mean and std PNGs appear."""
    lasso(page, page.find_element(By.CSS_SELECTOR, ".ms-map .nsewdrag"), 0.03, 0.03, 0.97, 0.97)
    WebDriverWait(page, 60).until(lambda d: (map_selected(d) or 0) > 0 and panel_count(d) == map_selected(d))
    selected = panel_count(page)
    rows = page.find_elements(By.CSS_SELECTOR, f"{PANEL} .ms-composition tr")
    per_cluster = [int(r.find_elements(By.TAG_NAME, "td")[1].text.replace(",", "")) for r in rows]
    assert rows and sum(per_cluster) == selected
    assert all(re.fullmatch(r"cluster \d+|noise", r.find_element(By.TAG_NAME, "td").text) for r in rows)
    wait_for(page, f"{PANEL} img.ms-mean{PNG}", timeout=60)
    wait_for(page, f"{PANEL} img.ms-std{PNG}", timeout=10)
    assert f"{selected} frames read" in page.find_element(By.CSS_SELECTOR, PANEL).text
    assert not page.find_elements(By.CSS_SELECTOR, f"{PANEL} .alert-danger")


def test_gallery_shows_captioned_thumbnails_and_pages(page):
    """The gallery shows up to 24 thumbnails captioned index · cluster; page 2 shows the next ones."""
    selected = panel_count(page)
    assert selected > 0, "the lasso test runs first"
    open_tab(page, "Gallery")
    wait_for(page, f"{PANEL} .ms-gallery img{PNG}", timeout=60)
    thumbs = page.find_elements(By.CSS_SELECTOR, f"{PANEL} .ms-gallery figure")
    assert len(thumbs) == min(24, selected)
    captions = [t.find_element(By.TAG_NAME, "figcaption").text for t in thumbs]
    assert all(re.fullmatch(r"#\d+ · (c\d+|noise)", c) for c in captions), captions
    first = [int(c[1:].split()[0]) for c in captions]
    assert first == sorted(first)
    if selected <= 24:
        pytest.skip(f"one page only ({selected} frames selected)")
    click(page, page.find_element(By.CSS_SELECTOR, f"{PANEL} .ms-pages").find_element(By.LINK_TEXT, "2"))
    wait_for_text(page, f"{PANEL} .ms-gallery-range", f"frames 25–{min(48, selected)} of {selected}")
    captions = page.find_elements(By.CSS_SELECTOR, f"{PANEL} .ms-gallery figcaption")
    second = [int(c.text[1:].split()[0]) for c in captions]
    assert second and min(second) > max(first)


def test_clicked_frame_shows_its_latent_neighbours(page, worker):
    """Clicking a frame of the map shows it and its 12 nearest latent neighbours, nearest first."""
    from core.data.store import Store

    clustering_id = page.find_element(By.CSS_SELECTOR, ".ms-map-count").get_attribute("title").split()[-1]
    store = Store.from_uri(worker["tiled_uri"], api_key=worker["api_key"], project=INTEGRATION_PROJECT)
    embedding = store.array("projections", store.metadata("clusterings", clustering_id)["projection_id"], "embedding")
    # Clear the lasso (a double-click in a corner), else a click inside its outline edits the outline.
    corner = page.execute_script("const p = document.querySelector('.ms-map .nsewdrag');"
                                 "p.scrollIntoView({block: 'center', behavior: 'instant'});"
                                 "const r = p.getBoundingClientRect(); return [r.left + 3, r.top + 3];")
    ActionChains(page, duration=50).move_to_location(int(corner[0]), int(corner[1])).double_click().perform()
    WebDriverWait(page, 30).until(lambda d: map_selected(d) == 0)
    centre = np.median(embedding[:, :2], axis=0)
    i = int(np.argmin(np.linalg.norm(embedding[:, :2] - centre, axis=1)))
    open_tab(page, "Neighbours")  # first: the tab can move the page (the synthesis panel sits above it)
    [(x, y)] = to_viewport(page, embedding[i : i + 1, :2])
    ActionChains(page, duration=50).move_to_location(int(x), int(y)).click().perform()
    wait_for(page, f"{PANEL} .ms-neighbours img{PNG}", timeout=60)
    captions = [c.text for c in page.find_elements(By.CSS_SELECTOR, f"{PANEL} .ms-neighbours figcaption")]
    assert captions[0] == f"#{i} clicked" and len(captions) == 13
    distances = [float(c.split("· ")[1]) for c in captions[1:]]
    assert distances == sorted(distances)
