"""Headless Debian Chromium driven by Selenium: the one launcher for browser tests and benches,
and the mouse drag they lasso with.

Top level, neither in tests/ nor in bench/, so both may import it (bench must not import tests).
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM, CHROMEDRIVER = Path("/usr/lib/chromium/chromium"), Path("/usr/bin/chromedriver")  # Debian's
CHROME_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--enable-unsafe-swiftshader", "--window-size=1400,1000",
)


def launch_chromium(*, timeout: float = 60, console: bool = False):
    """Headless Debian Chromium driven by Selenium, WebGL through SwiftShader (tests and benches).

    ``console``: keep the browser console, for messages on failure.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # /usr/bin/chromium is a shell wrapper
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(timeout)
    driver.set_script_timeout(timeout)
    return driver


def to_viewport(driver, xy) -> list[list[float]]:
    """Data coordinates → viewport pixels of the map's plot area (scrolled into view first)."""
    return driver.execute_script("""
        const gd = document.querySelector('.ms-map .js-plotly-plot');
        gd.scrollIntoView({block: 'center'});
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
        return arguments[0].map(([x, y]) => [box.left + xa._offset + xa.l2p(x), box.top + ya._offset + ya.l2p(y)]);
    """, [[float(x), float(y)] for x, y in xy])


def drag(driver, path: list[list[float]]) -> None:
    """Press, move through viewport points, release. Viewport coordinates because Selenium 4.2
    measures element offsets from the top-left corner, not the centre as later versions do."""
    from selenium.webdriver.common.action_chains import ActionChains

    actions = ActionChains(driver, duration=50)
    actions.move_to_location(int(path[0][0]), int(path[0][1])).click_and_hold()
    for x, y in path[1:]:
        actions.move_to_location(int(x), int(y))
    actions.release().perform()
