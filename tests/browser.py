"""Acting in the page like a person: wait for the map, drag a lasso or a box, read text."""

from __future__ import annotations

import re

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from headless_chromium import CHROMEDRIVER, CHROMIUM, drag


def require_chromium(*, ci: bool) -> None:
    """Skip when Debian's Chromium is missing, but fail under CI, where a skip would hide it."""
    import pytest

    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    missing = f"Debian chromium and chromium-driver are not installed ({CHROMIUM}, {CHROMEDRIVER}; make test installs them)"
    if ci:
        pytest.fail(f"{missing}: under CI=true the browser tests must run")
    pytest.skip(missing)


MAP_COUNT = ".ms-map-count"
MAP_COUNT_RE = re.compile(r"([\d,]+) points · ([\d,]+) selected")


def map_count(driver) -> tuple[int, int] | None:
    """(points, selected) from the map's count line; None until a map is drawn."""
    found = MAP_COUNT_RE.search(driver.find_element(By.CSS_SELECTOR, MAP_COUNT).text)
    return (int(found[1].replace(",", "")), int(found[2].replace(",", ""))) if found else None


def wait_for_map_count(driver, timeout: float = 120) -> tuple[int, int]:
    """Wait for a drawn map's count line; on timeout fail with what the page shows instead."""
    import pytest

    try:
        return WebDriverWait(driver, timeout).until(map_count)
    except TimeoutException:
        panel = driver.find_element(By.CSS_SELECTOR, ".ms-map").text[:1000]
        console = [entry["message"][:300] for entry in driver.get_log("browser") if entry["level"] != "DEBUG"]
        pytest.fail(f"the map never reported its points in {timeout:.0f} s; the map panel reads:\n{panel}\n"
                    "browser console:\n" + "\n".join(console[-15:]))


def shown_embedding(driver, worker: dict):
    """The stored embedding of the map the page shows (its clustering id is the count line's title)."""
    from core.data.store import Store
    from tests.conftest import INTEGRATION_PROJECT

    clustering_id = driver.find_element(By.CSS_SELECTOR, MAP_COUNT).get_attribute("title").split()[-1]
    store = Store.from_uri(worker["tiled_uri"], api_key=worker["api_key"], project=INTEGRATION_PROJECT)
    projection_id = store.metadata("clusterings", clustering_id)["projection_id"]
    return store.array("projections", projection_id, "embedding")


def read_all(driver, css: str, attribute: str | None = None) -> list[str]:
    """Each matching element's text (or attribute), read in one script call.

    Reading elements one by one races the page: a table re-rendered between ``find_elements`` and
    ``get_attribute`` raises StaleElementReferenceException (it failed CI once in the jobs table).
    """
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]),"
        " e => arguments[1] === null ? e.innerText : e.getAttribute(arguments[1]));", css, attribute)


def wait_for(driver, css: str, timeout: float = 60, visible: bool = True):
    condition = EC.visibility_of_element_located if visible else EC.presence_of_element_located
    return WebDriverWait(driver, timeout).until(condition((By.CSS_SELECTOR, css)))


def wait_for_text(driver, css: str, text: str, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def wait_for_map(driver, graph_css: str, timeout: float = 90):
    """The plot area of a drawn Plotly map (points painted, WebGL working)."""
    plot = wait_for(driver, f"{graph_css} .nsewdrag", timeout)
    assert "WebGL is not supported" not in driver.page_source
    return plot


def click(driver, element) -> None:
    """Scroll the element to the middle of the window, then click it like a person.

    The app turns off Bootstrap's smooth scrolling (assets/style.css): mid-animation, Selenium's
    click would land on whatever scrolls past ("click intercepted").
    """
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def lasso(driver, plot, x0=0.05, y0=0.05, x1=0.55, y1=0.95) -> None:
    """A lasso around a rectangle given in fractions of the element's box (dragmode lasso)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", plot)
    box = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                "return [r.left, r.top, r.width, r.height];", plot)
    left, top, width, height = box
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + 0.01)]
    drag(driver, [[left + fx * width, top + fy * height] for fx, fy in corners])
