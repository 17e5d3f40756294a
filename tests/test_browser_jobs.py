"""Jobs from the page, in headless Chromium against a real worker: refuse, complete, cancel."""

from __future__ import annotations

import json

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser import click, read_all, wait_for, wait_for_text

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIDEBAR_PROJECTIONS = {"aio_id": "sidebar", "component": "SidebarAIO", "subcomponent": "select-projections"}


def id_css(dash_id: dict) -> str:
    """CSS for a Dash dict id (rendered as compact JSON with sorted keys)."""
    return f"[id='{json.dumps(dash_id, sort_keys=True, separators=(',', ':'))}']"


def type_number(driver, css: str, value: str) -> None:
    field = wait_for(driver, css)
    click(driver, field)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(value)


def choose(driver, css: str, value: str, timeout: float = 30) -> None:
    """Pick ``value`` in a <select> once its options (loaded from Tiled) offer it."""
    def offered(d):
        select = Select(d.find_element(By.CSS_SELECTOR, css))
        return select if value in [o.get_attribute("value") for o in select.options] else False

    WebDriverWait(driver, timeout).until(offered).select_by_value(value)


def run_rows(driver) -> list[str]:
    return read_all(driver, "tr.jobs-run", "data-run")


def submit_and_get_run(driver, job: str) -> str:
    """Click the form's submit button; the new (topmost) row's run id."""
    before = set(run_rows(driver))
    click(driver, driver.find_element(By.CSS_SELECTOR, f".jobs-submit-{job}"))
    WebDriverWait(driver, 30).until(lambda d: set(run_rows(d)) - before)
    return run_rows(driver)[0]


def wait_for_state(driver, run_id: str, states: tuple[str, ...], timeout: float) -> str:
    def state(d):
        try:
            found = d.find_element(By.CSS_SELECTOR, f"tr[data-run='{run_id}']").get_attribute("data-state")
        except StaleElementReferenceException:
            return False
        return found if found in states else False

    return WebDriverWait(driver, timeout).until(state)


@pytest.fixture(scope="module")
def page(web_app, browser, built_map):
    browser.get(web_app)
    click(browser, wait_for(browser, ".jobs-tab-project"))
    wait_for(browser, ".jobs-form-project")
    wait_for_text(browser, ".services-banner", "Worker ✓", timeout=60)  # worker polled recently
    choose(browser, ".jobs-project-latents_id", built_map["latents"])
    return browser


def test_invalid_parameter_is_explained_and_not_submitted(page):
    """n_neighbors=1 shows the field, the value and the range next to the form; no run is added."""
    rows = run_rows(page)
    type_number(page, ".jobs-project-n_neighbors", "1")
    click(page, page.find_element(By.CSS_SELECTOR, ".jobs-submit-project"))
    wait_for_text(page, ".jobs-message-project", "must be a whole number between 2 and 200", timeout=30)
    message = page.find_element(By.CSS_SELECTOR, ".jobs-message-project").text
    assert "n_neighbors" in message and "(you entered 1)" in message and "Not submitted" in message
    assert run_rows(page) == rows


def test_projection_job_completes_and_appears_in_sidebar(page):
    """A PCA projection submitted from the form completes and is offered by the sidebar, no reload."""
    type_number(page, ".jobs-project-n_neighbors", "15")
    click(page, page.find_element(By.XPATH, "//*[contains(@class,'jobs-project-method')]//label[text()='PCA']"))
    run_id = submit_and_get_run(page, "project")
    wait_for_state(page, run_id, ("COMPLETED",), timeout=240)
    row = page.find_element(By.CSS_SELECTOR, f"tr[data-run='{run_id}']")
    projection_id = row.find_element(By.CSS_SELECTOR, ".jobs-result").text
    assert projection_id.startswith("proj-")
    assert "100%" in row.text

    def sidebar_offers(d):
        dropdown = d.find_element(By.CSS_SELECTOR, id_css(SIDEBAR_PROJECTIONS))
        if dropdown.get_attribute("aria-expanded") != "true":
            click(d, dropdown)
        options = [o.text for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content .dash-dropdown-option")]
        dropdown.send_keys(Keys.ESCAPE)
        return any(projection_id in text for text in options)

    WebDriverWait(page, 30, ignored_exceptions=(StaleElementReferenceException,)).until(sidebar_offers)


def test_long_job_can_be_cancelled(page, built_map):
    """A 1000-epoch denoising training run (β, lr schedule and three noise models from the form, as
    its row says) is cancelled from its row: the state turns CANCELLING/CANCELLED."""
    click(page, page.find_element(By.CSS_SELECTOR, ".jobs-tab-train"))
    choose(page, ".jobs-train-dataset_id", built_map["datasets"])
    type_number(page, ".jobs-train-epochs", "1000")
    for field, value in (("beta", "2"), ("flip_prob", "0.1"), ("grid_amplitude", "0.2"), ("ring_count", "2")):
        type_number(page, f".jobs-train-{field}", value)
    Select(page.find_element(By.CSS_SELECTOR, ".jobs-train-lr_schedule")).select_by_value("cosine")
    run_id = submit_and_get_run(page, "train")
    said = "β=2, 1000 epochs, cosine lr, denoising (flips 0.1, grid 0.2, rings 2)"
    WebDriverWait(page, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: said in d.find_element(By.CSS_SELECTOR, f"tr[data-run='{run_id}']").text)
    wait_for_state(page, run_id, ("RUNNING",), timeout=120)

    def click_cancel(d):
        try:
            click(d, d.find_element(By.CSS_SELECTOR, f"tr[data-run='{run_id}'] .jobs-cancel"))
        except StaleElementReferenceException:
            return False
        return True

    WebDriverWait(page, 10).until(click_cancel)
    wait_for_state(page, run_id, ("CANCELLING", "CANCELLED"), timeout=30)
    # The worker stops the run's process: the run ends CANCELLED (and stops using the CPU).
    wait_for_state(page, run_id, ("CANCELLED",), timeout=90)
    row = page.find_element(By.CSS_SELECTOR, f"tr[data-run='{run_id}']")
    assert not row.find_elements(By.CSS_SELECTOR, ".jobs-cancel")
