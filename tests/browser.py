"""Acting in the page like a person: wait for the map, drag a lasso or a box, read text."""

from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


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


def drag(driver, element, path: list[tuple[float, float]]) -> None:
    """Press at the first point of ``path`` (fractions of the element's box), move through the rest, release."""
    w, h = element.size["width"], element.size["height"]
    # Selenium offsets are from the element's centre.
    points = [(int((fx - 0.5) * w), int((fy - 0.5) * h)) for fx, fy in path]
    actions = ActionChains(driver)
    actions.move_to_element_with_offset(element, *points[0]).click_and_hold()
    previous = points[0]
    for x, y in points[1:]:
        actions.move_by_offset(x - previous[0], y - previous[1])
        previous = (x, y)
    actions.release().perform()


def lasso(driver, plot, x0=0.05, y0=0.05, x1=0.55, y1=0.95) -> None:
    """A lasso around a rectangle of the plot area (the map's dragmode must be lasso)."""
    drag(driver, plot, [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + 0.01)])
