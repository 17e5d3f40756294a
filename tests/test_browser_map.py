"""The map in headless Chromium, acting as a person: hover, lasso, recolour, nearest neighbours.

One page load for the module (each costs seconds); the tests run in file order on that page.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from components import map_figure as mf
from headless_chromium import to_viewport
from tests.browser import drag, shown_embedding, wait_for, wait_for_map_count
from tests.browser import map_count as count

pytestmark = [pytest.mark.integration, pytest.mark.slow]

@pytest.fixture(scope="module")
def page(browser, web_app):
    """The explorer with its map drawn (points painted, WebGL working)."""
    browser.get(web_app)
    wait_for_map_count(browser)
    wait_for(browser, ".ms-map .js-plotly-plot .nsewdrag")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const gd = document.querySelector('.ms-map .js-plotly-plot');"
        "return gd && gd._fullData && gd._fullData.length > 0 && gd._fullData[0]._length > 0;"))
    assert "WebGL is not supported" not in browser.page_source
    return browser


@pytest.fixture(scope="module")
def embedding(page, worker):
    return shown_embedding(page, worker)


def test_map_draws_every_stored_point(page, embedding):
    """The count line reports the stored map's size and the drawn trace holds every point."""
    assert count(page) == (len(embedding), 0)
    drawn = page.execute_script("return document.querySelector('.ms-map .js-plotly-plot')._fullData[0]._length;")
    assert drawn == len(embedding)


def central_frame(embedding: np.ndarray) -> int:
    """The frame nearest the middle of the map (well inside the plot area)."""
    return int(np.argmin(np.linalg.norm(embedding[:, :2] - np.median(embedding[:, :2], axis=0), axis=1)))


def test_hover_shows_a_thumbnail_and_the_frame(page, embedding):
    """Hovering a point shows its thumbnail, frame index and cluster in a tooltip."""
    i = central_frame(embedding)
    [(x, y)] = to_viewport(page, embedding[i : i + 1, :2])
    ActionChains(page, duration=50).move_to_location(int(x), int(y)).perform()
    image = wait_for(page, ".ms-map-tooltip img[src^='data:image/png;base64,']", timeout=30)
    card = image.find_element(By.XPATH, "./..").text
    assert re.search(r"frame \d+ · (cluster \d+|noise)", card), card
    ActionChains(page, duration=50).move_to_location(5, 5).perform()  # leave the map


def test_lasso_selects_exactly_the_points_inside(page, embedding):
    """A lasso's count equals the stored points inside the lasso Plotly drew (data coordinates)."""
    centre = np.median(embedding[:, :2], axis=0)
    half = embedding[:, :2].std(axis=0) * 0.8
    corners = centre + half * np.array([[-1, -1], [1, -1], [1.2, 0.3], [1, 1], [-1, 1]])
    path = to_viewport(page, corners)
    drag(page, [*path, path[0]])
    WebDriverWait(page, 60).until(lambda d: (count(d) or (0, 0))[1] > 0)
    n, selected = count(page)
    shape = page.execute_script(
        "const s = document.querySelector('.ms-map .js-plotly-plot').layout.selections;"
        "return s && s.length ? s[0].path : null;")
    assert shape, "Plotly kept no selection shape"
    inside = mf.points_in_polygon(embedding[:, :2], mf.parse_svg_path(shape))
    assert selected == int(inside.sum())
    assert 0 < selected < n


def test_colour_by_frame_index_changes_the_colour_bar(page):
    """Switching the colouring to frame index retitles the colour bar; the selection stays."""
    title = "document.querySelector('.ms-map .js-plotly-plot .cbtitle')?.textContent"
    assert page.execute_script(f"return {title};") == "cluster"
    before = count(page)
    Select(page.find_element(By.CSS_SELECTOR, ".ms-map-colour")).select_by_visible_text("frame index")
    WebDriverWait(page, 30).until(lambda d: d.execute_script(f"return {title};") == "frame index")
    assert count(page) == before


def test_nearest_neighbours_of_a_clicked_frame(page, embedding):
    """Click a frame, ask for its 7 nearest: the count says 7; k = 0 is refused with the range."""
    k_input = page.find_element(By.CSS_SELECTOR, ".ms-map-k")
    button = page.find_element(By.CSS_SELECTOR, ".ms-map-neighbours")
    k_input.clear()
    k_input.send_keys("0")
    button.click()
    message = ".ms-map-message"
    WebDriverWait(page, 30).until(lambda d: "must be a whole number between 1 and 5000"
                                  in d.find_element(By.CSS_SELECTOR, message).text)
    # Clear the lasso (a double-click), else a click inside its outline edits the outline.
    corner = page.execute_script("""
        const r = document.querySelector('.ms-map .js-plotly-plot .nsewdrag').getBoundingClientRect();
        return [r.left + 3, r.top + 3];""")
    ActionChains(page, duration=50).move_to_location(int(corner[0]), int(corner[1])).double_click().perform()
    WebDriverWait(page, 30).until(lambda d: (count(d) or (0, 1))[1] == 0)
    i = central_frame(embedding)
    [(x, y)] = to_viewport(page, embedding[i : i + 1, :2])
    # Plotly takes a click within doubleClickDelay of the double-click as part of it (no selection);
    # nothing in the page says when that window closes, so wait it out.
    delay = page.execute_script("return document.querySelector('.ms-map .js-plotly-plot')._context.doubleClickDelay")
    ActionChains(page, duration=50).move_to_location(int(x), int(y)).pause(delay / 1000 + 0.1).click().perform()
    WebDriverWait(page, 30).until(lambda d: "clicked" in d.find_element(By.CSS_SELECTOR, message).text)
    assert count(page)[1] == 0  # a click picks a frame; it selects nothing
    k_input.clear()
    k_input.send_keys("7")
    button.click()
    WebDriverWait(page, 30).until(lambda d: (count(d) or (0, 0))[1] == 7)
    assert "7 frames nearest to frame" in page.find_element(By.CSS_SELECTOR, message).text
